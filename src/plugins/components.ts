import type { FastifyInstance } from 'fastify'

/**
 * The optional components, each a Fastify plugin that injects one Lua module. Registered after
 * the core (platform, request) and before the router loads the route modules.
 */
export async function registerComponents (fastify: FastifyInstance): Promise<void> {
  void fastify
}
