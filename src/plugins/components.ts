import type { FastifyInstance } from 'fastify'
import cookiesPlugin from './cookies.ts'
import evpocoPlugin from './evpoco.ts'
import staticPlugin from './static.ts'
import sqlitePlugin from './sqlite.ts'
import poolsPlugin from './pools.ts'
import postgresPlugin from './postgres.ts'
import redisPlugin from './redis.ts'

/**
 * The optional components, each a Fastify plugin that injects one Lua module. Registered after
 * the core (platform, request) and before the router loads the route modules.
 */
export async function registerComponents (fastify: FastifyInstance): Promise<void> {
  await fastify.register(cookiesPlugin)
  await fastify.register(evpocoPlugin)
  await fastify.register(staticPlugin)
  const { config, runtime } = fastify.evlua
  await fastify.register(sqlitePlugin)
  await fastify.register(poolsPlugin)
  if (config.postgres.url) await fastify.register(postgresPlugin)
  else runtime.modules.disable('evpostgres', 'set DATABASE_URL or config postgres.url')
  if (config.redis.url) await fastify.register(redisPlugin)
  else runtime.modules.disable('evredis', 'set REDIS_URL or config redis.url')
  void fastify
}
