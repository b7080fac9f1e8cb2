// evredis against a real redis-server.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { findRedisServer, startRedis, type RedisServer } from './helpers/redis.ts'
import { NO_DB_APP, dataApp, getJson } from './fixtures/apps/data/app.ts'

let server: RedisServer
let client: Redis
before(async () => {
  server = await startRedis()
  client = new Redis(server.url, { maxRetriesPerRequest: 1 })
})
after(async () => {
  client?.disconnect()
  await server?.stop()
})

test('call and the named helpers; a nil reply is nil; errors are nil, err; misuse raises', async (t) => {
  const app = await dataApp(t, { redis: { url: server.url } })
  const r = await getJson(app, '/redis/commands')
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.ok, true)
  assert.match(r.body.misuse, /bad argument #3 to 'call' \(string or number expected, got table\)/)
})

test('values and keys are binary-safe: all 256 byte values', async (t) => {
  const app = await dataApp(t, { redis: { url: server.url } })
  assert.deepEqual((await getJson(app, '/redis/bytes')).body, { same: true, hsame: true, n: 256 })
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  const res = await app.inject({ method: 'POST', url: '/redis/bytes', payload: bytes, headers: { 'content-type': 'application/octet-stream' } })
  assert.equal(res.statusCode, 200, res.body)
  assert.ok(res.rawPayload.equals(bytes))
  assert.ok((await client.getBuffer('blob'))!.equals(bytes), 'stored as the same bytes')
})

test('blocking commands (BLPOP) get a connection of their own: the shared one never waits behind them', async (t) => {
  const app = await dataApp(t, { redis: { url: server.url }, lua: { request_timeout_ms: 500 } })
  const blocked = getJson(app, '/redis/blocking?key=queue&timeout=3')
  const quick = await app.inject({ method: 'POST', url: '/redis/blocking' })
  assert.equal(quick.statusCode, 200, quick.body)
  assert.equal(quick.json().v, 'yes')
  assert.ok(quick.json().took < 0.2, `plain commands answered at once (${quick.json().took} s)`)
  assert.match(quick.json().sub_err, /use evredis.subscribe/)
  await client.rpush('queue', 'job 1')
  const r = await blocked
  assert.deepEqual(r.body.reply, ['queue', 'job 1'])

  // a request stopped by its time limit while it blocks: its connection is dropped, not left blocked
  const blockedClients = async (): Promise<number> => Number((await client.info('clients')).match(/blocked_clients:(\d+)/)![1])
  const stopped = await app.inject({ method: 'GET', url: '/redis/blocking?key=never&timeout=0' })
  assert.equal(stopped.statusCode, 504)
  const deadline = Date.now() + 5000
  while (await blockedClients() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(await blockedClients(), 0, 'the stopped request\'s BLPOP is gone from the server')
  await client.rpush('never', 'for nobody')
  assert.equal(await client.llen('never'), 1, 'no blocked connection took it')
})

test('subscribe: each message runs the Lua function as its own task; publish; unsubscribe', async (t) => {
  const app = await dataApp(t, { redis: { url: server.url } })
  const sub = await app.inject({ method: 'POST', url: '/redis/pubsub?channel=news' })
  assert.deepEqual(sub.json(), { subscribed: 'news' })

  assert.equal(await client.publish('news', 'from js'), 1)
  assert.deepEqual(await client.blpop('got:news', 5), ['got:news', 'from js'])

  // from Lua, binary-safe
  const published = await getJson(app, '/redis/pubsub?channel=news&message=' + encodeURIComponent('from lua ✓'))
  assert.deepEqual(published.body, { receivers: 1 })
  assert.deepEqual(await client.blpop('got:news', 5), ['got:news', 'from lua ✓'])
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  await client.publish('news', bytes)
  const got = await client.blpopBuffer('got:news', 5)
  assert.ok(got![1].equals(bytes))

  // a subscriber function that raises is logged; the next message still runs
  await client.publish('news', 'raise')
  assert.deepEqual(await client.blpop('got:news', 5), ['got:news', 'raise'])
  await client.publish('news', 'after')
  assert.deepEqual(await client.blpop('got:news', 5), ['got:news', 'after'])

  // two subscribers on one channel; unsubscribing one keeps the other
  await app.inject({ method: 'POST', url: '/redis/pubsub?channel=other' })
  assert.equal(await client.publish('other', 'x'), 1, 'one subscriber connection per server')
  assert.deepEqual(await client.blpop('got:other', 5), ['got:other', 'x'])
  const unsub = await app.inject({ method: 'DELETE', url: '/redis/pubsub?channel=other' })
  assert.deepEqual(unsub.json(), { ok: true })
  assert.equal(await client.publish('other', 'y'), 0, 'no one listens any more')
})

/** A redis-server on a given port (the helper picks its own): for "it comes back on the same address". */
async function redisOnPort (port: number): Promise<() => Promise<void>> {
  const child = spawn(findRedisServer(), ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      log += chunk.toString()
      if (/ready to accept connections/i.test(log)) resolve()
    })
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${log}`)))
  })
  return async () => {
    if (child.exitCode !== null) return
    child.kill('SIGTERM')
    await once(child, 'exit')
  }
}

test('subscribe while a module loads: the subscription is made in the background', async (t) => {
  const app = await dataApp(t, { redis: { url: server.url } })
  assert.deepEqual((await getJson(app, '/redis/boot')).body, { subscribed: true })
  // the subscription is confirmed asynchronously: publish until a subscriber is there
  const deadline = Date.now() + 5000
  while (await client.publish('boot', 'hello') === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.deepEqual(await client.blpop('got:boot', 5), ['got:boot', 'hello'])
})

test('Redis down: commands return nil, err and the server keeps serving; back up: commands work', async (t) => {
  const own = await startRedis()
  t.after(() => own.stop())
  const app = await dataApp(t, { redis: { url: own.url } })
  assert.deepEqual((await getJson(app, '/redis/ping')).body, { pong: 'PONG' })
  await own.stop()
  const t0 = performance.now()
  const down = await getJson(app, '/redis/ping')
  assert.equal(down.status, 503)
  assert.match(down.body.err, /^redis unavailable: .*ECONNREFUSED/)
  assert.ok(performance.now() - t0 < 5000, 'fails within seconds')
  assert.equal((await app.inject({ method: 'GET', url: '/sqlite/gc' })).statusCode, 200, 'other routes still work')

  const stop = await redisOnPort(own.port)
  t.after(stop)
  // ioredis reconnects on its own (backoff up to 2 s): the first command after that works.
  const deadline = Date.now() + 10_000
  let r = await getJson(app, '/redis/ping')
  while (r.status !== 200 && Date.now() < deadline) r = await getJson(app, '/redis/ping')
  assert.deepEqual(r.body, { pong: 'PONG' })
})

test('closing the app succeeds while Redis is down, or goes away as it closes', async () => {
  for (const when of ['before', 'during']) {
    const own = await startRedis()
    const app = await dataApp(undefined, { redis: { url: own.url } })
    assert.deepEqual((await getJson(app, '/redis/ping')).body, { pong: 'PONG' })
    if (when === 'before') {
      await own.stop()
      await app.close()
    } else {
      await Promise.all([app.close(), own.stop()])
    }
  }
})

test('an unreachable Redis at start-up fails the start with a message that names the setting', async () => {
  const own = await startRedis()
  const url = own.url
  await own.stop()
  await assert.rejects(dataApp(undefined, { redis: { url } }), /evredis: cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+.*REDIS_URL/)
})

test('without REDIS_URL, require "evredis" says how to enable it', async (t) => {
  const app = await dataApp(t, {}, NO_DB_APP)
  const r = await getJson(app, '/disabled?module=evredis')
  assert.equal(r.body.ok, false)
  assert.match(r.body.err, /module 'evredis' is not enabled: set REDIS_URL or config redis.url/)
})
