// The file router (API.md section 2): routes/ mapped to Fastify routes, through real requests.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import evlua from '../src/index.ts'
import { fixture, luaApp } from './helpers/evlua.ts'

test('files map to URLs: index files, static names, [id], nested [id]/ folders', async (t) => {
  const { app } = await luaApp(t, 'router')
  const text = async (url: string): Promise<[number, string]> => {
    const r = await app.inject({ url })
    return [r.statusCode, r.body]
  }
  assert.deepEqual(await text('/'), [200, 'index'])
  assert.deepEqual(await text('/about'), [200, 'about'])
  assert.deepEqual(await text('/users'), [200, 'users'])
  assert.deepEqual(await text('/notes'), [200, 'notes'])

  assert.deepEqual((await app.inject({ url: '/users/42' })).json(), { route: 'user', params: { id: '42' } })
  assert.deepEqual((await app.inject({ url: '/users/a%20b' })).json(), { route: 'user', params: { id: 'a b' } })
  assert.deepEqual((await app.inject({ url: '/users/7/posts' })).json(), { route: 'posts', params: { id: '7' } })
  assert.deepEqual((await app.inject({ url: '/users/7/posts/9?x=1' })).json(),
    { route: 'post', params: { id: '7', post: '9' } })
})

test('[...path] catch-all gets the rest of the path in request.params.path', async (t) => {
  const { app } = await luaApp(t, 'router')
  const r = await app.inject({ url: '/files/a/b/c.txt?download=1' })
  assert.equal(r.statusCode, 200)
  assert.deepEqual(r.json(), { route: 'catch-all', params: { path: 'a/b/c.txt' } })
  assert.deepEqual((await app.inject({ url: '/files/deep/er' })).json().params, { path: 'deep/er' })
})

test('static beats dynamic beats catch-all', async (t) => {
  const { app } = await luaApp(t, 'router')
  assert.equal((await app.inject({ url: '/users/me' })).json().route, 'me')
  assert.equal((await app.inject({ url: '/users/mee' })).json().route, 'user')
  assert.equal((await app.inject({ url: '/files/readme' })).json().route, 'readme')
  assert.deepEqual((await app.inject({ url: '/files/other' })).json(), { route: 'one file', params: { name: 'other' } })
  assert.equal((await app.inject({ url: '/files/readme/more' })).json().route, 'catch-all')
})

test('files and folders whose name begins with _ are not routes; nor are files other than .lua', async (t) => {
  const { app } = await luaApp(t, 'router')
  for (const url of ['/_private', '/_private/secret', '/notes/_draft', '/notes/readme.txt', '/notes/readme', '/index']) {
    assert.equal((await app.inject({ url })).statusCode, 404, url)
  }
})

test('per-method handlers; a method without one is a 405 with Allow', async (t) => {
  const { app } = await luaApp(t, 'router')
  for (const method of ['GET', 'POST', 'PUT', 'DELETE'] as const) {
    const r = await app.inject({ method, url: '/methods' })
    assert.equal(r.statusCode, 200)
    assert.equal(r.body, `${method} handled`)
  }
  for (const method of ['PATCH', 'OPTIONS'] as const) {
    const r = await app.inject({ method, url: '/methods' })
    assert.equal(r.statusCode, 405, method)
    assert.deepEqual(new Set(String(r.headers.allow).split(/,\s*/)), new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE']))
  }
  const post = await app.inject({ method: 'GET', url: '/postonly' })
  assert.equal(post.statusCode, 405)
  assert.equal(post.headers.allow, 'POST')
  assert.equal(post.json().error, 'Method Not Allowed')
  assert.equal((await app.inject({ method: 'HEAD', url: '/postonly' })).statusCode, 405)
  assert.equal((await app.inject({ method: 'POST', url: '/postonly' })).body, 'posted')
})

test('`any` serves every method without a handler of its own', async (t) => {
  const { app } = await luaApp(t, 'router')
  assert.equal((await app.inject({ url: '/any' })).body, 'get handler')
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const) {
    const r = await app.inject({ method, url: '/any' })
    assert.equal(r.statusCode, 200)
    assert.equal(r.body, `any handler for ${method}`)
  }
})

test('a module returning one function serves every method', async (t) => {
  const { app } = await luaApp(t, 'router')
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const) {
    assert.equal((await app.inject({ method, url: '/single' })).body, `single handler for ${method}`)
  }
  const head = await app.inject({ method: 'HEAD', url: '/single' })
  assert.equal(head.statusCode, 200)
  assert.equal(head.body, '')
})

test('HEAD is served by get with the body dropped', async (t) => {
  const { app } = await luaApp(t, 'router')
  const get = await app.inject({ url: '/gethead' })
  assert.equal(get.body, 'seen as GET')
  const head = await app.inject({ method: 'HEAD', url: '/gethead' })
  assert.equal(head.statusCode, 200)
  assert.equal(head.body, '')
  assert.equal(head.headers['x-method'], 'HEAD')
  assert.equal(head.headers['content-type'], 'text/plain; charset=utf-8')

  const streamed = await app.inject({ method: 'HEAD', url: '/streamhead' })
  assert.equal(streamed.statusCode, 200)
  assert.equal(streamed.headers['x-streamed'], 'yes')
  assert.equal(streamed.body, '')
  assert.equal((await app.inject({ url: '/streamhead' })).body, 'streamed body')
})

test('an explicit head handler wins over get', async (t) => {
  const { app } = await luaApp(t, 'router')
  const head = await app.inject({ method: 'HEAD', url: '/head' })
  assert.equal(head.statusCode, 200)
  assert.equal(head.headers['x-head'], 'explicit')
  assert.equal(head.body, '')
  const get = await app.inject({ url: '/head' })
  assert.equal(get.body, 'the body of get')
  assert.equal(get.headers['x-head'], undefined)
})

test('a Lua `schema` table is validated by Fastify before the handler runs', async (t) => {
  const { app } = await luaApp(t, 'router')
  const runs = async (): Promise<number> => (await app.inject({ url: '/counter' })).json().n

  const missing = await app.inject({ url: '/schema' })
  assert.equal(missing.statusCode, 400)
  assert.deepEqual(missing.json(), {
    statusCode: 400, code: 'FST_ERR_VALIDATION', error: 'Bad Request', message: "querystring must have required property 'n'"
  })
  const wrongType = await app.inject({ url: '/schema?n=x' })
  assert.equal(wrongType.statusCode, 400)
  assert.equal(wrongType.json().message, 'querystring/n must be integer')
  const badBody = await app.inject({ method: 'POST', url: '/schema', payload: { name: 'A', age: 3 } })
  assert.equal(badBody.statusCode, 400)
  assert.equal(badBody.json().code, 'FST_ERR_VALIDATION')
  assert.match(badBody.json().message, /^body\/name must NOT have fewer than 2 characters/)
  assert.equal(await runs(), 0, 'the handler never ran')

  const ok = await app.inject({ url: '/schema?n=3' })
  assert.equal(ok.statusCode, 200)
  assert.deepEqual(ok.json(), { n: '3' })
  // Later requests bring get_params along (prefetch.ts): still the string sent, not Fastify's coerced 3.
  assert.deepEqual((await app.inject({ url: '/schema?n=4' })).json(), { n: '4' })
  const posted = await app.inject({ method: 'POST', url: '/schema', payload: { name: 'Al' } })
  assert.equal(posted.statusCode, 200)
  assert.deepEqual(posted.json(), { name: 'Al' })
  assert.equal(await runs(), 3)
})

test('route files whose names need URL encoding are reachable', async (t) => {
  const { app } = await luaApp(t, 'router-names')
  assert.equal((await app.inject({ url: '/caf%C3%A9' })).body, 'café')
  assert.equal((await app.inject({ url: '/about%20us' })).body, 'about us')
})

test('conflicting files (users.lua and users/index.lua) are rejected with a clear error', async (t) => {
  const app = Fastify({ logger: false })
  t.after(() => app.close())
  await assert.rejects(async () => {
    await app.register(evlua, { dir: fixture('router-conflict'), env: {} })
    await app.ready()
  }, (err: Error & { code?: string }) => {
    assert.equal(err.code, 'EVLUA_ERR_ROUTE_CONFLICT')
    assert.match(err.message, /route \/users is defined twice/)
    assert.match(err.message, /routes\/users\.lua/)
    assert.match(err.message, /routes\/users\/index\.lua/)
    return true
  })
})
