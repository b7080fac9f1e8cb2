import { setTimeout as delay } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { luaSource } from '../lua-bridge/modules.ts'
import { LUA_NULL, LuaFunctionRef, badArgument } from '../lua-bridge/values.ts'
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
      sleep: (seconds: number) => {
        if (!(seconds > 0)) return new Promise<void>((resolve) => setImmediate(resolve))
        return delay(seconds * 1000)
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

export default fp(platformPlugin, { name: 'evlua-platform', fastify: '5.x' })
