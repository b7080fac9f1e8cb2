// Errors: a syntax error stops start-up naming file:line; a runtime error is a 500 (traceback in the
// body only in development), logged with its traceback; the server keeps serving after each.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import evlua from '../src/index.ts'
import { fixture, LogCapture, luaApp, runLua } from './helpers/evlua.ts'

async function registerFails (name: string): Promise<Error & { code?: string }> {
  const app = Fastify({ logger: false })
  try {
    await app.register(evlua, { dir: fixture(name), env: {} })
    await app.ready()
  } catch (err) {
    return err as Error & { code?: string }
  } finally {
    await app.close()
  }
  throw new Error(`the app ${name} started`)
}

test('a syntax error in a route file: registering the plugin rejects, naming file and line', async () => {
  const err = await registerFails('errors-syntax')
  assert.equal(err.code, 'EVLUA_ERR_LUA_LOAD')
  assert.match(err.message, /^cannot load routes\/bad\.lua: routes\/bad\.lua:3: unexpected symbol near '='$/)
})

test('an error while a route file loads: registering rejects, naming file and line', async () => {
  const err = await registerFails('errors-load')
  assert.equal(err.code, 'EVLUA_ERR_LUA_LOAD')
  assert.match(err.message, /routes\/crash\.lua:2: attempt to index a nil value \(local 'config'\)/)
})

test('development: a runtime error is a 500 whose body has the traceback with file:line; the log has it too', async (t) => {
  const log = new LogCapture()
  const { app } = await luaApp(t, 'errors', { log, nodeEnv: 'development' })
  const r = await app.inject({ url: '/boom' })
  assert.equal(r.statusCode, 500)
  const body = r.json()
  assert.equal(body.code, 'EVLUA_ERR_LUA_RUNTIME')
  assert.match(body.message, /^routes\/boom\.lua:2: attempt to index a nil value \(local 't'\)\nstack traceback:\n/)
  assert.match(body.message, /\troutes\/boom\.lua:2: in function/)

  const logged = log.errors().find((l) => l.reqId !== undefined && /boom/.test(l.req?.url ?? ''))
  assert.ok(logged, 'the error is logged')
  assert.match(logged.err.stack, /routes\/boom\.lua:2: attempt to index a nil value/)
  assert.match(logged.err.stack, /stack traceback:[\s\S]*routes\/boom\.lua:2/)
  assert.equal((await app.inject({ url: '/ok' })).body, 'ok', 'the server keeps serving')
})

test('production: the body hides the traceback, the log keeps it', async (t) => {
  const log = new LogCapture()
  const { app } = await luaApp(t, 'errors', { log, nodeEnv: 'production' })
  const r = await app.inject({ url: '/boom' })
  assert.equal(r.statusCode, 500)
  assert.deepEqual(r.json(), {
    statusCode: 500, code: 'EVLUA_ERR_LUA_RUNTIME', error: 'Internal Server Error', message: 'the Lua handler failed'
  })
  assert.doesNotMatch(r.body, /boom\.lua|traceback/)
  const logged = log.errors().find((l) => /boom/.test(l.req?.url ?? ''))
  assert.ok(logged, 'the error is logged')
  assert.match(logged.err.stack, /stack traceback:[\s\S]*routes\/boom\.lua:2/)
  assert.equal((await app.inject({ url: '/ok' })).body, 'ok', 'the server keeps serving')
})

test('errors raised with a table, with level 0, and after a wait', async (t) => {
  const { app } = await luaApp(t, 'errors', { nodeEnv: 'development' })
  const table = await app.inject({ url: '/raise' })
  assert.equal(table.statusCode, 500)
  assert.match(table.json().message, /^\{"code":42\}\nstack traceback:[\s\S]*routes\/raise\.lua:3/)
  const level0 = await app.inject({ method: 'POST', url: '/raise' })
  assert.match(level0.json().message, /^no position here\nstack traceback:[\s\S]*routes\/raise\.lua:4/)
  const waited = await app.inject({ url: '/after_wait' })
  assert.equal(waited.statusCode, 500)
  assert.match(waited.json().message, /^routes\/after_wait\.lua:4: failed after waiting\nstack traceback:/)
  assert.equal((await app.inject({ url: '/ok' })).body, 'ok')
})

test('an error after the response started: the response is cut off, the log has the traceback', async (t) => {
  const log = new LogCapture()
  const { app } = await luaApp(t, 'errors', { log, nodeEnv: 'development' })
  await assert.rejects(app.inject({ url: '/streamed' }), { code: 'LIGHT_ECONNRESET' })
  const logged = log.errors().find((l) => /failed while streaming/.test(l.err?.stack ?? ''))
  assert.ok(logged, 'the error is logged')
  assert.match(logged.err.stack, /routes\/streamed\.lua:4: failed while streaming\nstack traceback:/)
  assert.equal((await app.inject({ url: '/ok' })).body, 'ok')
})

test('require of a disabled module says how to enable it', async (t) => {
  const { app, evlua: ctx } = await luaApp(t, 'errors', { nodeEnv: 'development' })
  ctx.runtime.modules.disable('evtest', 'set TEST_URL or config test.url')
  assert.deepEqual((await app.inject({ url: '/needs?name=evtest' })).json(), {
    ok: false, err: "module 'evtest' is not enabled: set TEST_URL or config test.url"
  })
  // A module that does not exist at all is "not found", listing where it was looked for.
  const missing = (await app.inject({ url: '/needs?name=nope' })).json()
  assert.match(missing.err, /^module 'nope' not found:[\s\S]*no file 'lib\/nope\.lua'/)
  assert.equal((await app.inject({ url: '/ok' })).body, 'ok')
})

test('require \'evpostgres\' without DATABASE_URL says to set it, at the line of the require', async (t) => {
  const { app } = await luaApp(t, 'errors', { nodeEnv: 'development' })
  const caught = (await app.inject({ url: '/needs?name=evpostgres' })).json()
  assert.equal(caught.ok, false)
  assert.match(caught.err, /^module 'evpostgres' is not enabled: .*DATABASE_URL/)
  const raised = await app.inject({ url: '/pg' })
  assert.equal(raised.statusCode, 500)
  assert.match(raised.json().message, /^routes\/pg\.lua:3: module 'evpostgres' is not enabled: .*DATABASE_URL/)
  assert.equal((await app.inject({ url: '/ok' })).body, 'ok')
})

test('a Lua error raised while a JS result is pushed (a NaN table key) stays a Lua error: pcall catches it, the engine goes on', async (t) => {
  const { evlua } = await luaApp(t, 'empty')
  evlua.runtime.define({ name: 'test.nan', functions: { bad: () => new Map([[Number.NaN, 1]]), ok: () => 'fine' } })
  const [caught, message, after] = await runLua(evlua, `
    local m = require('test.nan')
    local ok, err = pcall(m.bad)
    return ok, err, m.ok()`)
  assert.equal(caught, false)
  assert.match(String(message), /table index is NaN/)
  assert.equal(after, 'fine')
  await assert.rejects(runLua(evlua, "require('test.nan').bad()"), /table index is NaN/)
  assert.deepEqual(await runLua(evlua, "return require('test.nan').ok()"), ['fine'])
})
