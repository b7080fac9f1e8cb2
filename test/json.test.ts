// The json module: encode in Lua, decode through JS; arrays, objects, null, numbers, strings, errors.
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { luaApp, runLua } from './helpers/evlua.ts'

/** A runner of Lua chunks (with `json` in scope) in a fresh app. */
async function lua (t: TestContext): Promise<(source: string) => Promise<unknown[]>> {
  const { evlua } = await luaApp(t, 'empty')
  return (source) => runLua(evlua, `local json = require 'json'\n${source}`)
}

test('encode: a table with keys 1..n is an array, an empty table is {}, other tables are objects', async (t) => {
  const run = await lua(t)
  assert.deepEqual(await run(`return json.encode({ 1, 2, 3 }), json.encode({}), json.encode({ a = 1 }),
    json.encode({ 1, nil, 3 }), json.encode({ [10] = 'x' }), json.encode({ 1, 2, x = 'y' }), json.encode({ { {} } })`), [
    '[1,2,3]', '{}', '{"a":1}', '{"1":1,"3":3}', '{"10":"x"}', JSON.stringify({ 1: 1, 2: 2, x: 'y' }), '[[{}]]'
  ])
  const [nested] = await run(`return json.encode({ user = { name = 'Ada', tags = { 'a', 'b' }, admin = false }, n = 3 })`)
  assert.deepEqual(JSON.parse(nested as string), { user: { name: 'Ada', tags: ['a', 'b'], admin: false }, n: 3 })
})

test('encode: scalars, numbers (integers and floats), null', async (t) => {
  const run = await lua(t)
  assert.deepEqual(await run(`return json.encode(nil), json.encode(true), json.encode(false), json.encode(42),
    json.encode(-7), json.encode(0.1), json.encode(3.0), json.encode(1e300), json.encode(math.maxinteger),
    json.encode(json.null), json.encode({ json.null, 1 }), json.encode(1/3)`), [
    'null', 'true', 'false', '42', '-7', '0.1', '3', '1e+300', '9223372036854775807', 'null', '[null,1]',
    '0.33333333333333331'
  ])
  assert.equal(JSON.parse((await run('return json.encode(1/3)'))[0] as string), 1 / 3)
})

test('encode: strings are escaped (quotes, backslash, control characters), UTF-8 kept', async (t) => {
  const run = await lua(t)
  const [s] = await run(`return json.encode('a"b\\\\c\\n\\r\\t\\b\\f\\0\\1\\31\\127 é €')`)
  assert.equal(s, '"a\\"b\\\\c\\n\\r\\t\\b\\f\\u0000\\u0001\\u001f\\u007f é €"')
  assert.equal(JSON.parse(s as string), 'a"b\\c\n\r\t\b\f\u0000\u0001\u001f\u007f é €')
  const [key] = await run(`return json.encode({ ['k"ey'] = 1 })`)
  assert.equal(key, '{"k\\"ey":1}')
})

test('encode: what JSON cannot hold is an error', async (t) => {
  const run = await lua(t)
  const errors = await run(`
    local function err(v) local ok, e = pcall(json.encode, v); assert(not ok); return e end
    local cyclic = {}; cyclic.self = cyclic
    local deep = {}; local c = deep; for i = 1, 150 do c[1] = {}; c = c[1] end
    return err(0/0), err(math.huge), err(-math.huge), err({ [true] = 1 }), err({ f = print }), err(cyclic), err(deep)`)
  assert.equal(errors.length, 7)
  assert.match(errors[0] as string, /^cannot encode -?nan in JSON$/)
  assert.deepEqual(errors.slice(1), [
    'cannot encode inf in JSON', 'cannot encode -inf in JSON', 'cannot encode a table key of type boolean',
    'cannot encode a value of type function in JSON', 'cannot encode a table that contains itself',
    'cannot encode: tables nested too deeply'
  ])
  // The same table twice (not a cycle) is fine.
  assert.deepEqual(await run(`local t = { 1 }; return json.encode({ t, t })`), ['[[1],[1]]'])
})

test('decode: objects, arrays, integers and floats, null as json.null, true/false', async (t) => {
  const run = await lua(t)
  assert.deepEqual(await run(`
    local v = json.decode('{"a":[1,2.5,"x",null,true,false],"b":{},"c":[],"d":{"e":-3}}')
    return math.type(v.a[1]), math.type(v.a[2]), v.a[3], v.a[4] == json.null, v.a[5], v.a[6], #v.a,
      next(v.b) == nil, next(v.c) == nil, v.d.e, math.type(v.d.e)`),
  ['integer', 'float', 'x', true, true, false, 6, true, true, -3, 'integer'])
  assert.deepEqual(await run(`return json.decode('"text"'), json.decode('12'), json.decode('true'), json.decode('null') == json.null`),
    ['text', 12, true, true])
})

test('decode: strings with escapes, \\u0000 and non-ASCII become the right bytes', async (t) => {
  const run = await lua(t)
  assert.deepEqual(await run(`
    local s = json.decode('"a\\\\u0000b\\\\n\\\\u00e9\\\\ud83d\\\\ude00"')
    return #s, s == 'a\\0b\\n\\195\\169\\240\\159\\152\\128'`), [10, true])
})

test('decode: invalid JSON gives nil, err; a non-string argument raises', async (t) => {
  const run = await lua(t)
  const [value, err] = await run(`return json.decode('{bad')`)
  assert.equal(value, undefined)
  assert.match(err as string, /JSON/)
  assert.deepEqual(await run(`return json.decode('')`).then((r) => r[0]), undefined)
  const [ok, raised] = await run(`return pcall(json.decode, 42)`)
  assert.equal(ok, false)
  assert.equal(raised, "bad argument #1 to 'decode' (string expected, got number)")
  // Too deeply nested to build in Lua: an error, and the engine is unharmed.
  for (let i = 0; i < 5; i++) {
    const [none, deep] = await run(`return json.decode(string.rep('[', 200) .. string.rep(']', 200))`)
    assert.equal(none, undefined)
    assert.match(deep as string, /too deeply nested/)
  }
  assert.deepEqual(await run('return json.encode(json.decode(\'{"still":"fine"}\'))'), ['{"still":"fine"}'])
})

test('round trip: decode(encode(v)) is v', async (t) => {
  const run = await lua(t)
  const [same] = await run(`
    local function equal(a, b)
      if type(a) ~= type(b) then return false end
      if type(a) ~= 'table' then return a == b end
      for k, v in pairs(a) do if not equal(v, b[k]) then return false end end
      for k in pairs(b) do if a[k] == nil then return false end end
      return true
    end
    local v = { s = 'x\\0y\\127', n = 1.5, i = -42, list = { 1, 'two', { three = 3 } }, obj = { deep = { deeper = true } },
      null = json.null, empty = {} }
    return equal(json.decode(json.encode(v)), v)`)
  assert.equal(same, true)
})
