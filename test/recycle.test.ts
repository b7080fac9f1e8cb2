import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import evlua, { type EvluaContext } from '../src/index.ts'

test('a recycled engine reloads the routes and keeps serving; requests in flight fail cleanly', async (t) => {
  const app = Fastify()
  let ctx: EvluaContext | undefined
  const recycled: unknown[] = []
  await app.register(evlua, {
    dir: 'test/fixtures/apps/basic',
    onContext: (c) => { ctx = c }
  })
  t.after(() => app.close())
  await app.ready()
  const before = ctx!.runtime.generation
  const first = await app.inject('/users/42?q=a')
  assert.equal(first.statusCode, 200)

  const inFlight = app.inject('/sleep?s=1')
  await new Promise((resolve) => setImmediate(resolve))
  await ctx!.runtime.recycle(new Error('simulated corruption'))
  recycled.push(ctx!.runtime.generation)
  assert.equal(ctx!.runtime.generation, before + 1)

  const stopped = await inFlight
  assert.equal(stopped.statusCode, 500)

  const after = await app.inject('/users/43?q=b')
  assert.equal(after.statusCode, 200)
  assert.equal(after.json().id, '43')
  assert.equal(after.json().twice, 4)
  // the fields brought along with requests are made from templates, made again on the new engine
  assert.equal(after.json().q, 'b')
  assert.equal(after.json().agent, 'lightMyRequest')
  const stream = await app.inject('/stream')
  assert.equal(stream.body, 'one two 3')
})
