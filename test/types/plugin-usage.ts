// Compiled by `npm test` (tsconfig.types.json), never run: the public types as a user sees them.
import Fastify from 'fastify'
import evlua, { type EvluaOptions, type EvluaContext, LUA_NULL, multi, errorCodes } from '../../src/index.ts'

const app = Fastify()
app.get('/js', async () => ({ from: 'js' }))
const options: EvluaOptions = { dir: '/srv/app', config: { lua: { cpu_timeout_ms: 500 }, http: { body_limit: '1mb' } } }
await app.register(evlua, { ...options, prefix: '/lua' })

// @ts-expect-error dir is required
await app.register(evlua, { prefix: '/x' })
// @ts-expect-error unknown config section
await app.register(evlua, { dir: '.', config: { lau: {} } })
// @ts-expect-error wrong type for a config key
await app.register(evlua, { dir: '.', config: { lua: { cpu_timeout_ms: 'fast' } } })

await app.register(evlua, {
  dir: '.',
  onContext: (ctx: EvluaContext) => {
    ctx.runtime.define({ name: 'mine', functions: { twice: (n: number) => n * 2, both: () => multi(1, LUA_NULL) } })
    const ms: number = ctx.config.lua.cpu_timeout_ms
    void ms
  }
})
const code: string = errorCodes.EVLUA_ERR_CONFIG_UNKNOWN_KEY.name
void code
