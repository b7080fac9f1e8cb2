// What a suspended request holds in Lua: its coroutine, its request table, its frames. The bench
// (bench/memory.ts) measures the whole of it (JS heap too) against a 2 KB target; this test keeps
// the Lua part, which is exact, from growing unnoticed.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { luaApp, runLua, type LuaApp } from './helpers/evlua.ts'

const N = 500
/** Measured 1,190 bytes (2026-11-22); a table slot more per request shows as +24 or more. */
const MAX_LUA_BYTES_PER_REQUEST = 1250

async function luaBytesAfterGc (evlua: LuaApp['evlua']): Promise<number> {
  const [n] = await runLua(evlua, 'collectgarbage("collect") collectgarbage("collect") return collectgarbage("count") * 1024')
  return n as number
}

test(`a suspended request holds at most ${MAX_LUA_BYTES_PER_REQUEST} bytes of Lua heap`, async (t) => {
  const { app, evlua } = await luaApp(t, 'memory')
  // warm-up: the route learns what it reads; the thread pool is filled back after
  for (let i = 0; i < 4; i++) await Promise.all(Array.from({ length: 8 }, () => app.inject('/hold?s=0')))
  const before = await luaBytesAfterGc(evlua)
  const held = Array.from({ length: N }, () => app.inject('/hold?s=1'))
  const t0 = Date.now()
  while (evlua.runtime.scheduler.active < N && Date.now() - t0 < 5000) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.equal(evlua.runtime.scheduler.active, N, 'all requests suspended')
  const perRequest = (await luaBytesAfterGc(evlua) - before) / N
  t.diagnostic(`Lua heap per suspended request: ${perRequest.toFixed(0)} bytes`)
  assert.ok(perRequest > 500, `${perRequest} bytes: the requests were not measured while suspended`)
  assert.ok(perRequest <= MAX_LUA_BYTES_PER_REQUEST, `${perRequest.toFixed(0)} bytes per suspended request`)
  for (const r of await Promise.all(held)) assert.equal(r.body, 'held')
})
