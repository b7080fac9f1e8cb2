// Static files from the app's public/ (@fastify/static): types, ETag / Last-Modified, Range, no path
// traversal, no dotfiles, and Lua routes winning over files of the same path.
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { buildServer } from '../src/cli/server.ts'

const APP = fileURLToPath(new URL('./fixtures/apps/http', import.meta.url))

async function start (t: TestContext, dir = APP): Promise<{ base: string, port: number }> {
  const { app } = await buildServer({ dir, config: { log: { level: 'silent' } } })
  t.after(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  return { base: `http://127.0.0.1:${port}`, port }
}

/** A request line sent exactly as written (fetch and http.request would normalise the path). */
function rawRequest (port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
    })
    let text = ''
    socket.setEncoding('latin1').on('data', (c: string) => { text += c }).on('end', () => resolve(text)).on('error', reject)
  })
}

function statusOf (url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => { res.resume(); resolve(res.statusCode!) }).on('error', reject)
  })
}

test('files from public/ with their content types', async (t) => {
  const { base } = await start(t)
  const css = await fetch(`${base}/style.css`)
  assert.equal(css.status, 200)
  assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8')
  assert.equal(await css.text(), 'body { color: rgb(1, 2, 3); }\n')
  const txt = await fetch(`${base}/hello.txt`)
  assert.equal(txt.headers.get('content-type'), 'text/plain; charset=utf-8')
  const bin = await fetch(`${base}/data.bin`)
  assert.equal(bin.headers.get('content-type'), 'application/octet-stream')
  assert.equal((await bin.arrayBuffer()).byteLength, 4096)
  const html = await fetch(`${base}/sub/page.html`)
  assert.equal(html.headers.get('content-type'), 'text/html; charset=utf-8')
  const index = await fetch(`${base}/sub/`)
  assert.match(await index.text(), /static index/)
  const head = await fetch(`${base}/hello.txt`, { method: 'HEAD' })
  assert.equal(head.status, 200)
  assert.equal(head.headers.get('content-length'), '13')
  assert.equal(await head.text(), '')
})

test('ETag and Last-Modified: conditional requests get 304', async (t) => {
  const { base } = await start(t)
  const first = await fetch(`${base}/hello.txt`)
  const etag = first.headers.get('etag')
  const modified = first.headers.get('last-modified')
  assert.ok(etag && modified)
  // http.get, not fetch: fetch adds Cache-Control: no-cache to conditional requests
  assert.equal(await statusOf(`${base}/hello.txt`, { 'if-none-match': etag }), 304)
  assert.equal(await statusOf(`${base}/hello.txt`, { 'if-modified-since': modified }), 304)
  assert.equal(await statusOf(`${base}/hello.txt`, { 'if-none-match': '"other"' }), 200)
})

test('Range requests: 206 with the bytes asked for, 416 when unsatisfiable', async (t) => {
  const { base } = await start(t)
  const part = await fetch(`${base}/data.bin`, { headers: { range: 'bytes=10-19' } })
  assert.equal(part.status, 206)
  assert.equal(part.headers.get('content-range'), 'bytes 10-19/4096')
  assert.equal(part.headers.get('accept-ranges'), 'bytes')
  assert.deepEqual([...new Uint8Array(await part.arrayBuffer())], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
  const suffix = await fetch(`${base}/data.bin`, { headers: { range: 'bytes=-4' } })
  assert.deepEqual([...new Uint8Array(await suffix.arrayBuffer())], [252, 253, 254, 255])
  const beyond = await fetch(`${base}/data.bin`, { headers: { range: 'bytes=5000-6000' } })
  assert.equal(beyond.status, 416)
})

test('no directory traversal: config/default.json is never served', async (t) => {
  const { port } = await start(t)
  for (const target of [
    '/../config/default.json', '/%2e%2e/config/default.json', '/sub/../../config/default.json',
    '/..%2fconfig%2fdefault.json', '/%2e%2e%2fconfig%2fdefault.json', '/sub/%2e%2e/%2e%2e/config/default.json',
    '/..%5cconfig%5cdefault.json', '/%252e%252e/config/default.json', '/../routes/api.lua'
  ]) {
    const response = await rawRequest(port, target)
    assert.doesNotMatch(response, /config-secret-7f3a/, `${target} served the config file`)
    assert.doesNotMatch(response, /api route/, `${target} served a route's source`)
    assert.doesNotMatch(response, /^HTTP\/1\.1 200/, `${target} answered 200`)
  }
})

test('routes win over files of the same path; dotfiles and other methods are not served', async (t) => {
  const { base } = await start(t)
  assert.equal(await (await fetch(`${base}/clash.txt`)).text(), 'from the lua route')
  assert.equal(await (await fetch(`${base}/api`)).text(), 'api route')
  assert.equal((await fetch(`${base}/.hidden`)).status, 404)
  assert.equal((await fetch(`${base}/hello.txt`, { method: 'POST', body: 'x' })).status, 404)
  assert.equal((await fetch(`${base}/missing.css`)).status, 404)
})

test('no public/ directory, or a root catch-all route: nothing breaks, the route serves every path', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'evlua-static-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'routes'))
  await writeFile(join(dir, 'routes', 'index.lua'), "return { get = function() return 'index' end }")
  const plain = await start(t, dir)
  assert.equal((await fetch(`${plain.base}/style.css`)).status, 404)
  assert.equal(await (await fetch(`${plain.base}/`)).text(), 'index')

  const dir2 = await mkdtemp(join(tmpdir(), 'evlua-static-'))
  t.after(() => rm(dir2, { recursive: true, force: true }))
  await mkdir(join(dir2, 'routes'))
  await mkdir(join(dir2, 'public'))
  await writeFile(join(dir2, 'routes', '[...rest].lua'), "return { get = function(r) return 'lua: ' .. r.params.rest end }")
  await writeFile(join(dir2, 'public', 'x.txt'), 'file')
  const all = await start(t, dir2)
  assert.equal(await (await fetch(`${all.base}/x.txt`)).text(), 'lua: x.txt')
})
