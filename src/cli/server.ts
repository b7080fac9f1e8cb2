import Fastify, { type FastifyHttpOptions, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { readFile } from 'node:fs/promises'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import evlua from '../index.ts'
import { checkAppDir, loadConfig, type ConfigFlags, type EvluaConfig, type EvluaConfigInput } from '../config/index.ts'
import { EVLUA_ERR_HTTPS_FILE } from '../errors.ts'
import { closeConnectionsAfterResponses } from './drain.ts'

export interface BuildServerOptions {
  /** The application directory. */
  dir: string
  flags?: ConfigFlags
  env?: Record<string, string | undefined>
  /** Merged over the app's config/ files, under environment variables and flags. */
  config?: EvluaConfigInput
}

export interface BuiltServer {
  app: FastifyInstance
  config: EvluaConfig
}

async function readPem (which: 'key' | 'cert', file: string): Promise<Buffer> {
  try {
    return await readFile(file)
  } catch (err) {
    throw new EVLUA_ERR_HTTPS_FILE(which, file, (err as Error).message)
  }
}

/** Fastify's options for a config; `https` is set when both PEM files are configured. */
export async function fastifyOptions (config: EvluaConfig): Promise<FastifyServerOptions & Record<string, unknown>> {
  const { http, https, log } = config
  const options: FastifyServerOptions & Record<string, unknown> = {
    // stdout carries only the URL line, so scripts can read it
    logger: { level: log.level, stream: process.stderr },
    bodyLimit: http.body_limit,
    connectionTimeout: http.connection_timeout_ms,
    keepAliveTimeout: http.keep_alive_timeout_ms,
    requestTimeout: http.request_timeout_ms,
    forceCloseConnections: 'idle'
  }
  if (https.key !== null && https.cert !== null) {
    const [key, cert] = await Promise.all([readPem('key', https.key), readPem('cert', https.cert)])
    options.https = { key, cert, ...nodeServerOptions(http) }
  } else {
    options.http = nodeServerOptions(http)
  }
  return options
}

/**
 * Node checks request and header timeouts every 30 s by default: check often enough that a
 * slow client is cut off close to the configured time.
 */
function nodeServerOptions (http: EvluaConfig['http']): { maxHeaderSize: number, connectionsCheckingInterval: number } {
  const timeout = http.request_timeout_ms
  const interval = timeout > 0 ? Math.min(30000, Math.max(250, Math.floor(timeout / 4))) : 30000
  return { maxHeaderSize: http.header_size_limit, connectionsCheckingInterval: interval }
}

/**
 * Make a Fastify app serving the application in `dir`, configured like evluaserver does:
 * config loaded and validated, logger, HTTP limits and timeouts, HTTPS, and the evlua plugin.
 * The app is not listening yet.
 *
 * @example
 * const { app } = await buildServer({ dir: 'test/fixtures/apps/cli-basic', config: { log: { level: 'silent' } } })
 * const res = await app.inject('/')
 */
export async function buildServer ({ dir, flags, env, config: overrides }: BuildServerOptions): Promise<BuiltServer> {
  const appDir = resolve(dir)
  await checkAppDir(appDir)
  const config = await loadConfig({ dir: appDir, flags, env, overrides })
  // the https and http server types share the request surface Fastify exposes
  const app: FastifyInstance = Fastify(await fastifyOptions(config) as FastifyHttpOptions<Server>)
  closeConnectionsAfterResponses(app)
  app.register(evlua, { dir: appDir, config, env })
  return { app, config }
}

/** Listen as configured and return the URL clients use (with the port actually bound). */
export async function listen (app: FastifyInstance, config: EvluaConfig): Promise<string> {
  await app.listen({ port: config.server.port, host: config.server.host })
  const { port } = app.server.address() as AddressInfo
  const scheme = config.https.key !== null ? 'https' : 'http'
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host
  return `${scheme}://${host}:${port}`
}
