// The Lua builds: ours (src/lua-wasm, native wasm exceptions) by default, wasmoon's on request.
// This file runs in a process of its own, so it can switch the build before any engine exists.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { test } from 'node:test'
import { loadLuaModule, luaBuildName } from '../src/lua-bridge/lua-api.ts'
import { luaApp } from './helpers/evlua.ts'

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

  const { app: coroutines } = await luaApp(t, 'coroutines')
  const waited = await coroutines.inject({ url: '/pcall' })
  assert.equal(waited.statusCode, 200)
  assert.deepEqual(waited.json().caught, [false, 'after wait'])

  const { app: errors } = await luaApp(t, 'errors', { nodeEnv: 'development' })
  const failed = await errors.inject({ url: '/after_wait' })
  assert.equal(failed.statusCode, 500)
  assert.match(failed.json().message, /^routes\/after_wait\.lua:4: failed after waiting\nstack traceback:/)
})
