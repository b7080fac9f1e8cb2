// One Lua-level suite, run against every SQL backend: where SQLite and Postgres are meant to agree
// (values, NULL, blobs, transactions, failures as values), they must give the same answers.
// The checks live in test/fixtures/apps/data/lib/shared_checks.lua; each backend runs them through
// GET /shared/<backend> and reports one result per check. The example app's notes routes (the repo
// root's routes/notes, lib/notes_store.lua) run on both backends too.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { EvluaConfigInput } from '../src/index.ts'
import { startPostgres, type PostgresServer } from './helpers/postgres.ts'
import { DATA_APP, dataApp, getJson } from './fixtures/apps/data/app.ts'

const EXAMPLE_APP = fileURLToPath(new URL('..', import.meta.url))

/** The checks' names, in order, read from the Lua file: one test each, for every backend. */
const CHECKS = [...readFileSync(join(DATA_APP, 'lib', 'shared_checks.lua'), 'utf8').matchAll(/^check\('([^']+)'/gm)].map((m) => m[1])

interface CheckResult { name: string, ok: boolean, err?: string }

interface Backend {
  name: string
  /** The config that points the app at this backend (and a fresh, empty database). */
  setup (): Promise<EvluaConfigInput>
  teardown (): Promise<void>
}

function runSuite ({ name, setup, teardown }: Backend): void {
  describe(name, () => {
    let config: EvluaConfigInput = {}
    let results: CheckResult[] = []
    before(async () => {
      config = await setup()
      const app = await dataApp(undefined, config)
      try {
        const r = await getJson(app, `/shared/${name}`)
        assert.equal(r.status, 200, JSON.stringify(r.body))
        results = r.body
      } finally {
        await app.close()
      }
    })
    after(teardown)

    test('ran every check', () => {
      assert.ok(CHECKS.length >= 10)
      assert.deepEqual(results.map((r) => r.name), CHECKS)
    })
    for (const [i, check] of CHECKS.entries()) {
      test(check, () => {
        const r = results[i]
        assert.ok(r, 'the check ran')
        assert.ok(r.ok, r.err)
      })
    }

    test('the example app\'s notes routes: list, create, get, update, delete', async (t) => {
      const app = await dataApp(t, config, EXAMPLE_APP)
      const call = async (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: object | string, headers?: Record<string, string>) => {
        const res = await app.inject({ method, url, payload, headers })
        return { status: res.statusCode, body: res.body ? res.json() : undefined, location: res.headers.location }
      }
      assert.deepEqual(await call('GET', '/notes'), { status: 200, body: [], location: undefined })
      const first = await call('POST', '/notes', { title: 'first', body: 'hello ✓' })
      assert.equal(first.status, 201)
      assert.equal(first.location, `/notes/${first.body.id}`)
      assert.equal(first.body.title, 'first')
      assert.match(first.body.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/)
      const second = await call('POST', '/notes', 'title=second', { 'content-type': 'application/x-www-form-urlencoded' })
      assert.equal(second.status, 201)
      assert.equal(second.body.body, '')
      assert.deepEqual((await call('POST', '/notes', { body: 'no title' })).body, { error: 'title is required' })
      assert.equal((await call('POST', '/notes', { title: 5 })).status, 400)

      const list = await call('GET', '/notes')
      assert.deepEqual(list.body.map((n: { title: string }) => n.title), ['first', 'second'])
      assert.deepEqual((await call('GET', `/notes/${first.body.id}`)).body, first.body)
      const patched = await call('PATCH', `/notes/${first.body.id}`, { body: 'changed' })
      assert.equal(patched.status, 200)
      assert.deepEqual([patched.body.title, patched.body.body], ['first', 'changed'])
      const put = await call('PUT', `/notes/${second.body.id}`, { title: 'second!' })
      assert.equal(put.body.title, 'second!')

      assert.equal((await call('DELETE', `/notes/${first.body.id}`)).status, 204)
      assert.equal((await call('DELETE', `/notes/${first.body.id}`)).status, 404)
      assert.equal((await call('GET', `/notes/${first.body.id}`)).status, 404)
      assert.equal((await call('GET', '/notes/abc')).status, 404)
      assert.equal((await call('PATCH', '/notes/999999', { title: 'x' })).status, 404)
      assert.deepEqual((await call('GET', '/notes')).body.map((n: { id: number }) => n.id), [second.body.id])
    })
  })
}

let sqliteDir = ''
runSuite({
  name: 'sqlite',
  async setup () {
    sqliteDir = await mkdtemp(join(tmpdir(), 'evlua-shared-'))
    return { sqlite: { path: join(sqliteDir, 'shared.sqlite') } }
  },
  async teardown () { await rm(sqliteDir, { recursive: true, force: true }) }
})

let pg: PostgresServer | undefined
runSuite({
  name: 'postgres',
  async setup () {
    pg = await startPostgres()
    return { postgres: { url: pg.url } }
  },
  async teardown () { await pg?.destroy() }
})
