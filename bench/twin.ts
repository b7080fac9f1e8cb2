/**
 * The plain-Fastify twin: the same routes as bench/app, written as JS handlers (bench/scenarios.ts).
 * Listens on 127.0.0.1, a free port, and prints its URL as the only stdout line.
 */
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { scenarios } from './scenarios.ts'

const app = Fastify({ logger: false })
for (const s of scenarios) {
  app.route({ method: s.method ?? 'GET', url: s.twin.url, handler: s.twin.handler as never })
}
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as AddressInfo
process.stdout.write(`http://127.0.0.1:${port}\n`)

const stop = (): void => { app.close().then(() => process.exit(0), () => process.exit(1)) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
