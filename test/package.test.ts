// The package as published: the compiled dist/ (what `npm run build` makes) serves an app, with
// the Lua sources and the Lua wasm build found beside the compiled code.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

test('the built package (tsc + scripts/copy-assets.ts) serves a Lua app from dist', (t) => {
  // inside node_modules/, so that the compiled code finds the dependencies as an installed package would
  const out = mkdtempSync(join(root, 'node_modules', '.evlua-dist-test-'))
  t.after(() => rmSync(out, { recursive: true, force: true }))
  const tsc = spawnSync(join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json', '--outDir', out], { cwd: root, encoding: 'utf8' })
  assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr)
  const copy = spawnSync(process.execPath, ['scripts/copy-assets.ts', out], { cwd: root, encoding: 'utf8' })
  assert.equal(copy.status, 0, copy.stderr)
  const script = `
    import Fastify from 'fastify'
    const { default: evlua } = await import(${JSON.stringify(join(out, 'index.js'))})
    const app = Fastify()
    await app.register(evlua, { dir: ${JSON.stringify(join(root, 'test/fixtures/apps/basic'))} })
    const r = await app.inject('/')
    console.log(JSON.stringify({ status: r.statusCode, body: r.body }))
    await app.close()`
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 })
  assert.equal(run.status, 0, run.stderr)
  const answer = JSON.parse(run.stdout.trim().split('\n').pop()!)
  assert.equal(answer.status, 200)
  assert.equal(answer.body, "hello from lua")
})
