// evpoolrepos: pools of Lua resources over generic-pool.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { test } from 'node:test'
import { dataApp, getJson } from './fixtures/apps/data/app.ts'

test('acquire, release, use (releases even when fn raises), get, stats; a full pool makes acquire wait', async (t) => {
  const app = await dataApp(t, {})
  const r = await getJson(app, '/pool/basic')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.ok, true)
  assert.deepEqual(r.body.counters, { created: 2, destroyed: 0 })
  assert.match(r.body.misuse, /bad argument #2 to 'new' \(create must be a function, got nil\)/)
})

test('acquire returns nil, "timeout" after acquire_timeout', async (t) => {
  const app = await dataApp(t, {})
  const r = await getJson(app, '/pool/timeout')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.err, 'timeout')
  assert.ok(r.body.waited >= 0.09 && r.body.waited < 1, `waited ${r.body.waited}`)
  assert.equal(r.body.same, true)
})

test('a resource held by a handler that raises, or that is stopped, goes back to the pool', async (t) => {
  const app = await dataApp(t, { lua: { request_timeout_ms: 300 } })
  for (const [url, status] of [['/pool/leak', 500], ['/pool/leak?mode=sleep', 504], ['/pool/leak', 500]] as const) {
    const failed = await app.inject({ method: 'GET', url })
    assert.equal(failed.statusCode, status, failed.body)
    const next = await app.inject({ method: 'POST', url: '/pool/leak' })
    assert.equal(next.statusCode, 200, next.body)
    assert.equal(next.json().stats.borrowed, 0)
    assert.equal(next.json().stats.size, 1)
  }
})

test('a create that fails (nil, err or an error) is nil, err for the acquire; the pool recovers', async (t) => {
  const app = await dataApp(t, {})
  const r = await getJson(app, '/pool/failing')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.err, 'cannot create: backend down')
  assert.equal(r.body.err2, 'cannot create: backend down')
  assert.equal(r.body.got, true)
  assert.match(r.body.err3, /create exploded/)
  assert.equal(r.body.stats.borrowed, 0)
})

test('min resources are made at once; close() destroys them', async (t) => {
  const app = await dataApp(t, {})
  const r = await getJson(app, '/pool/min')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.made, 3)
  assert.equal(r.body.stats.size, 3)
  assert.equal(r.body.stats.available, 3)
  assert.equal(r.body.destroyed, 3)
  assert.equal(typeof r.body.after_close, 'string')
  assert.equal(r.body.recreated, true, 'a closed pool is gone from get()')
})

test('closing the server runs destroy for the idle resources', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'evlua-pools-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'closing.sqlite')
  const app = await dataApp(undefined, { sqlite: { path } })
  const r = await getJson(app, '/pool/closing')
  assert.equal(r.body.available, 2, JSON.stringify(r.body))
  await app.close()
  const db = new DatabaseSync(path)
  t.after(() => db.close())
  assert.deepEqual(db.prepare('select serial from destroyed order by serial').all().map((row) => row.serial), [1, 2])
})
