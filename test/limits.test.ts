// Limits: CPU budget (503), wall-clock budget (504), memory cap (500), locked globals; the server
// keeps serving after each.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import { luaApp } from './helpers/evlua.ts'

const CPU_MS = 300

test('an endless loop is stopped with a 503 after lua.cpu_timeout_ms; other requests are served meanwhile', async (t) => {
  const { app } = await luaApp(t, 'limits', { config: { lua: { cpu_timeout_ms: 600 } } })
  const order: string[] = []
  const t0 = performance.now()
  // A request that sleeps 50 ms starts first; the loop starts while it sleeps.
  const sleeper = app.inject({ url: '/sleep?s=0.05' }).then((r) => { order.push('sleeper'); return [r, performance.now() - t0] as const })
  const loop = app.inject({ url: '/loop' }).then((r) => { order.push('loop'); return [r, performance.now() - t0] as const })
  const [[slept, sleptAt], [looped, loopedAt]] = await Promise.all([sleeper, loop])
  assert.equal(slept.body, 'slept')
  assert.equal(looped.statusCode, 503)
  assert.deepEqual(looped.json(), {
    statusCode: 503,
    code: 'EVLUA_ERR_LUA_CPU_TIMEOUT',
    error: 'Service Unavailable',
    message: 'the Lua handler ran on the CPU for more than 600 ms (config lua.cpu_timeout_ms) and was stopped'
  })
  assert.deepEqual(order, ['sleeper', 'loop'], 'the sleeping request finished while the loop was running')
  assert.ok(sleptAt < 400, `the sleeping request took ${sleptAt.toFixed(0)} ms`)
  assert.ok(loopedAt >= 600, `the loop was stopped after ${loopedAt.toFixed(0)} ms`)
  assert.equal((await app.inject({ url: '/quick' })).body, 'quick')
})

test('endless loops inside pcall, coroutine.wrap, coroutine.resume and a table.sort comparator are all stopped', async (t) => {
  const { app } = await luaApp(t, 'limits', { config: { lua: { cpu_timeout_ms: CPU_MS } } })
  const urls = ['/loop_pcall', '/loop_pcall_return', '/loop_wrap', '/loop_resume', '/loop_sort', '/loop_sort_pcall']
  for (const url of urls) {
    const r = await app.inject({ url })
    assert.equal(r.statusCode, 503, `${url}: ${r.body}`)
    assert.equal(r.json().code, 'EVLUA_ERR_LUA_CPU_TIMEOUT')
    assert.equal((await app.inject({ url: '/quick' })).body, 'quick', `serving after ${url}`)
  }
})

test('endless runs of every shape are stopped: loops of each kind, goto, tail recursion (vararg too)', async (t) => {
  const { app } = await luaApp(t, 'limits', { config: { lua: { cpu_timeout_ms: CPU_MS } } })
  for (const shape of ['while', 'repeat', 'goto', 'for', 'float_for', 'pairs', 'tail', 'vararg_tail', 'string']) {
    const r = await app.inject({ url: `/shapes?shape=${shape}` })
    assert.equal(r.statusCode, 503, `${shape}: ${r.body}`)
    assert.equal((await app.inject({ url: '/quick' })).body, 'quick', `serving after ${shape}`)
  }
})

test('the CPU budget counts every slice of a handler, not only the longest', async (t) => {
  const { app } = await luaApp(t, 'limits', { config: { lua: { cpu_timeout_ms: CPU_MS } } })
  const r = await app.inject({ url: '/bursts' })
  assert.equal(r.statusCode, 503)
  assert.equal((await app.inject({ url: '/quick' })).body, 'quick')
})

test('a handler still waiting after lua.request_timeout_ms is stopped with a 504', async (t) => {
  const { app } = await luaApp(t, 'limits', { config: { lua: { request_timeout_ms: 200 } } })
  const t0 = performance.now()
  const r = await app.inject({ url: '/sleep?s=30' })
  const elapsed = performance.now() - t0
  assert.equal(r.statusCode, 504)
  assert.deepEqual(r.json(), {
    statusCode: 504,
    code: 'EVLUA_ERR_LUA_REQUEST_TIMEOUT',
    error: 'Gateway Timeout',
    message: 'the Lua handler did not finish within 200 ms (config lua.request_timeout_ms) and was stopped'
  })
  assert.ok(elapsed >= 200 && elapsed < 2000, `stopped after ${elapsed.toFixed(0)} ms`)
  assert.equal((await app.inject({ url: '/sleep?s=0.01' })).body, 'slept')
})

test('the memory cap: an allocation storm is a 500, and the next request works', async (t) => {
  const { app } = await luaApp(t, 'limits', { config: { lua: { memory_limit_mb: 8, cpu_timeout_ms: 5000 } } })
  const check = (r: LightMyRequestResponse, what: string): void => {
    assert.equal(r.statusCode, 500, `${what}: ${r.body}`)
    assert.equal(r.json().code, 'EVLUA_ERR_LUA_RUNTIME')
    assert.match(r.json().message, /not enough memory/)
  }
  for (let i = 0; i < 3; i++) {
    check(await app.inject({ url: '/storm' }), 'a table of strings')
    assert.equal((await app.inject({ url: '/alloc' })).body, '10000')
    check(await app.inject({ url: '/doubling' }), 'a string doubling')
    assert.equal((await app.inject({ url: '/alloc' })).body, '10000')
  }
  assert.equal((await app.inject({ url: '/quick' })).body, 'quick')
})

test('a handler assigning a global gets an error; the global does not leak to another request', async (t) => {
  const { app } = await luaApp(t, 'limits', { nodeEnv: 'development' })
  const plain = await app.inject({ url: '/set_global' })
  assert.equal(plain.statusCode, 500)
  assert.match(plain.json().message,
    /^routes\/set_global\.lua:3: assignment to undeclared global 'leaked': declare it local/)
  const viaG = await app.inject({ method: 'POST', url: '/set_global' })
  assert.equal(viaG.statusCode, 500)
  assert.match(viaG.json().message, /^routes\/set_global\.lua:7: assignment to undeclared global 'leaked'/)
  assert.deepEqual((await app.inject({ url: '/read_global' })).json(), { leaked: 'nil', in_G: 'nil' })
})
