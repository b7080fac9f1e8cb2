/**
 * The work one request of a scenario costs the bridge, for counting instructions under valgrind
 * (bench/instructions/count.sh): the Lua route's Fastify handler (request.ts) called directly, with a
 * minimal request and reply in place of Fastify's, W warm-up requests, then N counted ones. The
 * count starts at process.cpuUsage() and ends at os.loadavg(): count.sh tells callgrind so.
 *
 *   S=hello|json|wait W=20000 N=20000 node bench/instructions/harness.ts
 */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import evlua from '../../src/index.ts'
import type { LuaRouteHandler } from '../../src/plugins/request.ts'

const app = Fastify({ logger: false })
await app.register(fp(evlua), { dir: fileURLToPath(new URL('../app', import.meta.url)) })
await app.ready()

/** Route ids are given in the order route-scan.ts lists bench/app/routes (hello, hold, users/[id], wait). */
const scenarios: Record<string, { route: number, url: string, params: Record<string, string>, query: Record<string, string> }> = {
  hello: { route: 1, url: '/hello', params: {}, query: {} },
  json: { route: 3, url: '/users/42?q=search', params: { id: '42' }, query: { q: 'search' } },
  wait: { route: 4, url: '/wait', params: {}, query: {} }
}
const scenario = scenarios[process.env.S ?? 'hello']
if (!scenario) throw new Error(`S must be one of ${Object.keys(scenarios).join(', ')}`)
const handler: LuaRouteHandler = app.evluaRequests.handler(scenario.route)
const rawHeaders = ['Host', '127.0.0.1:3000', 'User-Agent', 'autocannon', 'Accept', '*/*', 'X-Bench', 'evlua-bench', 'Connection', 'keep-alive']

let body: unknown

function request (): FastifyRequest {
  const { url, params, query } = scenario
  return { url, method: 'GET', params, query, headers: { host: '127.0.0.1:3000', 'x-bench': 'evlua-bench' }, raw: { rawHeaders }, routeOptions: { schema: undefined }, ip: '127.0.0.1', log: app.log } as unknown as FastifyRequest
}

interface FakeReply { sent: boolean, done: (() => void) | undefined }

function reply (): FastifyReply & FakeReply {
  const headers: Record<string, unknown> = {}
  const r = {
    sent: false,
    done: undefined as (() => void) | undefined,
    statusCode: 200,
    code (c: number) { r.statusCode = c; return r },
    header (k: string, v: unknown) { headers[k.toLowerCase()] = v; return r },
    getHeader (k: string) { return headers[k.toLowerCase()] },
    hasHeader (k: string) { return k.toLowerCase() in headers },
    type (t: string) { headers['content-type'] = t; return r },
    send (b: unknown) { body = b; r.sent = true; r.done?.(); return r }
  }
  return r as unknown as FastifyReply & FakeReply
}

const W = Number(process.env.W ?? 0)
const N = Number(process.env.N ?? 1000)
let waiting: Array<Promise<void>> = []
for (let i = 0; i < W + N; i++) {
  if (i === W) {
    await Promise.all(waiting)
    waiting = []
    process.cpuUsage()
  }
  const r = reply()
  handler(request(), r)
  // a request that waits answers later: up to 50 in flight, as under load
  if (!r.sent) {
    waiting.push(new Promise<void>((resolve) => { r.done = resolve }))
    if (waiting.length === 50) { await Promise.all(waiting); waiting = [] }
  }
}
await Promise.all(waiting)
loadavg()
if (process.env.SHOW) console.log(body)
await app.close()
