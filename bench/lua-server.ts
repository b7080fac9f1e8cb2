/**
 * The Lua side of the benchmark: Fastify (logger off) with the evlua plugin serving bench/app.
 * Listens on 127.0.0.1, a free port, and prints its URL as the only stdout line.
 *
 *   node bench/lua-server.ts [--config '{"lua":{"memory_limit_mb":0}}']
 */
import Fastify from 'fastify'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { AddressInfo } from 'node:net'
import evlua from '../src/index.ts'

const { values } = parseArgs({ options: { config: { type: 'string', default: '{}' } } })
const config = JSON.parse(values.config!)

const app = Fastify({ logger: false })
await app.register(evlua, { dir: fileURLToPath(new URL('./app', import.meta.url)), config })
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as AddressInfo
process.stdout.write(`http://127.0.0.1:${port}\n`)

const stop = (): void => { app.close().then(() => process.exit(0), () => process.exit(1)) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
