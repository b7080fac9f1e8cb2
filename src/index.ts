import { resolve } from 'node:path'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { cookieCodec, type CookieCodec } from './plugins/cookies.ts'
import { loadConfig, checkAppDir, type EvluaConfig, type EvluaConfigInput } from './config/index.ts'
import { LuaRuntime } from './lua-bridge/runtime.ts'
import platformPlugin from './plugins/platform.ts'
import requestPlugin, { type RequestBridge } from './plugins/request.ts'
import { routerPlugin } from './plugins/router.ts'
import { bodyParsers } from './plugins/body.ts'
import { registerComponents } from './plugins/components.ts'

export interface EvluaOptions {
  /** The application directory (holds routes/, lib/, config/, public/). */
  dir: string
  /** Merged over the app's config/ files (nested objects, as in config/default.json). */
  config?: EvluaConfigInput | EvluaConfig
  /** Environment to read PORT, DATABASE_URL... from (default process.env). */
  env?: NodeJS.ProcessEnv
  /** Serve routes/ (default true); the `evlua` script runner sets false. */
  routes?: boolean
  /** Called with evlua's context once its plugins are registered (the context is encapsulated). */
  onContext?: (context: EvluaContext) => void
}

/** What evlua adds to the Fastify instance it is registered in. */
export interface EvluaContext {
  readonly dir: string
  readonly config: EvluaConfig
  readonly runtime: LuaRuntime
}

declare module 'fastify' {
  interface FastifyInstance {
    evlua: EvluaContext
    evluaRequests: RequestBridge
    evluaCookies: CookieCodec
  }
}

/**
 * Serve an evlua application's Lua routes from a Fastify app.
 *
 * @example
 * import Fastify from 'fastify'
 * import evlua from 'evlua'
 * const app = Fastify()
 * app.get('/js', async () => ({ from: 'js' }))
 * await app.register(evlua, { dir: '/path/to/myapp', prefix: '/lua' })
 */
const evlua: FastifyPluginAsync<EvluaOptions> = async function evlua (fastify: FastifyInstance, options: EvluaOptions) {
  if (!options || typeof options.dir !== 'string') {
    throw new TypeError('evlua: the "dir" option (the application directory) is required')
  }
  const dir = resolve(options.dir)
  const serveRoutes = options.routes !== false
  if (serveRoutes) await checkAppDir(dir)
  const config = await loadConfig({ dir, env: options.env, overrides: options.config as EvluaConfigInput | undefined })
  const runtime = await LuaRuntime.create({
    appDir: dir,
    memoryLimit: config.lua.memory_limit_mb * 1024 * 1024,
    hookInterval: config.lua.hook_interval,
    cpuTimeoutMs: config.lua.cpu_timeout_ms,
    wallTimeoutMs: config.lua.request_timeout_ms,
    onRecycle: (err) => { fastify.log.error({ err }, 'Lua engine corrupted: replaced by a fresh one') }
  })
  fastify.decorate('evlua', { dir, config, runtime })
  fastify.addHook('onClose', async () => { await runtime.close() })

  // Cookies are parsed on first read of request.cookies, not by a hook on every request (5 µs each).
  fastify.decorate('evluaCookies', await cookieCodec(fastify))
  bodyParsers(fastify)
  await fastify.register(platformPlugin)
  await fastify.register(requestPlugin)
  await registerComponents(fastify)
  if (serveRoutes) await fastify.register(routerPlugin)
  runtime.onBoot((rt) => { rt.lockGlobals() })
  options.onContext?.(fastify.evlua)
}

export default evlua
export { evlua }
export type { EvluaConfig, EvluaConfigInput } from './config/index.ts'
export { errorCodes } from './errors.ts'
export { LuaRuntime } from './lua-bridge/runtime.ts'
export { LUA_NULL, multi, LuaArgumentError, type JsFunction } from './lua-bridge/values.ts'
