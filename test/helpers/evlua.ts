// Build a Fastify app serving one of the fixture apps (test/fixtures/apps/<name>), closed after the test.
import { Writable } from 'node:stream'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import evlua, { type EvluaContext, type EvluaConfigInput } from '../../src/index.ts'

/** Absolute path of test/fixtures/apps/<name>. */
export function fixture (name: string): string {
  return fileURLToPath(new URL(`../fixtures/apps/${name}`, import.meta.url))
}

/** Collects a Fastify logger's JSON lines. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, any>> = []
  _write (chunk: Buffer, _enc: string, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() !== '') this.lines.push(JSON.parse(line))
    }
    done()
  }

  /** The lines at error level (50) or above. */
  errors (): Array<Record<string, any>> {
    return this.lines.filter((l) => l.level >= 50)
  }
}

export interface LuaAppOptions {
  config?: EvluaConfigInput
  prefix?: string
  /** Set process.env.NODE_ENV to this while the plugin registers (request.ts reads it then). */
  nodeEnv?: string
  /** Log lines go here (level info); without it the app logs nothing. */
  log?: LogCapture
  /** Runs on the host app before evlua is registered (JS routes, hooks, error handlers). */
  before?: (app: FastifyInstance) => void | Promise<void>
}

export interface LuaApp {
  app: FastifyInstance
  /** fastify.evlua of the plugin's own (encapsulated) context: runtime, config, dir. */
  evlua: EvluaContext
}

/** Fastify + evlua over a fixture app, ready, closed in t.after. */
export async function luaApp (t: TestContext, name: string, options: LuaAppOptions = {}): Promise<LuaApp> {
  const app = Fastify(options.log ? { logger: { level: 'info', stream: options.log } } : { logger: false })
  t.after(() => app.close())
  await options.before?.(app)
  let context: EvluaContext | undefined
  const saved = process.env.NODE_ENV
  if (options.nodeEnv !== undefined) process.env.NODE_ENV = options.nodeEnv
  try {
    await app.register(evlua, {
      dir: fixture(name),
      prefix: options.prefix,
      config: options.config,
      env: {},
      onContext: (c) => { context = c }
    })
    await app.ready()
  } finally {
    if (saved === undefined) delete process.env.NODE_ENV
    else process.env.NODE_ENV = saved
  }
  if (!context) throw new Error('evlua did not report its context')
  return { app, evlua: context }
}

/** Run a Lua chunk as a task in the app's runtime (as a file named chunkName); resolves with its results. */
export function runLua (ctx: EvluaContext, source: string, chunkName = 'test.lua'): Promise<unknown[]> {
  return ctx.runtime.run(ctx.runtime.internal('run_file'), [source, chunkName])
}
