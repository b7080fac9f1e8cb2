// HTTPS: with https.key and https.cert configured the server speaks TLS (a self-signed certificate
// made here, by the openssl CLI when present, and always also by node:crypto alone).
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { buildServer, listen } from '../src/cli/server.ts'

const APP = fileURLToPath(new URL('./fixtures/apps/http', import.meta.url))

// --- a minimal self-signed certificate without openssl: DER by hand, signed with node:crypto ---

function der (tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content)
  const n = body.length
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff])
  return Buffer.concat([Buffer.from([tag]), len, body])
}
const seq = (...c: Buffer[]): Buffer => der(0x30, ...c)
function oid (dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number)
  const bytes = [a * 40 + b]
  for (const v of rest) {
    const chunk = [v & 0x7f]
    for (let x = v >> 7; x > 0; x >>= 7) chunk.unshift((x & 0x7f) | 0x80)
    bytes.push(...chunk)
  }
  return der(0x06, Buffer.from(bytes))
}
const utcTime = (d: Date): Buffer => der(0x17, Buffer.from(d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z'))
const cnName = (cn: string): Buffer => seq(der(0x31, seq(oid('2.5.4.3'), der(0x0c, Buffer.from(cn)))))

/** A self-signed EC P-256 certificate for localhost / 127.0.0.1, valid for a day. */
function selfSignedWithNodeCrypto (): { key: string, cert: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' }) as { privateKey: KeyObject, publicKey: KeyObject }
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'))
  const san = seq(der(0x87, Buffer.from([127, 0, 0, 1])), der(0x82, Buffer.from('localhost')))
  const now = Date.now()
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))),
    der(0x02, Buffer.concat([Buffer.from([0x01]), randomBytes(8)])),
    ecdsaSha256,
    cnName('localhost'),
    seq(utcTime(new Date(now - 60_000)), utcTime(new Date(now + 86_400_000))),
    cnName('localhost'),
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, seq(seq(oid('2.5.29.17'), der(0x04, san))))
  )
  const signature = sign('sha256', tbs, privateKey)
  const certDer = seq(tbs, ecdsaSha256, der(0x03, Buffer.from([0]), signature))
  const pem = `-----BEGIN CERTIFICATE-----\n${certDer.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: pem }
}

async function selfSignedWithOpenssl (dir: string): Promise<{ key: string, cert: string } | undefined> {
  const keyFile = join(dir, 'openssl-key.pem')
  const certFile = join(dir, 'openssl-cert.pem')
  try {
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile,
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'])
  } catch {
    return undefined
  }
  return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8') }
}

// --- the server ---

async function startHttps (t: TestContext, pem: { key: string, cert: string }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'evlua-https-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'key.pem'), pem.key)
  await writeFile(join(dir, 'cert.pem'), pem.cert)
  const { app, config } = await buildServer({
    dir: APP,
    config: { log: { level: 'silent' }, server: { port: 0, host: '127.0.0.1' }, https: { key: join(dir, 'key.pem'), cert: join(dir, 'cert.pem') } }
  })
  t.after(() => app.close())
  return listen(app, config)
}

function request (url: string, ca: string, options: https.RequestOptions = {}, body?: Buffer): Promise<{ status: number, text: string, cn: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ca, ...options }, (res) => {
      const cn = String((res.socket as import('node:tls').TLSSocket).getPeerCertificate().subject?.CN)
      let text = ''
      res.setEncoding('utf8').on('data', (c: string) => { text += c }).on('end', () => resolve({ status: res.statusCode!, text, cn }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function checkServer (t: TestContext, pem: { key: string, cert: string }): Promise<void> {
  const url = await startHttps(t, pem)
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/)
  const got = await request(`${url}/api`, pem.cert)
  assert.deepEqual(got, { status: 200, text: 'api route', cn: 'localhost' })

  // an upload over TLS, verified against the certificate (no rejectUnauthorized: false)
  const fd = new FormData()
  fd.append('name', 'over tls')
  fd.append('file', new Blob([randomBytes(200_000)]), 'tls.bin')
  const res = new Response(fd)
  const body = Buffer.from(await res.arrayBuffer())
  const echo = await request(`${url}/form/echo`, pem.cert, { method: 'POST', headers: { 'content-type': res.headers.get('content-type')!, 'content-length': body.length } }, body)
  const parsed = JSON.parse(echo.text)
  assert.equal(parsed.params.name, 'over tls')
  assert.deepEqual(parsed.lengths.file, [200_000])

  // plain HTTP on the TLS port gets no HTTP answer
  const plain = await new Promise<string>((resolve) => {
    http.get(url.replace('https:', 'http:') + '/api', (r) => resolve(`status ${r.statusCode}`)).on('error', (err) => resolve(err.message))
  })
  assert.doesNotMatch(plain, /status 200/)
}

test('https.key + https.cert: the server speaks TLS (certificate made by node:crypto)', async (t) => {
  const pem = selfSignedWithNodeCrypto()
  assert.ok(new X509Certificate(pem.cert).checkIP('127.0.0.1'))
  await checkServer(t, pem)
})

test('https.key + https.cert: the server speaks TLS (certificate made by the openssl CLI)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'evlua-openssl-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const pem = await selfSignedWithOpenssl(dir)
  if (!pem) {
    t.skip('no openssl CLI on this machine (the node:crypto certificate test covers TLS)')
    return
  }
  await checkServer(t, pem)
})

test('an unreadable https.key is a start-up error that names the file', async () => {
  await assert.rejects(
    buildServer({ dir: APP, config: { log: { level: 'silent' }, https: { key: '/nonexistent/key.pem', cert: '/nonexistent/cert.pem' } } }),
    /nonexistent\/(key|cert)\.pem/
  )
})
