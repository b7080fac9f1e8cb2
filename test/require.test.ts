// require: the app's lib/ (lib/?.lua, lib/?/init.lua), helpers next to the routes, built-in modules,
// and errors that name the file and line.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { luaApp } from './helpers/evlua.ts'

test('lib/x.lua, lib/x/init.lua, lib/x/y.lua, routes/_helpers.lua and built-ins', async (t) => {
  const { app } = await luaApp(t, 'require')
  assert.deepEqual((await app.inject({ url: '/mods' })).json(), {
    greet: 'hello lua',
    pkg: { name: 'pkg', sub: 'pkg.sub' },
    helpers: 'HI!',
    same: true,
    platform: true,
    json: '[1]',
    args: { name: 'args', count: 2 }
  })
})

test('a helper in a route folder: require \'users._shared\' finds routes/users/_shared.lua', async (t) => {
  const { app } = await luaApp(t, 'require')
  assert.equal((await app.inject({ url: '/users' })).body, 'shared by users')
  assert.equal((await app.inject({ url: '/users/_shared' })).statusCode, 404, 'a helper is not a route')
  assert.equal((await app.inject({ url: '/_helpers' })).statusCode, 404)
})

test('a module is loaded once: every route shares its table', async (t) => {
  const { app } = await luaApp(t, 'require')
  assert.deepEqual((await app.inject({ url: '/count' })).json(), { n: 1 })
  assert.deepEqual((await app.inject({ url: '/count2' })).json(), { n: 2 })
  assert.deepEqual((await app.inject({ url: '/count' })).json(), { n: 3 })
})

test('a syntax error in a lib module names its file:line (required at start-up: registering rejects)', async (t) => {
  await assert.rejects(luaApp(t, 'require-broken'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'EVLUA_ERR_LUA_LOAD')
    assert.equal(err.message, "cannot load routes/x.lua: lib/broken.lua:2: unexpected symbol near '*'")
    return true
  })
})

test('errors in a module required at request time name its file:line; the module is not cached', async (t) => {
  const { app } = await luaApp(t, 'require')
  const tryRequire = async (name: string): Promise<{ ok: boolean, err?: string }> =>
    (await app.inject({ url: `/try?name=${encodeURIComponent(name)}` })).json()
  assert.deepEqual(await tryRequire('broken'), { ok: false, err: "lib/broken.lua:2: unexpected symbol near '*'" })
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(await tryRequire('crashes'), { ok: false, err: 'lib/crashes.lua:2: attempt to perform arithmetic on a nil value' })
  }
  const missing = await tryRequire('pkg.nope')
  assert.equal(missing.ok, false)
  assert.match(missing.err!, /^module 'pkg\.nope' not found:/)
  assert.match(missing.err!, /no file 'lib\/pkg\/nope\.lua'\n\tno file 'lib\/pkg\/nope\/init\.lua'/)
  assert.deepEqual(await tryRequire('greet'), { ok: true })
})

test('module names cannot leave the app directory', async (t) => {
  const { app } = await luaApp(t, 'require')
  for (const name of ['../x', '/etc/passwd', '..']) {
    const r = (await app.inject({ url: `/try?name=${encodeURIComponent(name)}` })).json()
    assert.equal(r.ok, false)
    assert.match(r.err, /invalid name/, name)
  }
})

test('a module may set globals while it loads (in its own environment), not later', async (t) => {
  const { app } = await luaApp(t, 'require')
  assert.deepEqual((await app.inject({ url: '/globals' })).json(), {
    value: 'from the chunk',
    in_G: 'nil',
    late_ok: false,
    late_err: "lib/chunk_globals.lua:5: assignment to undeclared global 'helper_late': declare it local (globals are shared by every request)"
  })
})
