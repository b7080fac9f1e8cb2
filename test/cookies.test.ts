// Cookies both ways: request.cookies (and evpoco's get_cookies), request:set_cookie with every option
// (serialised by @fastify/cookie), next to raw send_header("Set-Cookie", ...).
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { buildServer } from '../src/cli/server.ts'

const APP = fileURLToPath(new URL('./fixtures/apps/http', import.meta.url))

async function start (t: TestContext): Promise<string> {
  const { app } = await buildServer({ dir: APP, config: { log: { level: 'silent' } } })
  t.after(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

test('request.cookies: the Cookie header parsed (and URL-decoded); evpoco sees the same', async (t) => {
  const base = await start(t)
  const res = await fetch(`${base}/cookies`, { headers: { cookie: 'sid=abc123; theme=dark; msg=a%20b%3Bc' } })
  const got = await res.json()
  const want = { sid: 'abc123', theme: 'dark', msg: 'a b;c' }
  assert.deepEqual(got.cookies, want)
  assert.deepEqual(got.evpoco, want)
  const none = await (await fetch(`${base}/cookies`)).json()
  assert.deepEqual(none, { cookies: {}, evpoco: {} })
})

test('request:set_cookie: path, domain, max_age, expires, http_only, secure, same_site; raw Set-Cookie too', async (t) => {
  const base = await start(t)
  const res = await fetch(`${base}/cookies/set`)
  assert.equal(await res.text(), 'cookies set')
  assert.deepEqual(res.headers.getSetCookie(), [
    'plain=v1',
    'full=a%20b%3Bc; Max-Age=3600; Domain=example.test; Path=/app; HttpOnly; Secure; SameSite=Strict',
    'lax=x; Expires=Thu, 01 Jan 2026 00:00:00 GMT; SameSite=Lax',
    'gone=; Max-Age=0; Path=/',
    'raw=1; Path=/'
  ])
})

test('a cookie set by the server comes back in request.cookies', async (t) => {
  const base = await start(t)
  const set = await fetch(`${base}/cookies/set`)
  const jar = set.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ')
  const got = await (await fetch(`${base}/cookies`, { headers: { cookie: jar } })).json()
  assert.equal(got.cookies.full, 'a b;c')
  assert.equal(got.cookies.plain, 'v1')
  assert.equal(got.cookies.raw, '1')
})

test('set_cookie mistakes raise errors that say what is wrong', async (t) => {
  const base = await start(t)
  const got = await (await fetch(`${base}/cookies/bad`)).json() as string[]
  assert.match(got[0], /^routes\/cookies\/bad\.lua:\d+: set_cookie: cookie sameSite is invalid: sideways$/)
  assert.match(got[1], /set_cookie: unknown cookie option 'colour' \(known: path, domain, max_age/)
  assert.match(got[2], /bad argument #1 to 'set_cookie' \(string expected, got number\)/)
  assert.match(got[3], /set_cookie: cookie name is invalid: bad name/)
  assert.match(got[4], /bad argument #3 to 'set_cookie' \(table expected, got string\)/)
})

test('set_cookie after the headers are sent is an error', async (t) => {
  const base = await start(t)
  const text = await (await fetch(`${base}/cookies/late`)).text()
  assert.match(text, /^body started \/ .*cannot send a header: headers already sent$/)
})

test('no cookie hook runs on the Lua routes\' replies: @fastify/cookie is ours in a context of its own', async (t) => {
  const { app } = await buildServer({ dir: APP, config: { log: { level: 'silent' } } })
  t.after(() => app.close())
  await app.ready()
  const routes = app.printRoutes({ includeHooks: true, commonPrefix: false })
  assert.match(routes, /\/cookies/)
  assert.doesNotMatch(routes, /fastifyCookie/)
  assert.equal(app.hasDecorator('parseCookie'), false)
})
