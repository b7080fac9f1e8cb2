import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import fastifyRedis from '@fastify/redis'
import { Redis } from 'ioredis'
import { luaSource } from '../lua-bridge/modules.ts'
import { LUA_NULL, LuaFunctionRef, badArgument, isLuaString, toBytes, type CallContext, type TaskHandle } from '../lua-bridge/values.ts'
import { LuaRuntimeError } from '../lua-bridge/scheduler.ts'
import { taskErrorMessage, taskOf } from './data-values.ts'

/** How long connecting may take, at start-up and on each reconnect. */
const CONNECT_TIMEOUT_MS = 5000
/** Connections kept for blocking commands once they are done. */
const MAX_IDLE_BLOCKING = 4
/** Commands that block the connection they run on until data comes (or their timeout). */
const BLOCKING_COMMANDS = new Set(['BLPOP', 'BRPOP', 'BRPOPLPUSH', 'BLMOVE', 'BLMPOP', 'BZPOPMIN', 'BZPOPMAX', 'BZMPOP', 'WAIT', 'WAITAOF'])
/** Commands that block when given the BLOCK option. */
const BLOCKING_OPTION_COMMANDS = new Set(['XREAD', 'XREADGROUP'])
/** Commands that turn a connection into a subscriber (evredis.subscribe has its own connection). */
const SUBSCRIBER_COMMANDS = new Set(['SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'MONITOR'])

type Arg = string | Buffer | number

/** Lua arguments → command arguments: strings stay bytes, numbers stay numbers. */
function args (values: unknown[], first: number, fn: string): Arg[] {
  const out = new Array<Arg>(values.length)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (typeof v === 'string' || typeof v === 'number' || Buffer.isBuffer(v)) out[i] = v
    else if (typeof v === 'bigint') out[i] = v.toString()
    else {
      if (v instanceof LuaFunctionRef) v.release()
      throw badArgument(first + i, fn, 'string or number', v)
    }
  }
  return out
}

/** A reply → Lua: bulk strings as bytes, a nil reply as nil (platform.null inside a list). */
function reply (v: unknown): unknown {
  if (v === null) return undefined
  if (Array.isArray(v)) return list(v)
  return v
}

function list (a: unknown[]): unknown[] {
  for (let i = 0; i < a.length; i++) {
    const v = a[i]
    if (v === null) a[i] = LUA_NULL
    else if (Array.isArray(v)) list(v)
    else if (v instanceof Error) a[i] = [false, v.message] // an error inside EXEC's replies
  }
  return a
}

interface Subscription { id: number, key: string, fn: LuaFunctionRef }

/** `evredis`: Redis through @fastify/redis (ioredis); see docs/modules/evredis.md. */
async function redisPlugin (fastify: FastifyInstance): Promise<void> {
  const { runtime, config } = fastify.evlua
  const log = fastify.log
  const url = config.redis.url!

  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // While the server is away a command waits for one reconnect attempt, then fails with nil, err.
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 100, 2000)
  })
  let down = false
  let lastError = 'connection lost'
  client.on('error', (err: Error) => {
    lastError = err.message
    if (!down) log.warn({ err: err.message }, 'evredis: connection lost; reconnecting')
    down = true
  })
  client.on('ready', () => {
    if (down) log.info('evredis: connected again')
    down = false
  })
  try {
    await client.connect()
  } catch (err) {
    client.disconnect()
    throw new Error(`evredis: cannot connect to Redis at ${redactUrl(url)} (config redis.url / REDIS_URL): ${(err as Error).message}`)
  }
  // @fastify/redis holds the client from here (fastify.redis.evlua); we close it (see onClose).
  await fastify.register(fastifyRedis, { client, namespace: 'evlua', closeClient: false })

  /** A command's failure as Lua sees it: Redis' error reply, or why the server cannot be reached. */
  function failure (err: unknown): Error {
    if ((err as Error)?.name === 'MaxRetriesPerRequestError') return new Error(`redis unavailable: ${lastError}`)
    return new Error((err as Error)?.message || String(err))
  }

  // --- publish / subscribe: one subscriber connection, opened on the first subscribe ---------------
  let subscriber: Redis | undefined
  const channels = new Map<string, Map<number, Subscription>>()
  let nextSub = 1

  function onMessage (channel: Buffer, message: Buffer): void {
    const subs = channels.get(channel.toString('latin1'))
    if (!subs) return
    for (const sub of subs.values()) {
      runtime.run(sub.fn.ref, [message, channel]).catch((err: unknown) => {
        const lua = err instanceof LuaRuntimeError ? `${err.message}\n${err.traceback}` : taskErrorMessage(err)
        log.error({ lua, channel: channel.toString() }, 'evredis: subscriber function failed')
      })
    }
  }

  function getSubscriber (): Redis {
    if (!subscriber) {
      subscriber = client.duplicate({ lazyConnect: false })
      subscriber.on('error', (err: Error) => { log.debug({ err: err.message }, 'evredis: subscriber connection error') })
      subscriber.on('messageBuffer', onMessage)
    }
    return subscriber
  }

  async function unsubscribe (id: number): Promise<boolean> {
    for (const [key, subs] of channels) {
      const sub = subs.get(id)
      if (!sub) continue
      subs.delete(id)
      sub.fn.release()
      if (subs.size === 0) {
        channels.delete(key)
        if (subscriber) await subscriber.unsubscribe(Buffer.from(key, 'latin1') as unknown as string).catch(() => {})
      }
      return true
    }
    return false
  }

  // --- blocking commands: on a connection of their own, so they never hold up the shared one ------
  const idleBlocking: Redis[] = []

  async function callBlocking (task: TaskHandle | undefined, cmd: string, a: Arg[]): Promise<unknown> {
    const conn = idleBlocking.pop() ?? client.duplicate()
    conn.on('error', () => {})
    let settled = false
    // A request stopped while it waits (BLPOP k 0 waits for ever): drop its connection.
    task?.onEnd(() => { if (!settled) conn.disconnect() })
    try {
      const r = await conn.callBuffer(cmd, ...a)
      settled = true
      if (idleBlocking.length < MAX_IDLE_BLOCKING && !closing) idleBlocking.push(conn)
      else conn.disconnect()
      return reply(r)
    } catch (err) {
      settled = true
      conn.disconnect()
      throw failure(err)
    }
  }

  const call = (cmd: string, a: Arg[]): Promise<unknown> =>
    client.callBuffer(cmd, ...a).then(reply, (err: unknown) => { throw failure(err) })

  runtime.define({
    name: 'evredis',
    source: luaSource('evredis.lua'),
    chunkName: '[evlua] evredis.lua',
    functions: {
      call: function (this: CallContext | undefined, cmd: unknown, ...rest: unknown[]) {
        if (!isLuaString(cmd)) throw badArgument(1, 'call', 'string', cmd)
        const name = toBytes(cmd).toString('latin1')
        const a = args(rest, 2, 'call')
        const upper = name.toUpperCase()
        if (SUBSCRIBER_COMMANDS.has(upper)) throw new Error(`${name} cannot run on the shared connection: use evredis.subscribe`)
        if (BLOCKING_COMMANDS.has(upper) || (BLOCKING_OPTION_COMMANDS.has(upper) && a.some((x) => typeof x === 'string' && x.toUpperCase() === 'BLOCK'))) {
          return callBlocking(taskOf(this), name, a)
        }
        return call(name, a)
      },
      get: (key: unknown) => {
        if (!isLuaString(key) && typeof key !== 'number') throw badArgument(1, 'get', 'string', key)
        return client.getBuffer(key as string).then(reply, (err: unknown) => { throw failure(err) })
      },
      publish: (channel: unknown, message: unknown) => {
        const [c, m] = args([channel, message], 1, 'publish')
        return client.publish(c as string, m as string).catch((err: unknown) => { throw failure(err) })
      },
      subscribe: function (this: CallContext | undefined, channel: unknown, fn: unknown): number | Promise<number> {
        if (!isLuaString(channel)) throw badArgument(1, 'subscribe', 'string', channel)
        if (!(fn instanceof LuaFunctionRef)) throw badArgument(2, 'subscribe', 'function', fn)
        const bytes = toBytes(channel)
        const key = bytes.toString('latin1')
        const id = nextSub++
        let subs = channels.get(key)
        const first = !subs
        if (!subs) {
          subs = new Map()
          channels.set(key, subs)
        }
        subs.set(id, { id, key, fn })
        if (!first) return id
        const confirmed = getSubscriber().subscribe(bytes as unknown as string).then(() => id, async (err: unknown) => {
          await unsubscribe(id)
          throw failure(err)
        })
        // Outside a task (a module loading) there is no waiting: subscribe in the background.
        if (!taskOf(this)) {
          confirmed.catch((err: Error) => { log.error({ err: err.message, channel: bytes.toString() }, 'evredis: subscribe failed') })
          return id
        }
        return confirmed
      },
      unsubscribe: (id: number) => unsubscribe(id)
    }
  })

  // Subscriber functions belong to the engine that made them: a fresh engine starts with none.
  let generation = runtime.generation
  runtime.onBoot((rt) => {
    if (rt.generation === generation) return
    generation = rt.generation
    for (const id of [...channels.values()].flatMap((subs) => [...subs.keys()])) void unsubscribe(id)
  })

  let closing = false
  fastify.addHook('onClose', async () => {
    closing = true
    for (const conn of idleBlocking.splice(0)) conn.disconnect()
    channels.clear()
    if (subscriber) {
      const s = subscriber
      subscriber = undefined
      await s.quit().catch(() => { s.disconnect() })
    }
    // QUIT fails with "Connection is closed" when the server closes the socket before its reply
    // is read (or is down): closing the app must not fail for that.
    await client.quit().catch(() => { client.disconnect() })
  })
}

function redactUrl (url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return 'the configured URL'
  }
}

export default fp(redisPlugin, { name: 'evlua-redis', fastify: '5.x', dependencies: ['evlua-platform'] })
