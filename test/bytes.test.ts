// Strings are byte strings: every byte 0x00-0xFF survives request → Lua → response, and Lua → JS → Lua.
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { charCode, indexOf, slice } from '../src/lua-bridge/strings.ts'
import { NativeJsonWriter } from '../src/lua-bridge/json-native.ts'
import { UNSUPPORTED } from '../src/lua-bridge/table-reader.ts'
import { toBytes } from '../src/lua-bridge/values.ts'
import { luaApp, runLua } from './helpers/evlua.ts'

const ALL = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
const BIG = Buffer.concat(Array.from({ length: 1000 }, () => ALL))

test('every byte round-trips through request body → Lua → response body', async (t) => {
  const { app } = await luaApp(t, 'bytes')
  for (const payload of [ALL, Buffer.from(ALL).reverse(), BIG, Buffer.from([0]), Buffer.from([0xff, 0xfe, 0x00, 0x80])]) {
    const r = await app.inject({
      method: 'POST', url: '/echo', payload, headers: { 'content-type': 'application/octet-stream' }
    })
    assert.equal(r.statusCode, 200)
    assert.equal(r.headers['x-length'], String(payload.length))
    assert.ok(r.rawPayload.equals(payload), `a body of ${payload.length} bytes came back changed`)
  }
  const streamed = await app.inject({
    method: 'POST', url: '/stream', payload: ALL, headers: { 'content-type': 'application/octet-stream' }
  })
  assert.ok(streamed.rawPayload.equals(ALL), 'streamed through send_data')
})

test('every byte round-trips over a real socket', async (t) => {
  const { app } = await luaApp(t, 'bytes')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  for (const url of ['/echo', '/stream']) {
    const res = await fetch(base + url, { method: 'POST', body: BIG, headers: { 'content-type': 'application/octet-stream' } })
    assert.equal(res.status, 200)
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(BIG), url)
  }
  const made = await fetch(`${base}/all`)
  assert.ok(Buffer.from(await made.arrayBuffer()).equals(ALL), 'bytes made in Lua')
})

test('every byte survives percent-decoding of the query and of an urlencoded body', async (t) => {
  const { app } = await luaApp(t, 'bytes')
  const encoded = [...ALL].map((b) => '%' + b.toString(16).padStart(2, '0')).join('')
  const q = await app.inject({ url: `/query?b=${encoded}` })
  assert.ok(q.rawPayload.equals(ALL))
  const form = await app.inject({
    method: 'POST', url: '/form', payload: `b=${encoded}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }
  })
  assert.ok(form.rawPayload.equals(ALL))
})

test('every byte round-trips through a JS function: Lua → JS → Lua, and JS → Lua → JS', async (t) => {
  const { evlua } = await luaApp(t, 'empty')
  const seen: Buffer[] = []
  evlua.runtime.define({
    name: 'test.bytes',
    functions: {
      echo: (v: unknown) => v,
      all: () => ALL,
      big: () => BIG,
      keep: (v: string | Buffer) => { seen.push(toBytes(v)); return true },
      nested: (v: unknown) => v
    }
  })
  const [same, fromJs, big, utf8, nul, inTable] = await runLua(evlua, `
    local m = require 'test.bytes'
    local t = {}
    for i = 0, 255 do t[#t + 1] = string.char(i) end
    local all = table.concat(t)
    m.keep(all)
    m.keep(all:reverse())
    m.keep('a\\0b')
    m.keep('é€')
    local big = string.rep(all, 1000)
    m.keep(big)
    local list, map = m.nested({ all, { all } }), m.nested({ key = all })
    return m.echo(all) == all, m.all() == all, m.big() == big and m.echo(big) == big,
      m.echo('é€') == 'é€' and #m.echo('é€') == 5, m.echo('a\\0b') == 'a\\0b',
      list[1] == all and list[2][1] == all and map.key == all`)
  assert.deepEqual([same, fromJs, big, utf8, nul, inTable], [true, true, true, true, true, true])
  assert.equal(seen.length, 5)
  assert.ok(seen[0].equals(ALL))
  assert.ok(seen[1].equals(Buffer.from(ALL).reverse()))
  assert.ok(seen[2].equals(Buffer.from('a\0b')))
  assert.ok(seen[3].equals(Buffer.from('é€', 'utf8')))
  assert.ok(seen[4].equals(BIG))

  // The results of a task come to JS as bytes too.
  const [back] = await runLua(evlua, 'local t = {} for i = 0, 255 do t[#t + 1] = string.char(i) end return table.concat(t)')
  assert.ok(toBytes(back as string | Buffer).equals(ALL))
})

test('tables nested deeply cross between Lua and JS without harm', async (t) => {
  const { evlua } = await luaApp(t, 'empty')
  evlua.runtime.define({ name: 'test.echo', functions: { echo: (v: unknown) => v } })
  for (let i = 0; i < 3; i++) {
    const [depth] = await runLua(evlua, `
      local echo = require('test.echo').echo
      local t = {}; local c = t
      for i = 1, 60 do c.next = {}; c = c.next end
      c.last = true
      local back = echo(t)
      local n = 0
      while back.next do back = back.next; n = n + 1 end
      return back.last and n`)
    assert.equal(depth, 60)
  }
  const [value, err] = await runLua(evlua, `
    local t = {}; local c = t
    for i = 1, 100 do c.next = {}; c = c.next end
    return require('test.echo').echo(t)`)
  assert.equal(value, undefined)
  assert.match(err as string, /too deeply nested/)
  assert.deepEqual(await runLua(evlua, 'return "still fine"'), ['still fine'])
})

test('the engine calls the Lua build\'s wasm exports directly, not wasmoon\'s checking wrappers', async (t) => {
  const { evlua } = await luaApp(t, 'empty')
  const { mod } = evlua.runtime.engine
  // A wasm export is a native function; wasmoon's wrapper is JS (an assertion, then apply).
  for (const fn of [mod._lua_gettop, mod._lua_pushlstring, mod._lua_resume, mod._malloc]) {
    assert.match(Function.prototype.toString.call(fn), /\[native code\]/)
  }
  assert.ok(mod.HEAPU8 instanceof Uint8Array, 'the module\'s memory views are still there')
})

test('strings cross both ways intact after wasm memory grows under them', async (t) => {
  const { evlua } = await luaApp(t, 'empty')
  const { mod } = evlua.runtime.engine
  evlua.runtime.define({ name: 'test.grow', functions: { echo: (s: string) => s + '|js' } })
  const before = mod.HEAPU8.buffer.byteLength
  // a 96 MB string makes the memory grow in the middle of the task; the calls around it still work
  const [result, grew] = await runLua(evlua, `
    local echo = require('test.grow').echo
    local a = echo('before')
    local big = string.rep('x', 96 * 1024 * 1024)
    local b = echo('after' .. #big)
    big = nil
    collectgarbage()
    return a .. ';' .. b, true`)
  assert.equal(grew, true)
  assert.ok(mod.HEAPU8.buffer.byteLength > before, 'the wasm memory grew')
  assert.equal(result, 'before|js;after100663296|js')
})

test('the JSON writer gives a string when the text is UTF-8 (Node sends it with the head in one write), else the exact bytes', async (t) => {
  const { evlua } = await luaApp(t, 'empty')
  const engine = evlua.runtime.engine
  const json = (source: string): unknown => {
    const ref = engine.runMain(source, '=json writer test')
    engine.pushRef(engine.L, ref)
    try {
      return engine.tableJson(engine.L, -1)
    } finally {
      engine.mod._lua_settop(engine.L, 0)
      engine.unref(ref)
    }
  }
  const plain = json("return { a = 'plain', n = 1 }")
  assert.equal(typeof plain, 'string')
  assert.deepEqual(JSON.parse(plain as string), { a: 'plain', n: 1 })
  assert.equal(json("return { 'héllo ✓' }"), '["héllo ✓"]')
  const bytes = json("return { 'a\\255' }")
  assert.ok(Buffer.isBuffer(bytes), 'a byte that is not UTF-8 keeps the text as bytes')
  assert.deepEqual(bytes, Buffer.concat([Buffer.from('["a'), Buffer.from([0xff]), Buffer.from('"]')]))
})

test('tables cross to JS by reading wasm memory (the start-up check of the layout passed), the same as through the C API', async (t) => {
  const { evlua } = await luaApp(t, 'empty')
  assert.equal(evlua.runtime.engine.readsTablesDirectly, true)
  assert.equal(evlua.runtime.engine.writesJsonDirectly, true)
  evlua.runtime.define({ name: 'test.echo2', functions: { echo: (v: unknown) => v, json: (v: unknown) => JSON.stringify(v, (_k, x) => typeof x === 'bigint' ? `${x}n` : x) } })
  const [text] = await runLua(evlua, `
    local j = require('test.echo2').json
    local t = { 1, 2, [4] = 4, s = 'x', n = { a = { b = { c = 1.5 } } }, big = math.maxinteger, neg = -7,
      list = { 'a', 'b' }, deleted = { a = 1 }, f = false }
    t.deleted.a = nil
    return j(t)`)
  assert.deepEqual(JSON.parse(text as string), {
    1: 1, 2: 2, 4: 4, s: 'x', n: { a: { b: { c: 1.5 } } }, big: '9223372036854775807n', neg: -7,
    list: ['a', 'b'], deleted: {}, f: false
  })
})

test('our build writes table bodies as JSON in C: the text JSON.stringify gives, and what C leaves to the JS writer still comes out right', async (t) => {
  const { evlua } = await luaApp(t, 'empty')
  const engine = evlua.runtime.engine
  assert.equal(engine.writesJsonNatively, true)
  const { _evlua_json, _evlua_json_out } = engine.mod
  const native = new NativeJsonWriter({ _evlua_json: _evlua_json!, _evlua_json_out: _evlua_json_out! }, engine.bytes)
  const bigints = (_k: string, v: unknown): unknown => typeof v === 'bigint' ? (JSON as unknown as { rawJSON: (s: string) => unknown }).rawJSON(v.toString()) : v
  const check = (source: string, inC: boolean): void => {
    const ref = engine.runMain(source, '=native json test')
    engine.pushRef(engine.L, ref)
    try {
      const expected = JSON.stringify(engine.toJs(engine.L, -1), bigints)
      const c = native.write(engine.mod._lua_topointer(engine.L, -1))
      assert.equal(c !== UNSUPPORTED, inC, `${source}: written in C? expected ${inC}`)
      if (inC) assert.equal(c, expected, source)
      assert.equal(engine.tableJson(engine.L, -1), expected, `${source}: the body sent`)
    } finally {
      engine.mod._lua_settop(engine.L, 0)
      engine.unref(ref)
    }
  }
  check("return { id = '42', q = 'search', agent = 'evlua-bench', ok = true }", true)
  check("return { s = 'tab\\tquote\"back\\\\slash\\0\\31\\127 é €', e = '', no = false }", true)
  check('return { 12.5, 0.3, 63.0, -2.75, 1e-6, 123456.789012, -0.0, 0.5, 7.0, math.maxinteger, math.mininteger }', true)
  check("return { a = { b = { c = { d = { 'deep', {} } } } }, list = { { x = 1 }, { y = 2 } }, empty = {} }", true)
  check("local t = { 1, 2, 3 } t[3] = nil return { t = t, gone = (function() local d = { a = 1, b = 2 } d.a = nil return d end)() }", true)
  check('return { x = string.rep("é", 5000) }', true)
  // what C leaves to the JS writer: floats JS prints in other forms
  check('return { 0.1 + 0.2 }', false)
  check('return { 1e300, 1e-7, 2^53 + 0.0, 1/3 }', false)
  // and what both leave to the slow path (Lua's json.encode): mixed tables, keys JS would reorder
  for (const source of ["return { 1, 2, x = 'mixed' }", "return { ['1'] = 'a digit first', b = 2 }"]) {
    const ref = engine.runMain(source, '=native json test')
    engine.pushRef(engine.L, ref)
    assert.equal(native.write(engine.mod._lua_topointer(engine.L, -1)), UNSUPPORTED, source)
    assert.equal(engine.tableJson(engine.L, -1), undefined, `${source}: neither writer takes it`)
    engine.mod._lua_settop(engine.L, 0)
    engine.unref(ref)
  }
})

test('recurring names (columns, headers) cross as Lua strings kept in the registry: the same text each time, past the cap too', async (t) => {
  const { evlua } = await luaApp(t, 'empty')
  const engine = evlua.runtime.engine
  const L = engine.L
  const names = ['id', 'x-bench', 'é€', 'a\u0000b', ...Array.from({ length: 5000 }, (_, i) => `column_${i}`)]
  for (let round = 0; round < 2; round++) {
    for (const name of names) {
      engine.pushName(L, name)
      assert.equal(engine.bytes.readString(L, -1), name)
      engine.mod._lua_settop(L, 0)
    }
  }
})

test('the bridge string helpers agree with String methods on literals, slices, joins and non-ASCII', () => {
  const base = 'x-bench: evlua-bench?q=search%C3%A9'
  const forms = [base, base.slice(3), base + '/é', ['a', 'b', base].join(''), String(Number.MAX_SAFE_INTEGER), '']
  for (const s of forms) {
    for (let i = -1; i <= s.length; i++) assert.equal(Object.is(charCode(s, i), s.charCodeAt(i)), true)
    for (const search of ['?', '%', 'é', 'zz', '']) {
      assert.equal(indexOf(s, search), s.indexOf(search))
      assert.equal(indexOf(s, search, 5), s.indexOf(search, 5))
    }
    assert.equal(slice(s, 1), s.slice(1))
    assert.equal(slice(s, 1, 4), s.slice(1, 4))
  }
})
