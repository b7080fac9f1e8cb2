// Forms through real sockets: multipart/form-data (@fastify/multipart) and urlencoded bodies in
// request.post_params / post_params_list / post_metadata / post_metadata_list, byte-exact.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { buildServer } from '../src/cli/server.ts'
import type { EvluaConfigInput } from '../src/index.ts'
import { luaApp } from './helpers/evlua.ts'

const APP = fileURLToPath(new URL('./fixtures/apps/http', import.meta.url))

async function start (t: TestContext, config: EvluaConfigInput = {}): Promise<string> {
  const { app } = await buildServer({ dir: APP, config: { log: { level: 'silent' }, ...config } })
  t.after(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** A multipart body written by hand, so every header byte is known. */
function multipartBody (boundary: string, parts: Array<{ headers: string, data: Buffer | string }>): Buffer {
  const out: Buffer[] = []
  for (const p of parts) {
    out.push(Buffer.from(`--${boundary}\r\n${p.headers}\r\n\r\n`), Buffer.from(p.data), Buffer.from('\r\n'))
  }
  out.push(Buffer.from(`--${boundary}--\r\n`))
  return Buffer.concat(out)
}

test('multipart: post_params, post_params_list, post_metadata and post_metadata_list', async (t) => {
  const base = await start(t)
  const fd = new FormData()
  fd.append('name', 'alice')
  fd.append('name', 'bob')
  fd.append('doc', new Blob(['hello file'], { type: 'text/plain' }), 'a.txt')
  fd.append('doc', new Blob([new Uint8Array([1, 2, 3])], { type: 'application/x-thing' }), 'b.bin')
  const res = await fetch(`${base}/form/echo`, { method: 'POST', body: fd })
  assert.equal(res.status, 200)
  const got = await res.json()
  assert.deepEqual(got.params, { name: 'alice', doc: 'hello file' })
  assert.deepEqual(got.lengths, { name: [5, 3], doc: [10, 3] })
  assert.deepEqual(got.meta, {
    name: { file_name: null, content_type: null },
    doc: { file_name: 'a.txt', content_type: 'text/plain' }
  })
  assert.deepEqual(got.meta_lists.doc, [
    { file_name: 'a.txt', content_type: 'text/plain' },
    { file_name: 'b.bin', content_type: 'application/x-thing' }
  ])
  assert.deepEqual(got.meta_lists.name, [{ file_name: null, content_type: null }, { file_name: null, content_type: null }])
})

test('multipart: a 5 MB file of random bytes arrives with the same SHA-256', async (t) => {
  const base = await start(t)
  const data = randomBytes(5 * 1024 * 1024)
  const fd = new FormData()
  fd.append('note', 'five megabytes')
  fd.append('file', new Blob([data], { type: 'application/octet-stream' }), 'random.bin')
  const res = await fetch(`${base}/form/raw?name=file`, { method: 'POST', body: fd })
  assert.equal(res.status, 200)
  const back = Buffer.from(await res.arrayBuffer())
  assert.equal(back.length, data.length)
  assert.equal(sha256(back), sha256(data))
})

test('multipart: a large value read whole next to a streamed field (part by part) is byte-exact', async (t) => {
  const base = await start(t)
  const data = randomBytes(3 * 1024 * 1024 + 17)
  const fd = new FormData()
  fd.append('note', 'x'.repeat(200_000))
  fd.append('file', new Blob([data]), 'big.bin')
  const res = await fetch(`${base}/form/mixed?name=file`, { method: 'POST', body: fd })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('x-streamed'), '200000')
  assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(data))
})

test('large values reach Lua without a copy left behind: Lua memory returns to where it was', async (t) => {
  const { app, evlua } = await luaApp(t, 'http')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const engine = evlua.runtime.engine
  const data = randomBytes(2 * 1024 * 1024)
  const send = async (): Promise<void> => {
    const fd = new FormData()
    fd.append('file', new Blob([data]), 'f.bin')
    const res = await fetch(`${base}/form/raw?name=file`, { method: 'POST', body: fd })
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(data))
    const raw = await fetch(`${base}/form/body`, { method: 'POST', body: data, headers: { 'content-type': 'application/octet-stream' } })
    assert.equal(sha256(Buffer.from(await raw.arrayBuffer())), sha256(data))
  }
  await send()
  engine.collectGarbage()
  const before = engine.memoryUsed()
  const wasmBefore = engine.mod.HEAPU8.buffer.byteLength
  for (let i = 0; i < 10; i++) await send()
  engine.collectGarbage()
  // 40 MB went through; none of it may stay anchored in Lua, nor lost in wasm memory
  assert.ok(engine.memoryUsed() - before < 1024 * 1024, `Lua holds ${engine.memoryUsed() - before} more bytes`)
  const grown = engine.mod.HEAPU8.buffer.byteLength - wasmBefore
  assert.ok(grown < 16 * 1024 * 1024, `wasm memory grew by ${grown} bytes`)
})

test('multipart: text fields and file names are byte strings (any byte, no charset decoding)', async (t) => {
  const base = await start(t)
  const B = 'b0undary-x'
  const weird = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x0d, 0x0a, 0x41])
  const body = multipartBody(B, [
    { headers: 'Content-Disposition: form-data; name="bin"', data: weird },
    { headers: 'Content-Disposition: form-data; name="utf8"', data: 'grüße ✓' }
  ])
  const headers = { 'content-type': `multipart/form-data; boundary=${B}` }
  const bin = await fetch(`${base}/form/raw?name=bin`, { method: 'POST', body, headers })
  assert.deepEqual(Buffer.from(await bin.arrayBuffer()), weird)
  const utf8 = await fetch(`${base}/form/raw?name=utf8`, { method: 'POST', body, headers })
  assert.equal(await utf8.text(), 'grüße ✓')
})

test('multipart: an empty file input (filename="") is an empty value with file_name ""', async (t) => {
  const base = await start(t)
  const B = 'empty-file-boundary'
  const body = multipartBody(B, [
    { headers: 'Content-Disposition: form-data; name="title"', data: 'no file' },
    { headers: 'Content-Disposition: form-data; name="file"; filename=""\r\nContent-Type: application/octet-stream', data: '' }
  ])
  const res = await fetch(`${base}/form/echo`, { method: 'POST', body, headers: { 'content-type': `multipart/form-data; boundary=${B}` } })
  const got = await res.json()
  assert.deepEqual(got.params, { title: 'no file', file: '' })
  assert.deepEqual(got.meta.file, { file_name: '', content_type: 'application/octet-stream' })
})

test('urlencoded: post_params and post_params_list, empty metadata', async (t) => {
  const base = await start(t)
  const res = await fetch(`${base}/form/echo`, { method: 'POST', body: new URLSearchParams([['a', '1'], ['b', 'x y'], ['a', 'two']]) })
  const got = await res.json()
  assert.deepEqual(got.params, { a: '1', b: 'x y' })
  assert.deepEqual(got.lengths, { a: [1, 3], b: [3] })
  assert.deepEqual(got.meta.a, { file_name: null, content_type: null })
})

test('multipart: a broken body is a 400 that names the problem', async (t) => {
  const base = await start(t)
  const truncated = await fetch(`${base}/form/echo`, {
    method: 'POST',
    body: '--abc\r\nContent-Disposition: form-data; name="x"\r\n\r\nno end',
    headers: { 'content-type': 'multipart/form-data; boundary=abc' }
  })
  assert.equal(truncated.status, 400)
  assert.match((await truncated.json()).message, /unexpected end of multipart data/i)
  const noBoundary = await fetch(`${base}/form/echo`, { method: 'POST', body: 'x', headers: { 'content-type': 'multipart/form-data' } })
  assert.equal(noBoundary.status, 400)
  assert.match((await noBoundary.json()).message, /Boundary not found/)
})

test('request.body is the raw multipart bytes; the form cannot be parsed from it afterwards', async (t) => {
  const base = await start(t)
  const B = 'raw-body-boundary'
  const body = multipartBody(B, [{ headers: 'Content-Disposition: form-data; name="a"', data: randomBytes(1000) }])
  const res = await fetch(`${base}/form/body`, { method: 'POST', body, headers: { 'content-type': `multipart/form-data; boundary=${B}` } })
  assert.equal(res.status, 200)
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), body)
  assert.match(res.headers.get('x-post-params')!, /already been streamed or consumed/)
})

test('a raw (non-form) body: request.body exact, post_params empty', async (t) => {
  const base = await start(t)
  const data = randomBytes(100_000)
  const res = await fetch(`${base}/form/body`, { method: 'POST', body: data, headers: { 'content-type': 'application/octet-stream' } })
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), data)
  assert.equal(res.headers.get('x-post-params'), 'ok')
  const urlencoded = await fetch(`${base}/form/body`, { method: 'POST', body: 'a=1&b=%FF' , headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  assert.equal(await urlencoded.text(), 'a=1&b=%FF')
  assert.equal(urlencoded.headers.get('x-post-params'), 'ok')
})

test('many requests on one keep-alive connection, mixed forms', async (t) => {
  const base = await start(t)
  for (let i = 0; i < 20; i++) {
    const fd = new FormData()
    fd.append('i', String(i))
    fd.append('file', new Blob([randomBytes(i * 1000)]), `f${i}`)
    const res = await fetch(`${base}/form/echo`, { method: 'POST', body: fd })
    const got = await res.json()
    assert.equal(got.params.i, String(i))
    assert.deepEqual(got.lengths.file, [i * 1000])
  }
})

test('inside a host app that registers @fastify/multipart and @fastify/cookie itself', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { default: multipart } = await import('@fastify/multipart')
  const { default: cookie } = await import('@fastify/cookie')
  const { default: evlua } = await import('../src/index.ts')
  const app = Fastify()
  t.after(() => app.close())
  await app.register(multipart)
  await app.register(cookie)
  app.post('/js', async (request) => {
    const file = await request.file()
    return { name: file?.filename, size: (await file!.toBuffer()).length }
  })
  await app.register(evlua, { dir: APP, prefix: '/lua', config: { log: { level: 'silent' } } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const form = (): FormData => {
    const fd = new FormData()
    fd.append('name', 'host')
    fd.append('file', new Blob(['abc']), 'a.txt')
    return fd
  }
  assert.deepEqual(await (await fetch(`${base}/js`, { method: 'POST', body: form() })).json(), { name: 'a.txt', size: 3 })
  const lua = await (await fetch(`${base}/lua/form/echo`, { method: 'POST', body: form() })).json()
  assert.deepEqual(lua.params, { name: 'host', file: 'abc' })
  const cookies = await (await fetch(`${base}/lua/cookies`, { headers: { cookie: 'a=1' } })).json()
  assert.deepEqual(cookies.cookies, { a: '1' })
})
