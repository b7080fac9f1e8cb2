import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { luaSource } from '../lua-bridge/modules.ts'
import { LUA_NULL, LuaFunctionRef, badArgument, type CallContext, type TaskHandle } from '../lua-bridge/values.ts'
import { TaskAbortedError } from '../lua-bridge/scheduler.ts'

/** The `platform` module (also a global) and `json`: the flowing-code core every app has. */
async function platformPlugin (fastify: FastifyInstance): Promise<void> {
  const { runtime } = fastify.evlua
  const log = fastify.log
  const tasks = new Map<number, Promise<unknown>>()

  runtime.define({
    name: 'platform',
    chunkName: '[evlua] platform.lua',
    source: luaSource('platform.lua'),
    functions: {
      null: () => LUA_NULL,
      now: () => Date.now() / 1000,
      sleep (this: CallContext | undefined, seconds: number) {
        if (!(seconds > 0)) return new Promise<void>((resolve) => setImmediate(resolve))
        return sleep(this?.task, seconds * 1000)
      },
      spawn: (fn: unknown) => {
        if (!(fn instanceof LuaFunctionRef)) throw badArgument(1, 'spawn', 'function', fn)
        const ref = fn as LuaFunctionRef
        const { id, done } = runtime.start(ref.ref, [], { wallTimeoutMs: 0 })
        const ended = done.then(() => undefined, (err: Error) => {
          if (err instanceof TaskAbortedError) log.warn({ err: err.message }, 'spawned Lua task stopped')
          return err.message
        })
        tasks.set(id, ended)
        ended.finally(() => { tasks.delete(id); ref.release() })
        return id
      },
      wait: (id: number) => tasks.get(id) ?? undefined,
      report: (traceback: string) => { log.error({ lua: traceback }, 'spawned Lua task failed') }
    }
  })

  runtime.define({ name: 'evlua.data', chunkName: '[evlua] data.lua', source: luaSource('data.lua') })

  runtime.define({
    name: 'json',
    chunkName: '[evlua] json.lua',
    source: luaSource('json.lua'),
    functions: {
      null: () => LUA_NULL,
      decode: (s: string | Buffer) => {
        const text = typeof s === 'string' ? s : s.toString('utf8')
        return JSON.parse(text, (_k, v) => v === null ? LUA_NULL : v)
      }
    }
  })

  runtime.onBoot((rt) => { rt.setGlobal('platform', 'platform') })
}

/** Where a task keeps the timer of the sleep it is in (a task sleeps at most once at a time). */
const SLEEP_TIMER = Symbol('evlua.sleep')
/** setTimeout's longest delay; longer sleeps are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * A sleep whose timer is cleared when the task ends (stopped by a timeout, or the app closing), so a
 * stopped request leaves no timer behind to hold the process open.
 */
function sleep (task: TaskHandle | undefined, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const arm = (left: number): void => {
      const step = Math.min(left, MAX_TIMER_MS)
      const timer = setTimeout(() => {
        if (left > step) { arm(left - step); return }
        // (A sleep that could not wait, e.g. inside table.sort, leaves an orphan timer: not ours to clear.)
        if (task?.locals.get(SLEEP_TIMER) === timer) task.locals.set(SLEEP_TIMER, undefined)
        resolve()
      }, step)
      if (!task) return
      if (!task.locals.has(SLEEP_TIMER)) {
        task.onEnd(() => { clearTimeout(task.locals.get(SLEEP_TIMER) as NodeJS.Timeout | undefined) })
      }
      task.locals.set(SLEEP_TIMER, timer)
    }
    arm(ms)
  })
}

export default fp(platformPlugin, { name: 'evlua-platform', fastify: '5.x' })
