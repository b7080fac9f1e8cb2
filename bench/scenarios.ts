/**
 * The benchmark scenarios: one Lua route (a file under bench/app/routes/) and its plain-Fastify twin.
 *
 * To add a scenario: write the Lua route file, then add an entry here with the URL both servers are
 * loaded with and the twin handler that does the same work in JS. bench/run.ts checks, before loading,
 * that both servers answer the URL with the same status, content type and body (`compare`).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'

export interface Scenario {
  /** Name used by `--only` and in the results table. */
  name: string
  /** What it measures (printed in bench/README.md). */
  description: string
  /** The Lua route file, relative to bench/app (documentation and sanity). */
  luaRoute: string
  /** The URL requested on both servers (path and query). */
  path: string
  method?: 'GET' | 'POST'
  /** Request headers sent with every request. */
  headers?: Record<string, string>
  body?: string
  /** How the two answers are compared before loading: byte-equal text, or equal after JSON.parse. */
  compare: 'text' | 'json'
  /** The twin route: a Fastify URL pattern and a handler doing the same work as the Lua route. */
  twin: {
    url: string
    handler: (request: FastifyRequest, reply: FastifyReply) => unknown
  }
}

const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

export const scenarios: Scenario[] = [
  {
    name: 'hello',
    description: 'A handler returning the text "hello world": the fixed cost of a Lua request ' +
      '(exchange, task, coroutine resume, request table, response values back to JS).',
    luaRoute: 'routes/hello.lua',
    path: '/hello',
    compare: 'text',
    twin: {
      url: '/hello',
      handler: async () => 'hello world'
    }
  },
  {
    name: 'json',
    description: 'Route /users/:id reading a path parameter, a query parameter (get_params) and a ' +
      'request header (headers_value), answering a small table encoded as JSON.',
    luaRoute: 'routes/users/[id].lua',
    path: '/users/42?q=search',
    headers: { 'x-bench': 'evlua-bench' },
    compare: 'json',
    twin: {
      url: '/users/:id',
      handler: async (request) => ({
        id: (request.params as { id: string }).id,
        q: (request.query as { q?: string }).q,
        agent: request.headers['x-bench'],
        ok: true
      })
    }
  },
  {
    name: 'wait',
    description: 'One waiting call, platform.sleep(0) (the coroutine yields to JS, a setImmediate, ' +
      'and is resumed), then text. The twin awaits a setImmediate.',
    luaRoute: 'routes/wait.lua',
    path: '/wait',
    compare: 'text',
    twin: {
      url: '/wait',
      handler: async () => {
        await immediate()
        return 'waited'
      }
    }
  }
]

export function findScenario (name: string): Scenario | undefined {
  return scenarios.find((s) => s.name === name)
}
