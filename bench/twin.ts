/**
 * The plain-Fastify twin: the same routes as bench/app, written as JS handlers (bench/scenarios.ts).
 * Listens on 127.0.0.1, a free port, and prints its URL as the only stdout line.
 *
 *   node bench/twin.ts [--burn-us N]
 *
 * --burn-us: each handler first spins N µs of CPU: a plain handler made slower by a known amount,
 * to see what a given extra cost per request does to the ratio on this machine (run.ts --calibrate).
 */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import type { AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import { scenarios } from './scenarios.ts'

const { values } = parseArgs({ options: { 'burn-us': { type: 'string', default: '0' } } })
const burnMs = Number(values['burn-us']) / 1000

function spin (): void {
  const until = performance.now() + burnMs
  while (performance.now() < until);
}

const app = Fastify({ logger: false })
for (const s of scenarios) {
  const handler = burnMs > 0
    ? (request: FastifyRequest, reply: FastifyReply) => { spin(); return s.twin.handler(request, reply) }
    : s.twin.handler
  app.route({ method: s.method ?? 'GET', url: s.twin.url, handler: handler as never })
}
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as AddressInfo
process.stdout.write(`http://127.0.0.1:${port}\n`)

const stop = (): void => { app.close().then(() => process.exit(0), () => process.exit(1)) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
