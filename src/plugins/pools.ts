import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import genericPool from 'generic-pool'
import type { Pool } from 'generic-pool'
import { luaSource } from '../lua-bridge/modules.ts'
import { LuaFunctionRef, badArgument, isLuaString, toText, type CallContext, type TaskHandle } from '../lua-bridge/values.ts'
import { taskErrorMessage, taskOf } from './data-values.ts'

/**
 * One pool. generic-pool manages numbered slots; the Lua half keeps the resource of each slot in
 * a Lua table (resources are Lua values and never cross to JS). `make(slot)` and `unmake(slot)`
 * are Lua functions run as tasks: they call the program's `create` and `destroy`.
 */
interface PoolEntry {
  id: number
  name: string
  pool: Pool<number>
  make: LuaFunctionRef
  unmake: LuaFunctionRef
  /** Slots whose create failed: handed out once, then destroyed (see acquire). */
  failed: Map<number, { message: string, seq: number }>
  /** Borrowed slots and the task that holds each, so a task that ends gives its slots back. */
  borrowed: Map<number, TaskHandle | undefined>
  dead: boolean
}

/** Per task and pool: the slots it holds, given back when it ends. */
interface Holder { ended: boolean, slots: Set<number> }

function positive (v: unknown, n: number, field: string, integer: boolean): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !(v >= 0) || (integer && !Number.isInteger(v))) {
    throw badArgument(n, 'new', `${field} = ${integer ? 'a non-negative integer' : 'a non-negative number'}`, v)
  }
  return v
}

function poolSettings (name: unknown, o: Record<string, unknown>): { text: string, max: number, min: number, acquireTimeout?: number, idleTimeout?: number } {
  if (!isLuaString(name)) throw badArgument(1, 'new', 'string', name)
  const max = positive(o.max, 2, 'max', true) ?? 10
  const min = positive(o.min, 2, 'min', true) ?? 0
  if (max < 1) throw badArgument(2, 'new', 'max >= 1', max)
  if (min > max) throw badArgument(2, 'new', 'min <= max', min)
  return {
    text: toText(name),
    max,
    min,
    acquireTimeout: positive(o.acquire_timeout, 2, 'acquire_timeout', false),
    idleTimeout: positive(o.idle_timeout, 2, 'idle_timeout', false)
  }
}

/** `evpoolrepos`: named pools of Lua resources over generic-pool (see docs/modules/evpoolrepos.md). */
async function poolsPlugin (fastify: FastifyInstance): Promise<void> {
  const { runtime } = fastify.evlua
  const log = fastify.log
  const pools = new Map<number, PoolEntry>()
  const names = new Map<string, number>()
  let nextId = 1
  let seq = 0

  function entry (id: unknown): PoolEntry {
    const e = pools.get(id as number)
    if (!e || e.dead) throw new Error('pool is closed')
    return e
  }

  function holder (task: TaskHandle, e: PoolEntry): Holder {
    let h = task.locals.get(e) as Holder | undefined
    if (!h) {
      const held: Holder = { ended: false, slots: new Set() }
      h = held
      task.locals.set(e, held)
      task.onEnd(() => {
        held.ended = true
        for (const slot of held.slots) giveBack(e, slot)
        held.slots.clear()
      })
    }
    return h
  }

  function giveBack (e: PoolEntry, slot: number): void {
    if (!e.borrowed.has(slot)) return
    e.borrowed.delete(slot)
    e.pool.release(slot).catch((err: Error) => { log.warn({ err: err.message, pool: e.name }, 'evpoolrepos: release failed') })
  }

  /** Close a pool: waiting acquires fail, idle resources are destroyed, borrowed ones as they come back. */
  async function shutdown (e: PoolEntry, runDestroy: boolean): Promise<void> {
    if (e.dead) return
    e.dead = !runDestroy
    if (names.get(e.name) === e.id) names.delete(e.name)
    try {
      await e.pool.drain()
      await e.pool.clear()
    } catch (err) {
      log.warn({ err: (err as Error).message, pool: e.name }, 'evpoolrepos: closing the pool failed')
    }
    e.dead = true
    pools.delete(e.id)
    e.make.release()
    e.unmake.release()
  }

  runtime.define({
    name: 'evpoolrepos',
    source: luaSource('evpoolrepos.lua'),
    chunkName: '[evlua] evpoolrepos.lua',
    functions: {
      new: (name: unknown, make: unknown, unmake: unknown, opts: Record<string, unknown> | undefined) => {
        if (!(make instanceof LuaFunctionRef) || !(unmake instanceof LuaFunctionRef)) throw new Error('internal: pool functions missing')
        let settings: { text: string, max: number, min: number, acquireTimeout?: number, idleTimeout?: number }
        try {
          settings = poolSettings(name, opts ?? {})
          if (names.has(settings.text)) throw new Error(`pool '${settings.text}' already exists`)
        } catch (err) {
          make.release()
          unmake.release()
          throw err
        }
        const { text, max, min, acquireTimeout, idleTimeout } = settings
        const id = nextId++
        let nextSlot = 1
        const e: PoolEntry = {
          id, name: text, pool: undefined as unknown as Pool<number>, make, unmake, failed: new Map(), borrowed: new Map(), dead: false
        }
        e.pool = genericPool.createPool<number>({
          create: async () => {
            // generic-pool calls create() from inside acquire(), i.e. while Lua is calling JS:
            // run the Lua function once that call has returned.
            await null
            const slot = nextSlot++
            if (e.dead) {
              e.failed.set(slot, { message: 'pool is closed', seq: ++seq })
              return slot
            }
            try {
              const [ok, err] = await runtime.run(e.make.ref, [slot])
              if (ok !== true) e.failed.set(slot, { message: typeof err === 'string' ? err : 'create failed', seq: ++seq })
            } catch (err) {
              e.failed.set(slot, { message: taskErrorMessage(err), seq: ++seq })
            }
            return slot
          },
          destroy: async (slot: number) => {
            await null
            if (e.failed.delete(slot) || e.dead || runtime.engine.closed) return
            try {
              const [, err] = await runtime.run(e.unmake.ref, [slot])
              if (err) log.warn({ err, pool: e.name }, 'evpoolrepos: destroy failed')
            } catch (err) {
              log.warn({ err: taskErrorMessage(err), pool: e.name }, 'evpoolrepos: destroy failed')
            }
          }
        }, {
          max,
          min,
          ...(acquireTimeout !== undefined ? { acquireTimeoutMillis: Math.max(1, Math.round(acquireTimeout * 1000)) } : {}),
          ...(idleTimeout !== undefined
            ? { idleTimeoutMillis: Math.max(1, Math.round(idleTimeout * 1000)), evictionRunIntervalMillis: Math.max(100, Math.round(idleTimeout * 250)) }
            : {})
        })
        pools.set(id, e)
        names.set(text, id)
        return id
      },
      acquire: async function (this: CallContext | undefined, id: number) {
        const e = entry(id)
        const task = taskOf(this)
        if (!task) throw new Error('acquire must be called from a handler or a task')
        const h = holder(task, e)
        const start = seq
        for (;;) {
          let slot: number
          try {
            slot = await e.pool.acquire()
          } catch (err) {
            if ((err as Error).name === 'TimeoutError') throw new Error('timeout')
            throw new Error(e.dead ? 'pool is closed' : (err as Error).message)
          }
          const failure = e.failed.get(slot)
          if (failure) {
            // A create that failed: drop the slot; report it if it failed while we waited,
            // else (an old failure, e.g. at start-up) try again.
            e.pool.destroy(slot).catch(() => {})
            if (failure.seq > start || h.ended) throw new Error(failure.message)
            continue
          }
          if (h.ended || e.dead) {
            e.pool.release(slot).catch(() => {})
            throw new Error('task ended')
          }
          e.borrowed.set(slot, task)
          h.slots.add(slot)
          return slot
        }
      },
      release: function (this: CallContext | undefined, id: number, slot: number) {
        const e = pools.get(id)
        if (!e || !e.borrowed.has(slot)) throw new Error('resource is not borrowed from this pool')
        const task = e.borrowed.get(slot)
        if (task) (task.locals.get(e) as Holder | undefined)?.slots.delete(slot)
        giveBack(e, slot)
        return true
      },
      destroy: function (this: CallContext | undefined, id: number, slot: number) {
        const e = pools.get(id)
        if (!e || !e.borrowed.has(slot)) throw new Error('resource is not borrowed from this pool')
        const task = e.borrowed.get(slot)
        if (task) (task.locals.get(e) as Holder | undefined)?.slots.delete(slot)
        e.borrowed.delete(slot)
        e.pool.destroy(slot).catch((err: Error) => { log.warn({ err: err.message, pool: e.name }, 'evpoolrepos: destroy failed') })
        return true
      },
      stats: (id: number) => {
        const { pool } = entry(id)
        return { size: pool.size, available: pool.available, borrowed: pool.borrowed, pending: pool.pending, max: pool.max, min: pool.min }
      },
      close: (id: number) => {
        const e = pools.get(id)
        if (e) void shutdown(e, true)
        return true
      }
    }
  })

  // A fresh engine (the old one was corrupted) has none of the Lua resources: forget the old pools.
  let generation = runtime.generation
  runtime.onBoot((rt) => {
    if (rt.generation === generation) return
    generation = rt.generation
    for (const e of [...pools.values()]) void shutdown(e, false)
  })

  fastify.addHook('onClose', async () => {
    await Promise.all([...pools.values()].map((e) => shutdown(e, true)))
  })
}

export default fp(poolsPlugin, { name: 'evlua-pools', fastify: '5.x', dependencies: ['evlua-platform'] })
