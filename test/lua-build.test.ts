// The Lua builds: ours (src/lua-wasm, native wasm exceptions) by default, wasmoon's on request.
// This file runs in a process of its own, so it can switch the build before any engine exists.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { test } from 'node:test'
import { loadLuaModule, luaBuildName } from '../src/lua-bridge/lua-api.ts'
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

  const { app: coroutines } = await luaApp(t, 'coroutines')
  const waited = await coroutines.inject({ url: '/pcall' })
  assert.equal(waited.statusCode, 200)
  assert.deepEqual(waited.json().caught, [false, 'after wait'])

  const { app: errors } = await luaApp(t, 'errors', { nodeEnv: 'development' })
  const failed = await errors.inject({ url: '/after_wait' })
  assert.equal(failed.statusCode, 500)
  assert.match(failed.json().message, /^routes\/after_wait\.lua:4: failed after waiting\nstack traceback:/)
})
