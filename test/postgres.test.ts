// evpostgres against a real PostgreSQL server (what Postgres and SQLite share is in data-shared.test.ts).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startPostgres, type PostgresServer } from './helpers/postgres.ts'
import { dataApp, getJson, NO_DB_APP } from './fixtures/apps/data/app.ts'

let db: PostgresServer
before(async () => { db = await startPostgres() })
after(() => db?.destroy())

test('types: integers, numerics, booleans, text, json/jsonb, timestamps, arrays, bytea, NULL; parameters', async (t) => {
  const app = await dataApp(t, { postgres: { url: db.url } })
  const r = await getJson(app, '/pg/types')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.deepEqual(r.body, { ok: true })
})

test('bytea is byte-exact: all 256 byte values, from Lua and through HTTP', async (t) => {
  const app = await dataApp(t, { postgres: { url: db.url } })
  const r = await getJson(app, '/pg/bytes')
  assert.deepEqual(r.body, { same: true, n: 256, md5: 'e2c865db4162bed963bfaa9ef6ac18f0' })
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  for (const payload of [bytes, Buffer.from('a\\b\\x00 \0 text with a NUL'), Buffer.concat([bytes, Buffer.from(bytes).reverse()])]) {
    const res = await app.inject({ method: 'POST', url: '/pg/bytes', payload, headers: { 'content-type': 'application/octet-stream' } })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(Number(res.headers['x-length']), payload.length)
    assert.ok(res.rawPayload.equals(payload), 'same bytes back')
  }
})

test('open_connection, prepare/execute, begin/commit/rollback, transaction and savepoints', async (t) => {
  const app = await dataApp(t, { postgres: { url: db.url } })
  const r = await getJson(app, '/pg/conn')
  assert.equal(r.status, 200, JSON.stringify(r.body))
})

test('server errors are nil, "SQLSTATE: message"; misuse raises', async (t) => {
  const app = await dataApp(t, { postgres: { url: db.url } })
  const r = await getJson(app, '/pg/errors')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.deepEqual(r.body.unique, [true, '23505: duplicate key value violates unique constraint "uniq_pkey"'])
  assert.deepEqual(r.body.syntax, [true, '42601: syntax error at or near "selec"'])
  assert.deepEqual(r.body.division, [true, '22012: division by zero'])
  assert.deepEqual(r.body.cast, [true, '22P02: invalid input syntax for type integer: "not a number"'])
  assert.equal(r.body.after, 1)
  assert.equal(r.body.misuse[0], false)
  assert.match(r.body.misuse[1], /bad argument #1 to 'query' \(string expected, got number\)/)
})

test('a connection left open by a handler that raises goes back to the pool (pool size 1), rolled back', async (t) => {
  const app = await dataApp(t, { postgres: { url: db.url, pool_max: 1 } })
  for (let i = 0; i < 3; i++) {
    const failed = await app.inject({ method: 'GET', url: '/pg/leak' })
    assert.equal(failed.statusCode, 500)
    assert.match(failed.body, /handler failed with a connection open/)
    const next = await app.inject({ method: 'POST', url: '/pg/leak' })
    assert.equal(next.statusCode, 200, next.body)
    assert.deepEqual(next.json(), { leaked_rows: 0, plain: 1 })
  }
})

test('a connection held by a handler stopped by the request timeout goes back to the pool', async (t) => {
  const app = await dataApp(t, { postgres: { url: db.url, pool_max: 1 }, lua: { request_timeout_ms: 300 } })
  for (const mode of ['sleep', 'busy']) {
    const stopped = await app.inject({ method: 'GET', url: `/pg/leak?mode=${mode}` })
    assert.equal(stopped.statusCode, 504, `${mode}: ${stopped.body}`)
    const next = await app.inject({ method: 'POST', url: '/pg/leak' })
    assert.equal(next.statusCode, 200, `${mode}: ${next.body}`)
    assert.deepEqual(next.json(), { leaked_rows: 0, plain: 1 })
  }
})

test('a slow query suspends only its own request', async (t) => {
  const app = await dataApp(t, { postgres: { url: db.url, pool_max: 4 } })
  const t0 = performance.now()
  const results = await Promise.all([1, 2, 3, 4].map(() => getJson(app, '/pg/sleep?s=0.3')))
  const elapsed = performance.now() - t0
  for (const r of results) assert.deepEqual(r.body, { s: '', done: 1 })
  assert.ok(elapsed < 1000, `4 queries of 0.3 s ran side by side (${Math.round(elapsed)} ms)`)
})

test('Postgres down: queries return nil, err and the server keeps serving; back up: queries work', async (t) => {
  const app = await dataApp(t, { postgres: { url: db.url, pool_max: 2 } })
  assert.deepEqual((await getJson(app, '/pg/ping')).body, { answer: 42 })
  await db.stop()
  for (let i = 0; i < 3; i++) {
    const down = await getJson(app, '/pg/ping')
    assert.equal(down.status, 503)
    assert.equal(typeof down.body.err, 'string')
    assert.ok(down.body.err.length > 0)
  }
  assert.match((await getJson(app, '/pg/ping')).body.err, /ECONNREFUSED|terminat|connect/i)
  const alive = await app.inject({ method: 'GET', url: '/sqlite/gc' })
  assert.equal(alive.statusCode, 200, 'other routes still work')
  await db.start()
  assert.deepEqual((await getJson(app, '/pg/ping')).body, { answer: 42 })
})

test('Postgres stopped while a query runs: nil, err, then the next query works', async (t) => {
  const app = await dataApp(t, { postgres: { url: db.url } })
  const slow = getJson(app, '/pg/ping?x=1').then(() => getJson(app, '/pg/sleep?s=5'))
  await new Promise((resolve) => setTimeout(resolve, 300))
  await db.stop()
  const r = await slow
  assert.equal(r.status, 500)
  assert.match(JSON.stringify(r.body), /terminat|connection|shutdown/i)
  await db.start()
  assert.deepEqual((await getJson(app, '/pg/ping')).body, { answer: 42 })
})

test('without DATABASE_URL, require "evpostgres" says how to enable it', async (t) => {
  const app = await dataApp(t, {}, NO_DB_APP)
  const r = await getJson(app, '/disabled?module=evpostgres')
  assert.equal(r.body.ok, false)
  assert.match(r.body.err, /module 'evpostgres' is not enabled: set DATABASE_URL or config postgres.url/)
})
