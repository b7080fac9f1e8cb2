// HTTP limits through real sockets: http.body_limit (413 before any of an oversize body reaches Lua),
// the header size limit and the slow-client timeouts from Fastify's own options.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { buildServer, fastifyOptions } from '../src/cli/server.ts'
import { loadConfig, type EvluaConfigInput } from '../src/config/index.ts'

const APP = fileURLToPath(new URL('./fixtures/apps/http', import.meta.url))

async function start (t: TestContext, config: EvluaConfigInput = {}): Promise<{ base: string, port: number, server: http.Server }> {
  const { app } = await buildServer({ dir: APP, config: { log: { level: 'silent' }, ...config } })
  t.after(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  return { base: `http://127.0.0.1:${port}`, port, server: app.server as http.Server }
}

const probe = async (base: string): Promise<{ calls: number, bytes: number }> => (await fetch(`${base}/limits/probe`)).json()

/** POST with Transfer-Encoding: chunked (no Content-Length), one write per chunk. */
function postChunked (url: string, chunks: Buffer[], type = 'application/octet-stream'): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': type, 'transfer-encoding': 'chunked' } }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('error', (err) => { if ((err as NodeJS.ErrnoException).code !== 'EPIPE' && (err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err) })
    ;(async () => {
      for (const c of chunks) {
        if (req.destroyed) return
        req.write(c)
        await new Promise((r) => setImmediate(r))
      }
      req.end()
    })().catch(reject)
  })
}

test('a declared Content-Length over http.body_limit is a 413 and the handler never runs', async (t) => {
  const { base } = await start(t, { http: { body_limit: '1kb' } })
  const big = randomBytes(2048)
  const raw = await fetch(`${base}/limits/count`, { method: 'POST', body: big, headers: { 'content-type': 'application/octet-stream' } })
  assert.equal(raw.status, 413)
  assert.equal((await raw.json()).code, 'FST_ERR_CTP_BODY_TOO_LARGE')
  const fd = new FormData()
  fd.append('file', new Blob([big]), 'big.bin')
  const multipart = await fetch(`${base}/limits/count`, { method: 'POST', body: fd })
  assert.equal(multipart.status, 413)
  const form = await fetch(`${base}/limits/body`, { method: 'POST', body: new URLSearchParams({ a: 'x'.repeat(2000) }) })
  assert.equal(form.status, 413)
  const json = await fetch(`${base}/limits/schema`, { method: 'POST', body: JSON.stringify({ name: 'x'.repeat(2000) }), headers: { 'content-type': 'application/json' } })
  assert.equal(json.status, 413)
  assert.deepEqual(await probe(base), { calls: 0, bytes: 0 })

  const fits = await fetch(`${base}/limits/count`, { method: 'POST', body: randomBytes(1024), headers: { 'content-type': 'application/octet-stream' } })
  assert.equal(await fits.text(), 'read 1024', 'a body of exactly the limit is fine')
})

test('a chunked body that grows over the limit: 413, and Lua never sees a byte beyond the limit', async (t) => {
  const { base } = await start(t, { http: { body_limit: '1kb' } })
  const streamed = await postChunked(`${base}/limits/count`, [randomBytes(600), randomBytes(600), randomBytes(600)])
  assert.equal(streamed.status, 413)
  let seen = await probe(base)
  assert.equal(seen.calls, 1)
  assert.ok(seen.bytes <= 1024, `Lua saw ${seen.bytes} bytes`)

  await fetch(`${base}/limits/probe`, { method: 'DELETE' })
  const whole = await postChunked(`${base}/limits/body`, [randomBytes(600), randomBytes(600)])
  assert.equal(whole.status, 413, 'request.body of an oversize body')
  seen = await probe(base)
  assert.deepEqual(seen, { calls: 1, bytes: 0 }, 'request.body hands over nothing of an oversize body')

  const boundary = 'chunked-multipart'
  const part = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="f"\r\n\r\n`), randomBytes(700)])
  const multipart = await postChunked(`${base}/limits/count`, [part, randomBytes(700), Buffer.from(`\r\n--${boundary}--\r\n`)], `multipart/form-data; boundary=${boundary}`)
  assert.equal(multipart.status, 413)

  await fetch(`${base}/limits/probe`, { method: 'DELETE' })
  const ok = await postChunked(`${base}/limits/count`, [randomBytes(500), randomBytes(500)])
  assert.deepEqual(ok, { status: 200, body: 'read 1000' })
})

test('a route with a body schema: Fastify validates the JSON before Lua, which still gets the raw bytes', async (t) => {
  const { base } = await start(t)
  const good = await fetch(`${base}/limits/schema`, { method: 'POST', body: '{"name":"ada"}', headers: { 'content-type': 'application/json' } })
  assert.deepEqual(await good.json(), { raw: '{"name":"ada"}', name: 'ada' })
  const invalid = await fetch(`${base}/limits/schema`, { method: 'POST', body: '{"nom":"ada"}', headers: { 'content-type': 'application/json' } })
  assert.equal(invalid.status, 400)
  assert.match((await invalid.json()).message, /must have required property 'name'/)
  const broken = await fetch(`${base}/limits/schema`, { method: 'POST', body: '{"name":', headers: { 'content-type': 'application/json' } })
  assert.equal(broken.status, 400)
})

test('http.header_size_limit: headers over it are a 431', async (t) => {
  const { base } = await start(t, { http: { header_size_limit: 2048 } })
  const small = await fetch(`${base}/api`, { headers: { 'x-pad': 'a'.repeat(500) } })
  assert.equal(small.status, 200)
  const big = await fetch(`${base}/api`, { headers: { 'x-pad': 'a'.repeat(4000) } })
  assert.equal(big.status, 431)
})

test('http.connection_timeout_ms: a client that stalls mid-request is disconnected', async (t) => {
  const { port } = await start(t, { http: { connection_timeout_ms: 300 } })
  const socket = net.connect(port, '127.0.0.1')
  t.after(() => socket.destroy())
  await once(socket, 'connect')
  const t0 = Date.now()
  socket.write('GET /api HTTP/1.1\r\nHost: x\r\n') // never finishes its headers
  socket.resume()
  const closed = once(socket, 'close')
  const bound = new Promise((_resolve, reject) => setTimeout(() => reject(new Error('the stalled connection was not closed within 5 s')), 5000).unref())
  await Promise.race([closed, bound])
  assert.ok(Date.now() - t0 >= 250, 'closed by the timeout, not at once')
})

test('the timeouts and limits reach the Node server Fastify creates', async (t) => {
  const http_ = { connection_timeout_ms: 1111, request_timeout_ms: 2222, keep_alive_timeout_ms: 3333, header_size_limit: 4444 }
  const config = await loadConfig({ dir: APP, env: {}, overrides: { http: http_ } })
  const options = await fastifyOptions(config)
  assert.equal(options.connectionTimeout, 1111)
  assert.equal(options.requestTimeout, 2222)
  assert.equal(options.keepAliveTimeout, 3333)
  // Node looks for timed-out requests at this interval (30 s by default): a quarter of the timeout.
  assert.deepEqual(options.http, { maxHeaderSize: 4444, connectionsCheckingInterval: 555 })
  const { server } = await start(t, { http: http_ })
  assert.equal(server.timeout, 1111)
  assert.equal((server as unknown as { connectionsCheckingInterval?: number }).connectionsCheckingInterval ?? 555, 555)
  assert.equal(server.requestTimeout, 2222)
  assert.equal(server.keepAliveTimeout, 3333)
})
