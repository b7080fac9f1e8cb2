// evsqlite: the SQLite-specific behaviour (what SQLite and Postgres share is in data-shared.test.ts).
import assert from 'node:assert/strict'
import { cp, mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { test, type TestContext } from 'node:test'
import { DATA_APP, dataApp, getJson } from './fixtures/apps/data/app.ts'

async function tempDir (t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'evlua-sqlite-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function sqliteApp (t: TestContext, lua: Record<string, number> = {}) {
  const dir = await tempDir(t)
  const app = await dataApp(t, { sqlite: { path: join(dir, 'db', 'test.sqlite') }, lua })
  return { app, dir }
}

test('open, exec, query, last_id, changes, prepare, execute, rows, close', async (t) => {
  const { app } = await sqliteApp(t)
  const r = await getJson(app, '/sqlite/basic')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.ok, true)
  assert.match(r.body.closed_err, /closed database/)
})

test('values: booleans, Lua integers (up to 64 bits), misuse raises', async (t) => {
  const { app } = await sqliteApp(t)
  const r = await getJson(app, '/sqlite/types')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.match(r.body.misuse, /bad argument #1 to 'query' \(string expected, got number\)/)
  assert.match(r.body.arg_err, /bad argument #3 to 'query'/)
})

test('blobs are byte-exact: all 256 byte values through HTTP, Lua and SQLite', async (t) => {
  const { app } = await sqliteApp(t)
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  for (const payload of [bytes, Buffer.concat([bytes, bytes.reverse(), Buffer.alloc(1000, 0)])]) {
    const res = await app.inject({ method: 'POST', url: '/sqlite/blob', payload, headers: { 'content-type': 'application/octet-stream' } })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.headers['x-type'], 'blob')
    assert.equal(Number(res.headers['x-length']), payload.length)
    assert.ok(res.rawPayload.equals(payload))
  }
})

test('failures are nil, err with SQLite\'s message; the database keeps working', async (t) => {
  const { app } = await sqliteApp(t)
  const r = await getJson(app, '/sqlite/errors')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.deepEqual(r.body.constraint, [true, 'UNIQUE constraint failed: uniq.k'])
  assert.deepEqual(r.body.syntax, [true, 'near "selec": syntax error'])
  assert.deepEqual(r.body.exec, [true, 'table uniq already exists'])
  assert.deepEqual(r.body.prepare, [true, 'no such table: nowhere'])
  assert.equal(r.body.after, 1)
})

test('cached statements: column names follow schema changes; the cache outgrows its size; handles share it', async (t) => {
  const { app } = await sqliteApp(t)
  const r = await getJson(app, '/sqlite/cache')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.ok, true)
})

test('a cached statement sees a table rebuilt by another connection: the same number of columns, others', async (t) => {
  const { app, dir } = await sqliteApp(t)
  assert.equal((await app.inject({ method: 'POST', url: '/sqlite/external' })).statusCode, 204)
  assert.deepEqual((await getJson(app, '/sqlite/external')).body, { a: 1, b: 2 })
  const other = new DatabaseSync(join(dir, 'db', 'test.sqlite'))
  other.exec('drop table ext; create table ext (b, a); insert into ext values (20, 10)')
  other.close()
  assert.deepEqual((await getJson(app, '/sqlite/external')).body, { b: 20, a: 10 })
})

test('nested transactions are savepoints', async (t) => {
  const { app } = await sqliteApp(t)
  const r = await getJson(app, '/sqlite/tx')
  assert.equal(r.status, 200, JSON.stringify(r.body))
})

test('a transaction that waits stays isolated: other tasks wait for its commit', async (t) => {
  const { app } = await sqliteApp(t)
  const r = await getJson(app, '/sqlite/isolation')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.writer, 'committed')
  assert.equal(r.body.seen, 2, 'the reader saw the committed transaction, never half of it')
  assert.ok(r.body.waited >= 0.02, `the reader waited (${r.body.waited}s)`)
})

test('a handler stopped inside a transaction rolls it back and frees the database', async (t) => {
  const { app } = await sqliteApp(t, { request_timeout_ms: 200 })
  const stuck = await app.inject({ method: 'GET', url: '/sqlite/stuck' })
  assert.equal(stuck.statusCode, 504)
  const next = await app.inject({ method: 'POST', url: '/sqlite/stuck' })
  assert.equal(next.statusCode, 200, next.body)
  assert.deepEqual(next.json(), [{ v: 'written' }])
})

test('handles and statements dropped without close() are collected', async (t) => {
  const { app } = await sqliteApp(t)
  const r = await getJson(app, '/sqlite/gc')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.deepEqual(r.body, { n: 1 })
})

test('open() with no path uses config sqlite.path under the app directory, creating its folder', async (t) => {
  const dir = await tempDir(t)
  const appDir = join(dir, 'app')
  await cp(DATA_APP, appDir, { recursive: true })
  const app = await dataApp(t, {}, appDir)
  const r = await getJson(app, '/sqlite/basic')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.ok((await stat(join(appDir, 'data', 'app.sqlite'))).isFile())
})

test('open(path): relative paths are under the app directory; absolute paths and :memory: work', async (t) => {
  const dir = await tempDir(t)
  const appDir = join(dir, 'app')
  await cp(DATA_APP, appDir, { recursive: true })
  const app = await dataApp(t, { sqlite: { path: join(dir, 'default.sqlite') } }, appDir)
  assert.deepEqual((await getJson(app, '/sqlite/files?path=' + encodeURIComponent('other/dir/x.sqlite'))).body, { n: 1 })
  assert.ok((await stat(join(appDir, 'other', 'dir', 'x.sqlite'))).isFile())
  assert.deepEqual((await getJson(app, '/sqlite/files?path=' + encodeURIComponent('other/dir/x.sqlite'))).body, { n: 2 })
  const abs = join(dir, 'abs', 'y.sqlite')
  assert.deepEqual((await getJson(app, '/sqlite/files?path=' + encodeURIComponent(abs))).body, { n: 1 })
  assert.ok((await stat(abs)).isFile())
  assert.deepEqual((await getJson(app, '/sqlite/files?path=:memory:')).body, { n: 1 })
  assert.deepEqual((await getJson(app, '/sqlite/files?path=:memory:')).body, { n: 1 }, 'each :memory: open is a new database')
})

test('a slow query holds the thread while it runs (node:sqlite is synchronous)', async (t) => {
  const { app } = await sqliteApp(t)
  const r = await getJson(app, '/sqlite/long?n=300000')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.n, 300000)
})
