/**
 * Memory held by each suspended Lua request.
 *
 *   node bench/memory.ts [--n 10000] [--lua-config '{"lua":{"memory_limit_mb":0}}'] [--record]
 *
 * Three measurements, each in a fresh child process (run with --expose-gc):
 *   runtime  N tasks started through LuaRuntime, each calling a JS function that returns a promise
 *            still pending (one shared gate): the bridge alone (coroutine, Task, scheduler closures).
 *   lua      N concurrent requests (Fastify inject) to bench/app/routes/hold.lua, each suspended in
 *            platform.sleep: the whole request path (Fastify request/reply, exchange, task, Lua
 *            request table, timer).
 *   twin     the same N requests to a plain-Fastify handler awaiting a timer: Fastify's own share.
 * Memory is read after a full GC (JS and Lua) before the tasks start and while all N are suspended;
 * the report gives bytes per suspended request for each part of process.memoryUsage() and for the
 * Lua heap (collectgarbage('count') after a full Lua collection: live Lua objects only).
 * evlua's own share of a request is lua − twin.
 */
import { spawnSync } from 'node:child_process'
import { appendFileSync, existsSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as delay } from 'node:timers/promises'

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url))

const { values: opts } = parseArgs({
  options: {
    n: { type: 'string', default: '10000' },
    child: { type: 'string' },
    'lua-config': { type: 'string', default: '{}' },
    record: { type: 'boolean', default: false }
  }
})
const N = Number(opts.n)
/** Warm-up tasks: few, so the thread pool holds few idle coroutines when we measure. */
const WARM = 50

interface Snapshot {
  rss: number, heapUsed: number, external: number, arrayBuffers: number
  /** Size of the wasm memory (grows in 64 KiB pages, never shrinks). */
  wasm: number
  /** Bytes Lua has allocated (only known with the memory cap on), and after a Lua full GC. */
  luaUsed: number
}
interface ChildResult { kind: string, n: number, suspended: number, before: Snapshot, during: Snapshot, luaGarbage: number }

const gc = (globalThis as { gc?: () => void }).gc

async function fullGc (): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc?.()
    await new Promise((resolve) => setImmediate(resolve))
  }
}

// ---------------------------------------------------------------- children

async function childRuntime (): Promise<ChildResult> {
  const { LuaRuntime } = await import('../src/lua-bridge/runtime.ts')
  const config = JSON.parse(opts['lua-config']!)
  const rt = await LuaRuntime.create({
    appDir: here('./app'),
    memoryLimit: (config.lua?.memory_limit_mb ?? 256) * 1024 * 1024,
    cpuTimeoutMs: 5000,
    wallTimeoutMs: 30000
  })
  let open!: () => void
  let gate!: Promise<void>
  const closeGate = (): void => { gate = new Promise<void>((resolve) => { open = resolve }) }
  rt.define({ name: 'memwait', functions: { wait: () => gate } })
  const mod = rt.callMain(rt.internal('require'), ['memwait'])
  const fn = rt.field(mod, 'wait')
  const luaGc = (): number => luaCollect(rt.engine as unknown as EngineLike)
  // warm-up: a small round (small, so the thread pool holds few idle coroutines when we measure)
  closeGate()
  const warm = Array.from({ length: WARM }, () => rt.run(fn, []))
  open()
  await Promise.all(warm)
  closeGate()
  await fullGc(); luaGc()
  const before = snapshot(rt.engine as unknown as EngineLike)
  const done: Array<Promise<unknown>> = []
  for (let i = 0; i < N; i++) done.push(rt.run(fn, []))
  await new Promise((resolve) => setImmediate(resolve))
  const suspended = rt.scheduler.active
  const garbage = luaGc()
  await fullGc()
  const during = snapshot(rt.engine as unknown as EngineLike)
  open()
  await Promise.all(done)
  return { kind: 'runtime', n: N, suspended, before, during, luaGarbage: garbage }
}

async function childHttp (kind: 'lua' | 'twin'): Promise<ChildResult> {
  const { default: Fastify } = await import('fastify')
  const app = Fastify({ logger: false })
  let active = 0
  let engine: EngineLike | undefined
  if (kind === 'lua') {
    const { default: evlua } = await import('../src/index.ts')
    const { default: fp } = await import('fastify-plugin')
    // fastify-plugin so that app.evlua (the runtime) is visible here
    await app.register(fp(evlua), { dir: here('./app'), config: JSON.parse(opts['lua-config']!) })
  } else {
    app.get('/hold', async (request) => {
      active++
      await delay(Number((request.query as { s?: string }).s ?? 5) * 1000)
      active--
      return 'held'
    })
  }
  await app.ready()
  if (kind === 'lua') engine = app.evlua.runtime.engine as unknown as EngineLike
  const luaGc = (): number => engine ? luaCollect(engine) : 0
  const suspendedNow = (): number => kind === 'lua' ? app.evlua.runtime.scheduler.active : active
  // warm-up: a few short requests (few: the thread pool keeps a coroutine per concurrent one)
  for (let i = 0; i < 4; i++) await Promise.all(Array.from({ length: WARM }, () => app.inject('/hold?s=0')))
  await fullGc(); luaGc()
  const before = snapshot(engine)
  const done: Array<Promise<unknown>> = []
  for (let i = 0; i < N; i++) done.push(app.inject('/hold?s=20'))
  const t0 = Date.now()
  while (suspendedNow() < N && Date.now() - t0 < 15000) await delay(20)
  const suspended = suspendedNow()
  const garbage = luaGc()
  await fullGc()
  const during = snapshot(engine)
  // no need to wait for the sleeps: the numbers are taken
  return { kind, n: N, suspended, before, during, luaGarbage: garbage }
}

interface EngineLike {
  mod: { HEAPU8: Uint8Array, _lua_settop: (L: number, i: number) => void }
  L: number
  runMain: (source: string, chunk: string) => number
  unref: (ref: number) => void
  pushRef: (L: number, ref: number) => void
  toJs: (L: number, i: number) => unknown
}

/** Bytes Lua holds (collectgarbage('count'): works whatever the engine's own accounting). */
function luaBytes (engine: EngineLike): number {
  const ref = engine.runMain("return collectgarbage('count') * 1024", '=count')
  engine.pushRef(engine.L, ref)
  const n = Number(engine.toJs(engine.L, -1))
  engine.mod._lua_settop(engine.L, 0)
  engine.unref(ref)
  return n
}

function luaCollect (engine: EngineLike): number {
  const before = luaBytes(engine)
  engine.unref(engine.runMain('collectgarbage("collect") collectgarbage("collect")', '=gc'))
  return before - luaBytes(engine)
}

function snapshot (engine?: EngineLike): Snapshot {
  const m = process.memoryUsage()
  const mod = engine?.mod
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    wasm: mod ? mod.HEAPU8.buffer.byteLength : 0,
    luaUsed: engine ? luaBytes(engine) : 0
  }
}

if (opts.child) {
  if (!gc) throw new Error('run with --expose-gc')
  const result = opts.child === 'runtime' ? await childRuntime() : await childHttp(opts.child as 'lua' | 'twin')
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exit(0)
}

// ---------------------------------------------------------------- parent

function runChild (kind: string): ChildResult {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', kind, '--n', String(N),
    '--lua-config', opts['lua-config']!], { encoding: 'utf8', maxBuffer: 1 << 24 })
  if (r.status !== 0) throw new Error(`memory child ${kind} failed (${r.status}):\n${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').pop()!)
}

const results = ['runtime', 'lua', 'twin'].map(runChild)
const per = (r: ChildResult, k: keyof Snapshot): number => (r.during[k] - r.before[k]) / r.n
const fields: Array<[keyof Snapshot, string]> = [
  ['heapUsed', 'JS heap'], ['external', 'external'], ['arrayBuffers', 'arrayBuffers'],
  ['luaUsed', 'Lua heap (live)'], ['wasm', 'wasm memory growth'], ['rss', 'RSS']
]
const [runtime, lua, twin] = results
const b = (x: number): string => Number.isFinite(x) ? `${Math.round(x)}` : 'n/a'
const lines = [
  `machine: node ${process.version}; N = ${N} suspended requests; lua config ${opts['lua-config']}`,
  `suspended when measured: runtime ${runtime.suspended}, lua ${lua.suspended}, twin ${twin.suspended} (of ${N})`,
  '',
  '| bytes per suspended request | runtime (bridge only) | lua request (Fastify + evlua) | twin request (Fastify) | evlua share (lua − twin) |',
  '|---|---:|---:|---:|---:|',
  ...fields.map(([k, label]) => `| ${label} | ${b(per(runtime, k))} | ${b(per(lua, k))} | ${b(per(twin, k))} | ${b(per(lua, k) - per(twin, k))} |`),
  `| **JS heap + Lua heap** | **${b(per(runtime, 'heapUsed') + per(runtime, 'luaUsed'))}** | ` +
    `**${b(per(lua, 'heapUsed') + per(lua, 'luaUsed'))}** | **${b(per(twin, 'heapUsed'))}** | ` +
    `**${b(per(lua, 'heapUsed') + per(lua, 'luaUsed') - per(twin, 'heapUsed'))}** |`,
  '',
  `Lua garbage collected while suspended (bytes/request, not counted above): runtime ${b(runtime.luaGarbage / N)}, lua ${b(lua.luaGarbage / N)}`
]
console.log(lines.join('\n'))

if (opts.record) {
  const file = here('./RESULTS.md')
  if (!existsSync(file)) writeFileSync(file, '# Benchmark results\n\nAppended by `npm run bench -- --record`. Newest last.\n')
  appendFileSync(file, `\n## ${new Date().toISOString().slice(0, 10)} memory (node bench/memory.ts)\n\n${lines.join('\n')}\n`)
}
