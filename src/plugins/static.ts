import { existsSync, statSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import fastifyStatic from '@fastify/static'
import { scanRoutes } from './route-scan.ts'

/**
 * The app's `public/` (config `static.dir`) through @fastify/static: content types, ETag and
 * Last-Modified (304s), Range requests, no path traversal, no dotfiles. The files are served by
 * one wildcard route, which find-my-way tries after every static and parametric route, so a Lua
 * route always wins over a file of the same path. A root catch-all route (`routes/[...x].lua`)
 * would shadow every file anyway, so then nothing is registered.
 */
async function staticPlugin (fastify: FastifyInstance): Promise<void> {
  const { config, dir } = fastify.evlua
  const root = config.static.dir
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    fastify.log.debug({ root }, 'no static directory: static files are not served')
    return
  }
  if (scanRoutes(dir).some((r) => r.url === '/*')) {
    fastify.log.debug({ root }, 'a root catch-all route serves every path: static files are not served')
    return
  }
  await fastify.register(fastifyStatic, {
    root,
    wildcard: true,
    decorateReply: false,
    index: ['index.html'],
    redirect: false,
    dotfiles: 'ignore',
    serveDotFiles: false
  })
}

export default fp(staticPlugin, { name: 'evlua-static', fastify: '5.x' })
