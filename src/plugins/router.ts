import { readFileSync } from 'node:fs'
import type { FastifyInstance, HTTPMethods, RouteOptions } from 'fastify'
import { EVLUA_ERR_LUA_LOAD } from '../errors.ts'
import { scanRoutes, type RouteFile } from './route-scan.ts'

const ALL_METHODS: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

interface LoadedRoute {
  id: number
  methods: HTTPMethods[]
  hasAny: boolean
  hasWebsocket: boolean
  schema: Record<string, unknown> | undefined
}

/**
 * The file router: scan routes/ into a list (route-scan.ts), load each module in Lua, and register
 * one Fastify route per handled method plus a 405 route that names what is allowed.
 */
export async function routerPlugin (fastify: FastifyInstance): Promise<void> {
  const { runtime, dir, config } = fastify.evlua
  const bridge = fastify.evluaRequests
  const files = scanRoutes(dir)
  const loaded = new Map<string, LoadedRoute>()

  runtime.onBoot((rt) => {
    for (const file of files) loaded.set(file.file, loadRoute(rt, bridge.refs.loadRoute, file))
  })

  for (const file of files) {
    const route = loaded.get(file.file)!
    // A querystring schema makes Fastify coerce request.query: the handler must know (request.ts).
    const handlerFor = (schema: RouteOptions['schema']) =>
      bridge.handler(route.id, file.catchAll, (schema as { querystring?: unknown } | undefined)?.querystring !== undefined)
    const common: Partial<RouteOptions> = { url: file.url, bodyLimit: config.http.body_limit }
    const explicit = route.methods
    for (const method of explicit) {
      const schema = schemaFor(route.schema, method)
      fastify.route({
        ...common,
        method,
        url: file.url,
        handler: handlerFor(schema),
        schema,
        exposeHeadRoute: method === 'GET' && !explicit.includes('HEAD')
      })
    }
    const served = new Set<HTTPMethods>(explicit)
    if (explicit.includes('GET')) served.add('HEAD')
    const rest = ALL_METHODS.filter((m) => !served.has(m))
    if (rest.length === 0) continue
    if (route.hasAny) {
      const schema = schemaFor(route.schema, 'any')
      fastify.route({ ...common, method: rest, url: file.url, handler: handlerFor(schema), schema })
      continue
    }
    const allow = [...served].join(', ')
    fastify.route({
      ...common,
      method: rest,
      url: file.url,
      handler: async (_request, reply) => reply.code(405).header('allow', allow).send({
        statusCode: 405, error: 'Method Not Allowed', message: `allowed: ${allow}`
      })
    })
  }
  fastify.log.debug({ routes: files.map((f) => f.url) }, 'Lua routes registered')
}

function loadRoute (rt: FastifyInstance['evlua']['runtime'], loadRef: number, file: RouteFile): LoadedRoute {
  let source: Buffer
  try {
    source = readFileSync(file.absolute)
  } catch (err) {
    throw new EVLUA_ERR_LUA_LOAD(file.file, (err as Error).message)
  }
  let results: unknown[]
  try {
    results = rt.callMainMulti(loadRef, [source, file.file], 5)
  } catch (err) {
    throw new EVLUA_ERR_LUA_LOAD(file.file, (err as Error).message)
  }
  const [id, methods, hasAny, hasWebsocket, schema] = results
  return {
    id: id as number,
    methods: (Array.isArray(methods) ? methods : []) as HTTPMethods[],
    hasAny: hasAny === true,
    hasWebsocket: hasWebsocket === true,
    schema: schema as Record<string, unknown> | undefined
  }
}

function schemaFor (schema: Record<string, unknown> | undefined, method: string): RouteOptions['schema'] {
  if (!schema) return undefined
  return (schema[method.toLowerCase()] ?? undefined) as RouteOptions['schema']
}
