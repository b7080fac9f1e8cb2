// evsqlite on Node 22's node:sqlite (no authorizer, no array rows): the SQLite and shared data
// suites again, in a child process whose node:sqlite lacks what Node 24 added. (Only the repeated
// column name case is left out: object rows keep one value per name, a documented limit there.)
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

test('the SQLite suites pass on node:sqlite without setAuthorizer and setReturnArrays', () => {
  const run = spawnSync(process.execPath, [
    '--import', './test/helpers/sqlite-without-node24.ts',
    '--test', '--test-reporter=spec', '--test-skip-pattern', 'cached statements',
    'test/sqlite.test.ts', 'test/data-shared.test.ts'
  ], { cwd: root, encoding: 'utf8', timeout: 240_000, env: { ...process.env, NODE_TEST_CONTEXT: undefined } })
  const summary = run.stdout.split('\n').filter((l) => /^ℹ (pass|fail)/.test(l)).join(', ')
  assert.equal(run.status, 0, `${summary}\n${run.stdout.slice(-3000)}${run.stderr.slice(-2000)}`)
  assert.match(summary, /pass [1-9]\d*/)
  assert.match(summary, /fail 0/)
})
