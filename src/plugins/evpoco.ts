import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { luaSource } from '../lua-bridge/modules.ts'

/**
 * evpoco's request and response objects (`platform.get_http_request()`,
 * `platform.get_http_response()`): a Lua layer over the Moonbridge request of the calling coroutine,
 * so both views share one exchange. No JS of its own: it uses request.lua's and forms.lua's halves.
 */
async function evpocoPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.evlua.runtime.define({
    name: 'evlua.evpoco',
    chunkName: '[evlua] evpoco.lua',
    source: luaSource('evpoco.lua')
  })
}

export default fp(evpocoPlugin, { name: 'evlua-evpoco', fastify: '5.x', dependencies: ['evlua-request'] })
