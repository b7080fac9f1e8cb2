// evpoco's request and response objects (platform.get_http_request() / get_http_response()) through
// real sockets: every method API.md lists, over the same exchange as the Moonbridge request.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { buildServer } from '../src/cli/server.ts'

const APP = fileURLToPath(new URL('./fixtures/apps/http', import.meta.url))

async function start (t: TestContext): Promise<string> {
  const { app } = await buildServer({ dir: APP, config: { log: { level: 'silent' } } })
  t.after(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

/** A raw GET, to see the response's framing headers as sent. */
function rawGet (url: string): Promise<{ status: number, headers: http.IncomingHttpHeaders, body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    }).on('error', reject)
  })
}

test('request getters and response setters: method, uri, query, headers, cookies, status, headers', async (t) => {
  const base = await start(t)
  const res = await fetch(`${base}/evpoco/info?a=1&b=x%20y&a=2`, { headers: { 'X-One': 'first', cookie: 'sid=abc; theme=dark' } })
  assert.equal(res.status, 201)
  assert.equal(res.headers.get('content-type'), 'application/json')
  assert.equal(res.headers.get('x-evpoco'), 'replaced', 'set_hdr_field replaces')
  const got = await res.json()
  assert.equal(got.method, 'GET')
  assert.equal(got.uri, '/evpoco/info?a=1&b=x%20y&a=2')
  assert.match(got.host, /^127\.0\.0\.1:\d+$/)
  assert.deepEqual(got.query, { a: '1', b: 'x y' })
  assert.equal(got.x_one, 'first')
  assert.equal(got.missing, '')
  assert.equal(got.fields_x_one, 'first')
  assert.equal(got.fields_X_One, 'first', 'get_hdr_fields lookups ignore case')
  assert.deepEqual(got.cookies, { sid: 'abc', theme: 'dark' })
  assert.equal(got.content_type, '')
  assert.equal(got.content_length, -1)
  assert.equal(got.same_request, true)
  assert.equal(got.same_response, true)
  assert.equal(got.hdr_back, 'replaced')
  assert.equal(got.status_back, 201)

  const post = await (await fetch(`${base}/evpoco/info`, { method: 'POST', body: 'abc', headers: { 'content-type': 'text/plain' } })).json()
  assert.equal(post.method, 'POST')
  assert.equal(post.content_type, 'text/plain')
  assert.equal(post.content_length, 3)
})

test('parse_req_form: get_form_field, get_part_names, get_part, iteration; chunked output', async (t) => {
  const base = await start(t)
  const fd = new FormData()
  fd.append('text', 'hello form')
  fd.append('doc', new Blob(['file one'], { type: 'text/plain' }), 'one.txt')
  fd.append('pic', new Blob([new Uint8Array([0, 255, 1])], { type: 'image/png' }), 'two.png')
  const res = await fetch(`${base}/evpoco/form?q=from-query`, { method: 'POST', body: fd })
  assert.equal(res.headers.get('transfer-encoding'), 'chunked')
  assert.equal(res.headers.get('content-length'), null)
  const got = await res.json()
  assert.equal(got.text, 'hello form')
  assert.equal(got.q, 'from-query', 'query parameters are form fields too (as in Poco)')
  assert.equal(got.missing, '')
  assert.equal(got.empty, false)
  assert.deepEqual(got.iter, ['q=from-query', 'text=hello form'])
  assert.deepEqual(got.parts, [
    { key: 'one.txt', name: 'doc', file_name: 'one.txt', type: 'text/plain', length: 8, data_ok: true, params_name: 'doc', params_filename: 'one.txt' },
    { key: 'two.png', name: 'pic', file_name: 'two.png', type: 'image/png', length: 3, data_ok: true, params_name: 'pic', params_filename: 'two.png' }
  ])
  assert.equal(got.same_names, true, 'request:get_part_names() is the form\'s')
  assert.equal(got.by_field, 'one.txt', 'get_part also finds a part by its field name')
  assert.equal(got.chunked, true)

  const urlencoded = await (await fetch(`${base}/evpoco/form`, { method: 'POST', body: new URLSearchParams({ text: 'plain' }) })).json()
  assert.equal(urlencoded.text, 'plain')
  assert.deepEqual(urlencoded.parts, {}, 'no parts (json.encode writes an empty table as {})')
})

test('request:read() hands the body over chunk by chunk; response:write(data, n) writes n bytes', async (t) => {
  const base = await start(t)
  const data = randomBytes(1024 * 1024)
  const res = await fetch(`${base}/evpoco/read`, { method: 'POST', body: data, headers: { 'content-type': 'application/octet-stream' } })
  const back = Buffer.from(await res.arrayBuffer())
  assert.ok(Number(res.headers.get('x-reads')) > 1)
  assert.equal(back.length, data.length + 8)
  assert.equal(createHash('sha256').update(back.subarray(0, data.length)).digest('hex'), createHash('sha256').update(data).digest('hex'))
  assert.equal(back.subarray(data.length).toString(), 'trailing')
})

test('set_chunked_trfencoding(false) + set_content_length: a fixed-length response', async (t) => {
  const base = await start(t)
  const res = await rawGet(`${base}/evpoco/length`)
  assert.equal(res.headers['content-length'], '5')
  assert.equal(res.headers['transfer-encoding'], undefined)
  assert.equal(res.body, 'hello')
})

test('status and headers without send(): the handler\'s return ends the response', async (t) => {
  const base = await start(t)
  const res = await rawGet(`${base}/evpoco/status_only`)
  assert.equal(res.status, 202)
  assert.equal(res.headers['x-only'], 'headers')
})

test('outside a request handler\'s coroutine there is no request: nil, err', async (t) => {
  const base = await start(t)
  const got = await (await fetch(`${base}/evpoco/outside`)).json()
  assert.deepEqual(got, { none: true, err: 'no http request in this coroutine', err2: 'no http request in this coroutine', inside: true })
})
