import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import Fastify from 'fastify'
import evlua, { type EvluaContext } from '../index.ts'
import { LuaRuntimeError } from '../lua-bridge/scheduler.ts'

const USAGE = 'usage: evlua script.lua [args...]'

/**
 * `evlua script.lua [args...]`: run a Lua script event-driven, with platform and the modules.
 * Exits when the script and every task it spawned have ended: 0, or 1 with a traceback.
 */
export async function runScript (argv: string[]): Promise<number> {
  const [script, ...args] = argv
  if (!script || script === '--help' || script === '-h') {
    process.stderr.write(USAGE + '\n')
    return script ? 0 : 2
  }
  const file = resolve(script)
  let source: Buffer
  try {
    source = readFileSync(file)
  } catch (err) {
    process.stderr.write(`evlua: cannot read ${script}: ${(err as Error).message}\n`)
    return 1
  }
  const app = Fastify({ logger: { level: process.env.EVLUA_LOG_LEVEL ?? 'warn', stream: process.stderr } })
  let context: EvluaContext | undefined
  await app.register(evlua, {
    dir: dirname(file),
    routes: false,
    config: { lua: { cpu_timeout_ms: 2 ** 31 - 1, request_timeout_ms: 2 ** 31 - 1 } },
    onContext: (ctx) => { context = ctx }
  })
  try {
    await app.ready()
    const { runtime } = context!
    runtime.engine.unref(runtime.callMain(runtime.internal('set_arg'), [script, ...args]))
    await runtime.run(runtime.internal('run_file'), [source, script, ...args], { cpuTimeoutMs: 0, wallTimeoutMs: 0 })
    await runtime.scheduler.idle()
    return 0
  } catch (err) {
    if (err instanceof LuaRuntimeError) process.stderr.write(`evlua: ${err.message}\n${err.traceback}\n`)
    else process.stderr.write(`evlua: ${(err as Error).message}\n`)
    return 1
  } finally {
    await app.close()
  }
}

process.exitCode = await runScript(process.argv.slice(2))
