// What a handler returns becomes the response (API.md section 3, the table of return conventions).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { luaApp } from './helpers/evlua.ts'

const TEXT = 'text/plain; charset=utf-8'
const JSON_TYPE = 'application/json; charset=utf-8'

test('a string: 200, text/plain', async (t) => {
  const { app } = await luaApp(t, 'responses')
  const r = await app.inject({ url: '/string' })
  assert.equal(r.statusCode, 200)
  assert.equal(r.headers['content-type'], TEXT)
  assert.equal(r.body, 'plain text')
})

test('a table: 200, JSON (keys 1..n are an array, an empty table is {}, platform.null is null)', async (t) => {
  const { app } = await luaApp(t, 'responses')
  const r = await app.inject({ url: '/table' })
  assert.equal(r.statusCode, 200)
  assert.equal(r.headers['content-type'], JSON_TYPE)
  assert.deepEqual(r.json(), { name: 'evlua', list: [1, 2, 3], empty: {}, yes: true, null: null })
  const a = await app.inject({ url: '/array' })
  assert.equal(a.headers['content-type'], JSON_TYPE)
  assert.equal(a.body, '["a","b"]')
})

test('status, body [, headers]', async (t) => {
  const { app } = await luaApp(t, 'responses')
  const created = await app.inject({ url: '/status_body' })
  assert.equal(created.statusCode, 201)
  assert.equal(created.headers['content-type'], TEXT)
  assert.equal(created.body, 'created')

  const accepted = await app.inject({ url: '/status_table_headers' })
  assert.equal(accepted.statusCode, 202)
  assert.equal(accepted.headers['content-type'], JSON_TYPE)
  assert.deepEqual(accepted.json(), { accepted: true })
  assert.equal(accepted.headers['x-one'], 'one')
  assert.equal(accepted.headers['x-number'], '7')
  assert.deepEqual(accepted.headers['set-cookie'], ['a=1', 'b=2'])

  const notFound = await app.inject({ url: '/status_only' })
  assert.equal(notFound.statusCode, 404)
  assert.equal(notFound.body, '')

  const redirect = await app.inject({ url: '/redirect' })
  assert.equal(redirect.statusCode, 302)
  assert.equal(redirect.headers.location, '/elsewhere')
  assert.equal(redirect.body, '')

  const number = await app.inject({ url: '/number_body' })
  assert.equal(number.body, '42')
  assert.equal(number.headers['content-type'], TEXT)
})

test('nothing returned and nothing sent: 204 No Content', async (t) => {
  const { app } = await luaApp(t, 'responses')
  for (const url of ['/nothing', '/explicit_nil']) {
    const r = await app.inject({ url })
    assert.equal(r.statusCode, 204, url)
    assert.equal(r.body, '')
    assert.equal(r.headers['content-type'], undefined)
  }
})

test('send_status, then nothing returned: that status; then a string: that status and the string', async (t) => {
  const { app } = await luaApp(t, 'responses')
  const teapot = await app.inject({ url: '/status_then_nothing' })
  assert.equal(teapot.statusCode, 418)
  assert.equal(teapot.body, '')
  const gone = await app.inject({ url: '/status_then_string' })
  assert.equal(gone.statusCode, 410)
  assert.equal(gone.body, 'gone')
})

test('a Content-Type the handler sent wins over the default', async (t) => {
  const { app } = await luaApp(t, 'responses')
  const html = await app.inject({ url: '/content_type' })
  assert.equal(html.headers['content-type'], 'text/html; charset=utf-8')
  assert.equal(html.body, '<p>hi</p>')
  const api = await app.inject({ url: '/content_type_table' })
  // (Fastify adds the charset to a string payload's type, as it does for JS routes.)
  assert.match(String(api.headers['content-type']), /^application\/vnd\.api\+json\b/)
  assert.deepEqual(JSON.parse(api.body), { a: 1 })
  const both = await app.inject({ url: '/header_then_return' })
  assert.equal(both.headers['x-before'], 'yes')
  assert.equal(both.headers['x-after'], 'also')
  assert.equal(both.body, 'with header')
})

test('`nil, err` is a 500 naming the error; a table JSON cannot encode is a 500; the server keeps serving', async (t) => {
  const { app } = await luaApp(t, 'responses')
  const failed = await app.inject({ url: '/nil_err' })
  assert.equal(failed.statusCode, 500)
  assert.equal(failed.json().code, 'EVLUA_ERR_LUA_RUNTIME')
  assert.match(failed.json().message, /the database is down/)

  const unencodable = await app.inject({ url: '/unencodable' })
  assert.equal(unencodable.statusCode, 500)
  assert.match(unencodable.json().message, /cannot encode a value of type function/)

  assert.equal((await app.inject({ url: '/ok' })).body, 'still serving')
})
