// The platform module's core: sleep, spawn / wait, now, null.
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { LogCapture, luaApp } from './helpers/evlua.ts'

test('sleep suspends the handler for that long and returns nothing', async (t) => {
  const { app } = await luaApp(t, 'platform')
  const r = (await app.inject({ url: '/sleep?s=0.05' })).json()
  assert.ok(r.slept >= 0.045 && r.slept < 1, `slept ${r.slept}`)
  assert.equal(r.results, 0)
  const zero = (await app.inject({ url: '/sleep?s=0' })).json()
  assert.ok(zero.slept < 0.5)
})

test('200 requests each sleeping 1 s all finish in about 1 s (real sockets)', async (t) => {
  const { app } = await luaApp(t, 'platform')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const t0 = performance.now()
  const results = await Promise.all(Array.from({ length: 200 }, async () => {
    const res = await fetch(`${base}/sleep?s=1`)
    assert.equal(res.status, 200)
    return (await res.json()) as { slept: number }
  }))
  const elapsed = (performance.now() - t0) / 1000
  assert.equal(results.length, 200)
  for (const r of results) assert.ok(r.slept >= 0.99 && r.slept < 2, `one request slept ${r.slept} s`)
  assert.ok(elapsed >= 1 && elapsed < 2.5, `200 sleeping requests took ${elapsed.toFixed(2)} s`)
})

test('now is the time in seconds, as a float', async (t) => {
  const { app } = await luaApp(t, 'platform')
  const before = Date.now() / 1000
  const r = (await app.inject({ url: '/now' })).json()
  const after = Date.now() / 1000
  assert.ok(r.now >= before - 0.01 && r.now <= after + 0.01, `${before} <= ${r.now} <= ${after}`)
  assert.equal(r.float, true)
  assert.equal(r.monotonic, true)
})

test('null is one sentinel: platform.null == json.null, not nil, encoded as JSON null', async (t) => {
  const { app } = await luaApp(t, 'platform')
  const r = (await app.inject({ url: '/null' })).json()
  assert.deepEqual(r, {
    same_as_json: true,
    same_via_require: true,
    is_nil: false,
    truthy: true,
    type: 'userdata',
    encoded: r.encoded,
    decoded_is_null: true
  })
  assert.deepEqual(JSON.parse(r.encoded), { a: null, list: [1, null, 3] })
})

test('misuse raises: sleep needs a number, spawn a function', async (t) => {
  const { app } = await luaApp(t, 'platform')
  assert.deepEqual((await app.inject({ url: '/misuse' })).json(), {
    sleep: "bad argument #1 to 'sleep' (number expected, got string)",
    spawn: "bad argument #1 to 'spawn' (function expected, got number)"
  })
})

test('spawn runs functions concurrently with their arguments; wait gives their results (again and again)', async (t) => {
  const { app } = await luaApp(t, 'platform')
  const r = (await app.inject({ url: '/spawn' })).json()
  assert.deepEqual(r.results, [{ sum: 11, name: 'task 1' }, { sum: 12, name: 'task 2' }, { sum: 13, name: 'task 3' }])
  assert.deepEqual(r.again, [11, 'task 1'])
  assert.equal(r.done, true)
  assert.ok(r.elapsed >= 0.095 && r.elapsed < 0.25, `three 0.1 s tasks took ${r.elapsed} s`)
})

test('a function that never waits has run by the time spawn returns', async (t) => {
  const { app } = await luaApp(t, 'platform')
  assert.deepEqual((await app.inject({ url: '/spawn_sync' })).json(), { ran: true, done: true, result: 'quick' })
})

test('a spawned function that raises: wait gives nil, err and the log gets the traceback', async (t) => {
  const log = new LogCapture()
  const { app } = await luaApp(t, 'platform', { log })
  const r = (await app.inject({ url: '/spawn_error' })).json()
  assert.equal(r.value, undefined)
  assert.match(r.err, /routes\/spawn_error\.lua:5: spawned failure/)
  const logged = log.errors().find((l) => l.msg === 'spawned Lua task failed')
  assert.ok(logged, 'the failure is logged')
  assert.match(logged.lua, /spawned failure/)
  assert.match(logged.lua, /stack traceback:[\s\S]*routes\/spawn_error\.lua:5/)
})

test('a spawned task outlives the request that started it', async (t) => {
  const { app } = await luaApp(t, 'platform')
  const started = await app.inject({ method: 'POST', url: '/background' })
  assert.deepEqual(started.json(), { log_when_spawned: 0 })
  assert.deepEqual((await app.inject({ url: '/background' })).json(), [1, 2, 3, 'done'])
})
