// evlua as a Fastify plugin (API.md section 5): side by side with JS routes, under a prefix, with
// the host's hooks and error handler, registered twice in one app.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import evlua, { type EvluaContext } from '../src/index.ts'
import { fixture, luaApp } from './helpers/evlua.ts'

test('Lua routes under a prefix, side by side with JS routes; the host keeps its own body parsers', async (t) => {
  const { app } = await luaApp(t, 'plugin', {
    prefix: '/lua',
    before: (host) => {
      host.get('/js', async () => ({ from: 'js' }))
      host.post('/js-json', async (request) => ({ parsed: request.body }))
    }
  })
  assert.deepEqual((await app.inject({ url: '/js' })).json(), { from: 'js' })
  assert.equal((await app.inject({ url: '/lua' })).body, 'lua index')
  assert.equal((await app.inject({ url: '/lua/' })).body, 'lua index')
  assert.deepEqual((await app.inject({ url: '/lua/users/5' })).json(), { id: '5' })
  assert.deepEqual((await app.inject({ url: '/lua/whoami' })).json(), { path: 'lua/whoami', count: 1 })
  assert.equal((await app.inject({ url: '/users/5' })).statusCode, 404)
  assert.equal((await app.inject({ url: '/' })).statusCode, 404)

  const json = await app.inject({ method: 'POST', url: '/js-json', payload: { a: [1, 2] } })
  assert.deepEqual(json.json(), { parsed: { a: [1, 2] } })
  const form = await app.inject({
    method: 'POST', url: '/lua/echo', payload: 'name=Ada', headers: { 'content-type': 'application/x-www-form-urlencoded' }
  })
  assert.deepEqual(form.json(), { body: 'name=Ada', name: 'Ada' })
})

test('the config option is merged over the app config', async (t) => {
  const { app, evlua: ctx } = await luaApp(t, 'plugin', { config: { lua: { cpu_timeout_ms: 250 } } })
  assert.equal(ctx.config.lua.cpu_timeout_ms, 250)
  const r = await app.inject({ url: '/loop' })
  assert.equal(r.statusCode, 503)
  assert.match(r.json().message, /more than 250 ms/)
})

test('the host\'s hooks apply to Lua routes', async (t) => {
  const seen: string[] = []
  const { app } = await luaApp(t, 'plugin', {
    prefix: '/lua',
    before: (host) => {
      host.addHook('onRequest', async (request, reply) => {
        seen.push(`onRequest ${request.url}`)
        reply.header('x-on-request', 'yes')
      })
      host.addHook('preHandler', async (request) => { seen.push(`preHandler ${request.url}`) })
      host.addHook('onSend', async (request, reply, payload) => {
        reply.header('x-on-send', 'yes')
        return payload
      })
      host.addHook('onResponse', async (request, reply) => { seen.push(`onResponse ${request.url} ${reply.statusCode}`) })
      host.get('/js', async () => 'js')
    }
  })
  for (const url of ['/lua', '/lua/stream', '/js']) {
    const r = await app.inject({ url })
    assert.equal(r.headers['x-on-request'], 'yes', url)
    assert.equal(r.headers['x-on-send'], 'yes', url)
  }
  assert.equal((await app.inject({ url: '/lua/stream' })).body, 'ab')
  const boom = await app.inject({ url: '/lua/boom' })
  assert.equal(boom.statusCode, 500)
  assert.equal(boom.headers['x-on-send'], 'yes')
  assert.deepEqual(seen.filter((s) => s.includes('/lua/boom')),
    ['onRequest /lua/boom', 'preHandler /lua/boom', 'onResponse /lua/boom 500'])
  assert.ok(seen.includes('onResponse /lua 200'))
})

test('the host\'s error handler handles Lua errors', async (t) => {
  const { app } = await luaApp(t, 'plugin', {
    config: { lua: { cpu_timeout_ms: 200 } },
    before: (host) => {
      host.setErrorHandler(async (err: Error & { code?: string, statusCode?: number }, _request, reply) => {
        return reply.code(err.statusCode ?? 500).send({ handled: true, code: err.code, status: err.statusCode })
      })
    }
  })
  const boom = await app.inject({ url: '/boom' })
  assert.equal(boom.statusCode, 500)
  assert.deepEqual(boom.json(), { handled: true, code: 'EVLUA_ERR_LUA_RUNTIME', status: 500 })
  const loop = await app.inject({ url: '/loop' })
  assert.equal(loop.statusCode, 503)
  assert.deepEqual(loop.json(), { handled: true, code: 'EVLUA_ERR_LUA_CPU_TIMEOUT', status: 503 })
  assert.equal((await app.inject({ url: '/' })).body, 'lua index')
})

test('two registrations with different prefixes in one app, each with its own engine', async (t) => {
  const app = Fastify({ logger: false })
  t.after(() => app.close())
  const contexts: EvluaContext[] = []
  const onContext = (c: EvluaContext): void => { contexts.push(c) }
  app.get('/js', async () => 'js')
  await app.register(evlua, { dir: fixture('plugin'), prefix: '/a', env: {}, onContext })
  await app.register(evlua, { dir: fixture('plugin'), prefix: '/b', env: {}, onContext })
  await app.register(evlua, { dir: fixture('responses'), prefix: '/c', env: {}, onContext })
  await app.ready()

  assert.deepEqual((await app.inject({ url: '/a/whoami' })).json(), { path: 'a/whoami', count: 1 })
  assert.deepEqual((await app.inject({ url: '/a/whoami' })).json(), { path: 'a/whoami', count: 2 })
  assert.deepEqual((await app.inject({ url: '/b/whoami' })).json(), { path: 'b/whoami', count: 1 })
  assert.equal((await app.inject({ url: '/c/string' })).body, 'plain text')
  assert.equal((await app.inject({ url: '/c/whoami' })).statusCode, 404)
  assert.equal((await app.inject({ url: '/a/string' })).statusCode, 404)
  assert.equal((await app.inject({ url: '/js' })).body, 'js')

  assert.equal(contexts.length, 3)
  assert.notEqual(contexts[0].runtime, contexts[1].runtime)
  await app.close()
  for (const c of contexts) assert.equal(c.runtime.engine.closed, true, 'closing the app closes every engine')
})
