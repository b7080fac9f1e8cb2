// The Lua builds: ours (src/lua-wasm, native wasm exceptions) by default, wasmoon's on request.
// This file runs in a process of its own, so it can switch the build before any engine exists.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { test } from 'node:test'
import { loadLuaModule, luaBuildName } from '../src/lua-bridge/lua-api.ts'
import { badArgument, multi } from '../src/lua-bridge/values.ts'
import { luaApp, runLua } from './helpers/evlua.ts'

const TAG_SECTION = 13

/** The ids of a wasm binary's sections, in order. */
function sectionIds (wasm: Uint8Array): number[] {
  const ids: number[] = []
  let at = 8
  while (at < wasm.length) {
    const id = wasm[at++]
    let size = 0
    for (let shift = 0; ; shift += 7) {
      const byte = wasm[at++]
      size |= (byte & 0x7f) << shift
      if (byte < 0x80) break
    }
    ids.push(id)
    at += size
  }
  return ids
}

test('the default build is ours, and its longjmp (errors, yields) is a native wasm exception', async () => {
  assert.equal(luaBuildName(), 'native-eh')
  assert.equal((await loadLuaModule()).build, 'native-eh')
  const ours = readFileSync(new URL('../src/lua-wasm/lua.wasm', import.meta.url))
  assert.ok(sectionIds(ours).includes(TAG_SECTION), 'lua.wasm declares an exception tag')
  const wasmoonWasm = createRequire(import.meta.url).resolve('wasmoon/dist/glue.wasm')
  assert.ok(!sectionIds(readFileSync(wasmoonWasm)).includes(TAG_SECTION), 'wasmoon throws JS exceptions instead')
})

test('our build\'s count hook (count-hook.patch: back-edges and entries): deep stacks, line numbers and time slices stay right', async (t) => {
  const { evlua } = await luaApp(t, 'basic')
  // The stack is reallocated many times while the hook is on: each time every frame's base moves.
  const deep = await runLua(evlua, `
    local function sum(n) if n == 0 then return 0 end return n + sum(n - 1) end
    return sum(150000)`)
  assert.deepEqual(deep, [11250075000])
  assert.deepEqual(await runLua(evlua, '\n\nreturn debug.getinfo(1, "l").currentline'), [3])
  const failed = await runLua(evlua, 'local x = 1\nlocal y = nil\nreturn x + y').catch((err: Error) => err.message)
  assert.match(String(failed), /test\.lua:3: attempt to perform arithmetic on a nil value \(local 'y'\)/)

  // A CPU-bound task is suspended by the hook every time slice; a sleeper finishes in between, and
  // the long task still computes the right sum.
  const order: string[] = []
  const long = runLua(evlua, 'local s = 0 for i = 1, 8000000 do s = s + i % 7 end return s')
    .then((r) => { order.push('long'); return r })
  const short = runLua(evlua, 'platform.sleep(0.001) return "short"').then((r) => { order.push('short'); return r })
  let expected = 0
  for (let i = 1; i <= 8000000; i++) expected += i % 7
  assert.deepEqual(await long, [expected])
  assert.deepEqual(await short, ['short'])
  assert.deepEqual(order, ['short', 'long'])
})

test('our build\'s yields by returning (yield-return.patch): waiting calls in every position resume right, and only base-level ones return', async (t) => {
  const { evlua } = await luaApp(t, 'basic')
  const mod = evlua.runtime.engine.mod
  assert.ok(mod._evlua_returnyields, 'the build counts the yields that returned')
  const bigText = 'x'.repeat(200_000)
  evlua.runtime.define({
    name: 'test.wait',
    functions: {
      echo: (...v: unknown[]) => new Promise((resolve) => setImmediate(() => resolve(multi(...v)))),
      fail: () => Promise.reject(new Error('it failed')),
      raise: () => Promise.reject(badArgument(1, 'raise', 'nothing', 1)),
      key: (_t: unknown, k: unknown) => new Promise((resolve) => setImmediate(() => resolve(k))),
      big: () => new Promise((resolve) => setImmediate(() => resolve(bigText)))
    }
  })
  const returned = (): number => mod._evlua_returnyields!()
  const run = async (code: string): Promise<{ result: unknown[], returned: number }> => {
    const before = returned()
    const result = await runLua(evlua, `local w = require('test.wait')\n${code}`)
    return { result, returned: returned() - before }
  }

  // base level, nested Lua calls, several results, nil + err, a raised error, in a loop
  assert.deepEqual(await run(`
    local function nested(x) local a, b = w.echo(x, x + 1) return a + b end
    local out = { w.echo(1), nested(2) }
    local v, err = w.fail()
    out[#out + 1] = tostring(v) .. ' ' .. err
    for i = 1, 3 do out[#out + 1] = w.echo(i * 10) end
    return table.concat(out, ',')`), { result: ['1,5,nil it failed,10,20,30'], returned: 6 })
  const raised = await run('local s = w.echo("a") w.raise() return s').catch((err: Error) => err.message)
  assert.match(String(raised), /bad argument #1 to 'raise'/)

  // tail calls return too (from vararg functions, and ones with upvalues to close); waits in
  // metamethods, iterators and under pcall unwind (lua_yieldk), and what runs after them at base
  // level returns again; a user coroutine's waits return on its own thread
  assert.deepEqual(await run(`
    local function tail(x) return w.echo(x) end
    local function vararg(...) return w.echo(...) end
    local function closing(x) local f = function() return x end return w.echo(f()) end
    local lazy = setmetatable({}, { __index = function(_, k) local v = w.echo(k .. '!') return v end })
    local direct = setmetatable({}, { __index = w.key })
    local ok, v = pcall(function() local a = w.echo('p') local b = w.echo('q') return a .. b end)
    local co = coroutine.wrap(function(x) local a = w.echo(x) coroutine.yield(a) return tail(a .. 'c') end)
    local seen = {}
    for x in function(_, i) if i < 3 then return w.echo(i + 1) end end, nil, 0 do seen[#seen + 1] = x end
    local va, vb = vararg('v', 'w')
    return tail('t'), lazy.k, direct.d, tostring(ok) .. v, co('y'), co(), table.concat(seen), va .. vb, closing('u'), w.echo('end')`),
  { result: ['t', 'k!', 'd', 'truepq', 'y', 'yc', '123', 'vw', 'u', 'end'], returned: 6 })

  // resumed after the time-slice hook suspended it, and with a big value pushed onto the waiting
  // thread (the garbage collector may run finalizers on it, whose JS calls return normally)
  const collected: number[] = []
  evlua.runtime.define({ name: 'test.gc', functions: { note: (n: number) => { collected.push(n) } } })
  const slices = await run(`
    local note = require('test.gc').note
    local s = 0
    for i = 1, 6000000 do s = s + i % 3 end
    local n = 0
    for i = 1, 20 do
      for j = 1, 200 do setmetatable({}, { __gc = function() note(j) end }) end
      n = n + #w.big()
    end
    return s, n, w.echo('after')`)
  let sum = 0
  for (let i = 1; i <= 6000000; i++) sum += i % 3
  assert.deepEqual(slices.result, [sum, 20 * bigText.length, 'after'])
  assert.equal(slices.returned, 21)
  assert.ok(collected.length > 0, 'finalizers ran meanwhile')
})

test('our build\'s allocator (small-alloc.patch) and new tables (new-table.patch): contents stay exact, freed memory is reused by other sizes', async (t) => {
  const { evlua } = await luaApp(t, 'basic')
  // Tables of every constructor shape, then grown past their first size (the general resize).
  const shapes = await runLua(evlua, `
    local out = {}
    for n = 0, 40 do
      local t = { 1, 2, 3, a = 'x', b = 'y' }
      for i = 4, 3 + n do t[i] = i end
      for i = 1, n do t['k' .. i] = i end
      local keys = 0
      for _ in pairs(t) do keys = keys + 1 end
      local made = table.pack(n, 'p', n * 2)
      out[#out + 1] = #t .. ':' .. keys .. ':' .. t.a .. t.b .. ':' .. made.n .. made[2] .. made[3]
    end
    return table.concat(out, ',')`)
  const expected: string[] = []
  for (let n = 0; n <= 40; n++) expected.push(`${3 + n}:${5 + 2 * n}:xy:3p${n * 2}`)
  assert.deepEqual(shapes, [expected.join(',')])

  // Strings and tables of every small size, made, freed, resized (both ways across the small
  // limit) and made again many times over: each keeps its exact bytes.
  const churn = await runLua(evlua, `
    local kept, bad = {}, 0
    for round = 1, 30 do
      local junk = {}
      for len = 1, 300 do
        junk[len] = string.rep(string.char(65 + len % 26), len) .. round
        local t = {}
        for i = 1, len % 40 do t[i] = len end
        junk[-len] = t
      end
      kept[round] = junk[round * 10]
      junk = nil
      collectgarbage()
    end
    for round = 1, 30 do
      local len = round * 10
      if kept[round] ~= string.rep(string.char(65 + len % 26), len) .. round then bad = bad + 1 end
    end
    local grown = {}
    for i = 1, 5000 do grown[i] = i end
    for i = 5000, 1, -1 do grown[i] = nil end
    return bad, #table.concat({ string.rep('ab', 200), string.rep('c', 3) })`)
  assert.deepEqual(churn, [0, 403])

  // A class keeps a bounded amount of freed blocks: the 48 MB that 400,000 strings of 100 bytes
  // took, once freed, hold 240,000 strings of 180 bytes without the wasm memory growing by as much
  // again.
  const heap = (): number => evlua.runtime.engine.mod.HEAPU8.length
  const fill = (len: number, count: number): string => `
    local t = {}
    for i = 1, ${count} do t[i] = string.rep('x', ${len - 7}) .. string.format('%07d', i) end
    local n = #t
    t = nil
    collectgarbage() collectgarbage()
    return n`
  assert.deepEqual(await runLua(evlua, fill(100, 400000)), [400000])
  const before = heap()
  assert.deepEqual(await runLua(evlua, fill(180, 240000)), [240000])
  const grown = heap() - before
  assert.ok(grown < 24 * 1024 * 1024, `wasm memory grew by ${(grown / 1048576).toFixed(1)} MB`)
})

test('EVLUA_LUA_BUILD=wasmoon runs the same app on wasmoon\'s build', async (t) => {
  process.env.EVLUA_LUA_BUILD = 'wasmoon'
  await loadLuaModule(true) // the first test made the default one
  t.after(() => { delete process.env.EVLUA_LUA_BUILD })
  assert.equal(luaBuildName(), 'wasmoon')

  const { app: bytes, evlua } = await luaApp(t, 'bytes')
  assert.equal(evlua.runtime.engine.mod.build, 'wasmoon', 'the engine runs on wasmoon\'s module')
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  const echoed = await bytes.inject({ method: 'POST', url: '/echo', payload: all, headers: { 'content-type': 'application/octet-stream' } })
  assert.ok(echoed.rawPayload.equals(all), 'every byte round-trips')
  evlua.runtime.define({ name: 'test.nan', functions: { bad: () => new Map([[Number.NaN, 1]]) } })
  const [caught, message] = await runLua(evlua, "return pcall(require('test.nan').bad)")
  assert.equal(caught, false, 'a Lua error raised under a JS call is still a Lua error')
  assert.match(String(message), /table index is NaN/)

  // Request tables made key by key (wasmoon's build has no evlua_newfrom), fields brought along too.
  const { app: request } = await luaApp(t, 'request')
  const reads = async (): Promise<unknown> => (await request.inject({ url: '/reads?q=a', headers: { 'x-one': 'One' } })).json()
  const expected = { q: 'a', one: 'One', upper: 'One', absent: true, list: ['a'], names: ['host', 'user-agent', 'x-one'] }
  assert.deepEqual(await reads(), expected)
  assert.deepEqual(await reads(), expected, 'the same once get_params and headers_value come with the request')
  const shapes = async (): Promise<unknown> => (await request.inject({ url: '/shapes/7?q=x' })).json()
  const later = { keys: '_id,_phase,get_params,method,params,path', id: '7', q: 'x', path: 'shapes/7', ip: true, custom: 'mine', kind: 'none' }
  assert.deepEqual(await shapes(), { ...later, keys: '_id,_phase,method,params' })
  assert.deepEqual(await shapes(), later)

  const { app: coroutines } = await luaApp(t, 'coroutines')
  const waited = await coroutines.inject({ url: '/pcall' })
  assert.equal(waited.statusCode, 200)
  assert.deepEqual(waited.json().caught, [false, 'after wait'])

  const { app: errors } = await luaApp(t, 'errors', { nodeEnv: 'development' })
  const failed = await errors.inject({ url: '/after_wait' })
  assert.equal(failed.statusCode, 500)
  assert.match(failed.json().message, /^routes\/after_wait\.lua:4: failed after waiting\nstack traceback:/)
})
