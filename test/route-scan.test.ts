// scanRoutes: routes/ → a list of { file, url, catchAll }, without registering anything.
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { scanRoutes } from '../src/plugins/route-scan.ts'

/** An app dir whose routes/ holds the given files (path relative to routes/). */
async function appWith (t: TestContext, files: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'evlua-scan-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'routes'))
  for (const f of files) {
    const path = join(dir, 'routes', f)
    await mkdir(dirname(path), { recursive: true })
    if (!f.endsWith('/')) await writeFile(path, 'return {}')
  }
  return dir
}

const urls = (dir: string): Record<string, string> =>
  Object.fromEntries(scanRoutes(dir).map((r) => [r.file, r.url]))

test('the table of API.md section 2', async (t) => {
  const dir = await appWith(t, [
    'index.lua', 'about.lua', 'users/index.lua', 'users/[id].lua', 'users/[id]/posts.lua', 'files/[...path].lua'
  ])
  assert.deepEqual(urls(dir), {
    'routes/index.lua': '/',
    'routes/about.lua': '/about',
    'routes/users/index.lua': '/users',
    'routes/users/[id].lua': '/users/:id',
    'routes/users/[id]/posts.lua': '/users/:id/posts',
    'routes/files/[...path].lua': '/files/*'
  })
  const catchAll = scanRoutes(dir).find((r) => r.url === '/files/*')!
  assert.equal(catchAll.catchAll, 'path')
  assert.equal(catchAll.absolute, join(dir, 'routes', 'files', '[...path].lua'))
  assert.equal(scanRoutes(dir).find((r) => r.url === '/users/:id')!.catchAll, undefined)
})

test('_ and . names are skipped, files and folders alike; only .lua files are routes', async (t) => {
  const dir = await appWith(t, [
    'a.lua', '_helpers.lua', '_lib/x.lua', '.hidden.lua', '.git/x.lua', 'notes.txt', 'b/_c.lua', 'b/d.lua', 'empty/'
  ])
  assert.deepEqual(urls(dir), { 'routes/a.lua': '/a', 'routes/b/d.lua': '/b/d' })
})

test('index inside a parameter folder; a catch-all at the root', async (t) => {
  const dir = await appWith(t, ['[org]/index.lua', '[org]/[repo]/settings.lua', '[...rest].lua'])
  assert.deepEqual(urls(dir), {
    'routes/[org]/index.lua': '/:org',
    'routes/[org]/[repo]/settings.lua': '/:org/:repo/settings',
    'routes/[...rest].lua': '/*'
  })
})

test('names are kept as they are (Fastify matches them against the decoded URL)', async (t) => {
  const dir = await appWith(t, ['café.lua', 'about us.lua', 'v1.2/x.lua'])
  assert.deepEqual(urls(dir), {
    'routes/café.lua': '/café', 'routes/about us.lua': '/about us', 'routes/v1.2/x.lua': '/v1.2/x'
  })
})

test('no routes/ directory: no routes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'evlua-scan-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  assert.deepEqual(scanRoutes(dir), [])
})

test('two files for one route are a conflict naming both', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['users.lua', 'users/index.lua'], /route \/users is defined twice: by routes\/users\/index\.lua and by routes\/users\.lua/],
    [['x/[id].lua', 'x/[name].lua'], /route \/x\/:\w+ is defined twice/],
    [['[id].lua', '[id]/index.lua'], /route \/:id is defined twice/],
    [['f/[...a].lua', 'f/[...b].lua'], /route \/f\/\* is defined twice/]
  ]
  for (const [files, message] of cases) {
    const dir = await appWith(t, files)
    assert.throws(() => scanRoutes(dir), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'EVLUA_ERR_ROUTE_CONFLICT')
      assert.match(err.message, message)
      return true
    }, files.join(' + '))
  }
})

test('different parameter names under different static tails are not a conflict', async (t) => {
  const dir = await appWith(t, ['a/[x]/b.lua', 'a/[y]/c.lua'])
  assert.deepEqual(urls(dir), { 'routes/a/[x]/b.lua': '/a/:x/b', 'routes/a/[y]/c.lua': '/a/:y/c' })
})

test('bad names say how to fix them', async (t) => {
  for (const files of [['[...rest]/x.lua'], ['a:b.lua'], ['[a-b].lua'], ['x*.lua']]) {
    const dir = await appWith(t, files)
    assert.throws(() => scanRoutes(dir), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'EVLUA_ERR_ROUTE_NAME')
      assert.ok(err.message.startsWith(`bad route file name routes/${files[0].replace(/\/x\.lua$/, '')}: `), err.message)
      assert.match(err.message, /rename|\[name\]/)
      return true
    }, files[0])
  }
})
