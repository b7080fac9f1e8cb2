// Waiting calls inside the user's own coroutines, and a bare coroutine.yield() in a handler.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { luaApp } from './helpers/evlua.ts'

test('coroutine.wrap with platform.sleep inside: a generator that waits between values', async (t) => {
  const { app } = await luaApp(t, 'coroutines')
  assert.deepEqual((await app.inject({ url: '/wrap' })).json(), { values: [10, 20, 30, 'end'], waited: true })
})

test('coroutine.resume with platform.sleep inside: values in and out, status, dead coroutine', async (t) => {
  const { app } = await luaApp(t, 'coroutines')
  assert.deepEqual((await app.inject({ url: '/resume' })).json(), [
    [true, 2], 'suspended', [true, 10, 'done'], 'dead', [false, 'cannot resume dead coroutine']
  ])
})

test('a coroutine inside a coroutine, both waiting', async (t) => {
  const { app } = await luaApp(t, 'coroutines')
  assert.deepEqual((await app.inject({ url: '/nested' })).json(), ['outer got inner 1', 'outer got inner 2'])
})

test('an error after a wait inside a coroutine reaches resume / the caller of wrap', async (t) => {
  const { app } = await luaApp(t, 'coroutines')
  assert.deepEqual((await app.inject({ url: '/errors' })).json(), {
    resume: [false, 'routes/errors.lua:5: inside resume', 'dead'],
    wrap: [false, 'routes/errors.lua:10: inside wrap']
  })
})

test('waiting inside pcall, xpcall and an __index metamethod', async (t) => {
  const { app } = await luaApp(t, 'coroutines')
  assert.deepEqual((await app.inject({ url: '/pcall' })).json(), {
    pcall: true, xpcall: [true, 'x'], caught: [false, 'after wait'], metamethod: 'lazy field'
  })
})

test('a spawned task waiting inside its own coroutine', async (t) => {
  const { app } = await luaApp(t, 'coroutines')
  assert.deepEqual((await app.inject({ url: '/spawn_wrap' })).json(), { sum: 3 })
})

test('a bare coroutine.yield() in a handler lets other tasks run, then carries on', async (t) => {
  const { app } = await luaApp(t, 'coroutines')
  assert.deepEqual((await app.inject({ url: '/yield' })).json(), { log: 'b1 a1 b2 a2 b3 a3', yieldable: true })
})

test('bare yields of concurrent requests interleave', async (t) => {
  const { app } = await luaApp(t, 'coroutines')
  const [a, b] = await Promise.all([app.inject({ url: '/steps?name=a' }), app.inject({ url: '/steps?name=b' })])
  const log = b.json().log as string
  assert.equal(a.statusCode, 200)
  // Both logs are the one shared log once both finished; its steps alternate between the requests.
  assert.match(log, /a1.*b1.*a2|b1.*a1.*b2/)
  assert.deepEqual(log.split(' ').sort(), ['a1', 'a2', 'a3', 'b1', 'b2', 'b3'])
})

test('waiting where Lua cannot yield (a table.sort comparator) is an error, and the handler goes on', async (t) => {
  const { app } = await luaApp(t, 'coroutines')
  for (let i = 0; i < 2; i++) {
    assert.deepEqual((await app.inject({ url: '/sort_wait' })).json(),
      { ok: false, err: 'attempt to yield across a C-call boundary' })
  }
  assert.equal((await app.inject({ url: '/wrap' })).statusCode, 200)
})
