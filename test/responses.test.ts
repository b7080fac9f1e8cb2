// What a handler returns becomes the response (API.md section 3, the table of return conventions).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { luaApp, runLua } from './helpers/evlua.ts'

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

test('a table body is a list only when its keys are exactly 1..n; other keys become object keys', async (t) => {
  const { app } = await luaApp(t, 'responses')
  const r = await app.inject({ url: '/keys' })
  assert.equal(r.statusCode, 200, r.body)
  assert.deepEqual(r.json(), {
    mixed: { 1: 'a', 2: 'b', x: 1 },
    sparse: { 1: 'a', 3: 'c' },
    reversed: ['a', 'b'],
    float: { 1.5: 'f' },
    zero: { 0: 'z', 1: 'a' },
    nested: [[1, 2], { k: ['v'] }]
  })
})

test('a big table body comes whole, and the next small one too', async (t) => {
  const { app } = await luaApp(t, 'responses')
  for (let i = 0; i < 2; i++) {
    const big = await app.inject({ url: '/big_table' })
    assert.equal(big.statusCode, 200)
    const list = big.json().list
    assert.equal(list.length, 2000)
    assert.deepEqual(list[1999], { i: 2000, text: 'x'.repeat(90) })
    assert.deepEqual((await app.inject({ url: '/array' })).json(), ['a', 'b'])
  }
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

test('a table body is encoded as json.encode would: integers exact, floats, null, nesting, escapes', async (t) => {
  const { app, evlua } = await luaApp(t, 'responses')
  const r = await app.inject({ url: '/table_values' })
  assert.equal(r.statusCode, 200)
  assert.equal(r.headers['content-type'], JSON_TYPE)
  assert.match(r.body, /"big":9223372036854775807/)
  assert.match(r.body, /"small":-9223372036854775808/)
  const body = r.json()
  assert.equal(body.float, 0.30000000000000004)
  assert.equal(body.whole_float, 2)
  assert.equal(body.null, null)
  assert.deepEqual(body.nested, [{ a: { b: ['c'] } }])
  assert.equal(body.utf8, 'héllo ✓')
  assert.equal(body.quote, 'a"b\\c\n')
  assert.deepEqual(body.keys, { 10: 'ten', 20: 'twenty' })
  assert.deepEqual(body.empty, {})
  // the same text Lua's json.encode gives for the same table, key order aside
  const [luaText] = await runLua(evlua, `local json = require 'json'
    return json.encode({ big = math.maxinteger, float = 0.1 + 0.2, quote = 'a"b\\\\c\\n' })`)
  assert.deepEqual(JSON.parse(luaText as string), { big: 9223372036854775807, float: 0.30000000000000004, quote: 'a"b\\c\n' })
})

test('a table body with bytes that are not UTF-8 keeps them exact; what JSON cannot hold is a 500', async (t) => {
  const { app } = await luaApp(t, 'responses')
  const bytes = await app.inject({ url: '/table_values?kind=bytes' })
  assert.equal(bytes.statusCode, 200)
  assert.ok(bytes.rawPayload.includes(Buffer.from([0x22, 0xff])), 'byte 0xff sent as it is')
  assert.ok(bytes.rawPayload.includes(Buffer.from('\\u0000')), 'NUL escaped')
  assert.ok(bytes.rawPayload.includes(Buffer.from([0x80, 0x22])), 'byte 0x80 sent as it is')
  for (const kind of ['nan', 'inf', 'nested_function']) {
    const r = await app.inject({ url: `/table_values?kind=${kind}` })
    assert.equal(r.statusCode, 500, kind)
    assert.match(r.json().message, /cannot/, kind)
  }
  assert.equal((await app.inject({ url: '/ok' })).body, 'still serving')
})

test('a single value of any other type: what tostring makes of it, as text; a number alone is a status', async (t) => {
  const { app } = await luaApp(t, 'responses')
  for (const kind of ['yes', 'no', 'fn', 'thread', 'null']) {
    const r = await app.inject({ url: `/single?kind=${kind}` })
    const text = await app.inject({ url: `/single?kind=${kind}&text=1` })
    assert.equal(r.statusCode, 200, kind)
    assert.equal(r.headers['content-type'], TEXT, kind)
    assert.equal(r.body, text.body, kind)
    assert.match(r.body, /^(true|false|function: |thread: |userdata: )/, kind)
  }
  const named = await app.inject({ url: '/single?kind=named' })
  assert.equal(named.headers['content-type'], JSON_TYPE)
  assert.equal(named.body, '{}')
  const float = await app.inject({ url: '/single?kind=float' })
  assert.equal(float.statusCode, 201)
  assert.equal(float.body, '')
  // 0 is no HTTP status: a 500, and the next request is served
  const zero = await app.inject({ url: '/single?kind=zero' })
  assert.equal(zero.statusCode, 500)
  assert.equal((await app.inject({ url: '/ok' })).body, 'still serving')
})
