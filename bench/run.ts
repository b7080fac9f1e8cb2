/**
 * Throughput benchmark: evlua (Lua routes in bench/app) against a plain-Fastify twin (bench/twin.ts).
 *
 *   npm run bench -- [--duration 8] [--warmup 2] [--connections 50] [--runs 3] [--only json]
 *                    [--pipelining 1] [--lua-config '{"lua":{"memory_limit_mb":0}}'] [--record]
 *                    [--calibrate N]
 *
 * Both servers are child processes pinned to core 0 (taskset); this process, which runs autocannon,
 * pins itself to core 1. For each scenario and each run: warm up, then load one server, then the
 * other (the order alternates between runs). The table shows medians over the runs. `srv cpu` is the
 * server process's CPU use during the measured window: well under 100% means the load generator, not
 * the server, was the limit and the ratio is not to be trusted. `µs CPU/req` is the server's CPU time per
 * request and `cpu ratio` the twin's cost over Lua's: less sensitive to a noisy machine than req/s.
 * On a shared machine each measurement waits for the cores to be quiet, and a run during which other
 * processes used more than 10% of the servers' core is done again (up to --retries times).
 *
 * --calibrate N puts the twin, spinning N µs of CPU per request, in the Lua server's place: what a
 * plain handler that costs N µs more gets as a ratio on this machine (see bench/README.md).
 */
import type { ChildProcess } from 'node:child_process'
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'
import { scenarios, type Scenario } from './scenarios.ts'
import { canPin, cpuSeconds, pinProcess, spawnOn } from './processes.ts'

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url))

const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '50' },
    runs: { type: 'string', default: '3' },
    pipelining: { type: 'string', default: '1' },
    only: { type: 'string', multiple: true },
    'lua-config': { type: 'string', default: '{}' },
    record: { type: 'boolean', default: false },
    retries: { type: 'string', default: '3' },
    'quiet-timeout': { type: 'string', default: '60' },
    'no-pin': { type: 'boolean', default: false },
    calibrate: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})
if (opts.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0])
  process.exit(0)
}

const duration = Number(opts.duration)
const warmup = Number(opts.warmup)
const connections = Number(opts.connections)
const runs = Number(opts.runs)
const pipelining = Number(opts.pipelining)
const retries = Number(opts.retries)
const quietTimeout = Number(opts['quiet-timeout'])
/** A run during which other processes took more than this share of the servers' core is retried. */
const NOISE = 0.1
const selected = opts.only?.length
  ? opts.only.flatMap((o) => o.split(',')).map((name) => {
    const s = scenarios.find((x) => x.name === name)
    if (!s) throw new Error(`unknown scenario '${name}' (known: ${scenarios.map((x) => x.name).join(', ')})`)
    return s
  })
  : scenarios

const pin = !opts['no-pin'] && canPin()

if (Number(process.versions.node.split('.')[0]) < 24) {
  console.error(`warning: running on Node ${process.version}; evlua targets Node 24 (use node_modules/.bin/node)`)
}

// ---------------------------------------------------------------- servers

interface Server { name: string, url: string, child: ChildProcess, pid: number }

async function startServer (name: string, script: string, args: string[] = []): Promise<Server> {
  const argv = [process.execPath, here(script), ...args]
  const child = spawnOn(pin ? 0 : undefined, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} server did not start in 30 s`)), 30000)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} server exited (${code})`)) })
    lines.once('line', (line) => { clearTimeout(timer); resolve(line.trim()) })
  })
  // taskset execs the command, so the child's pid is the server's pid
  return { name, url, child, pid: child.pid! }
}

async function stopServer (s: Server): Promise<void> {
  if (s.child.exitCode !== null) return
  const exited = new Promise((resolve) => s.child.once('exit', resolve))
  s.child.kill('SIGTERM')
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

// ---------------------------------------------------------------- load

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * On a shared machine, wait (up to --quiet-timeout s) until both cores are nearly idle for a second:
 * our idle servers use nothing, so whatever is busy is someone else.
 */
async function waitQuiet (): Promise<void> {
  if (!pin || quietTimeout <= 0) return
  const until = Date.now() + quietTimeout * 1000
  let told = false
  for (;;) {
    const a = coreBusy()
    const own0 = process.cpuUsage()
    await sleep(1000)
    const b = coreBusy()
    const own = process.cpuUsage(own0)
    const others = b.reduce((sum, x, i) => sum + x - a[i], 0) - (own.user + own.system) / 1e6
    if (others < 0.1) return
    if (Date.now() > until) {
      console.error(`  machine still busy (${(others * 100).toFixed(0)}% of a core used by others): measuring anyway`)
      return
    }
    if (!told) console.error(`  waiting for the machine to be quiet (others use ${(others * 100).toFixed(0)}% of a core)...`)
    told = true
  }
}

interface Measure {
  rps: number, p50: number, p99: number, errors: number, non2xx: number
  /** Server CPU use (1 = one core) during the window. */
  cpu: number
  /** CPU use of everything else on the servers' core (other processes on a shared machine). */
  other: number
}

/** Busy seconds of each core so far (/proc/stat; idle and iowait excluded). */
function coreBusy (): number[] {
  try {
    return readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d/.test(l)).map((l) => {
      const f = l.split(/\s+/).slice(1).map(Number)
      return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100
    })
  } catch {
    return []
  }
}

/** Latency histogram with 10 µs buckets up to 2 s (autocannon's own is whole milliseconds). */
class Histogram {
  readonly buckets = new Uint32Array(200_001)
  count = 0
  record (ms: number): void {
    this.buckets[Math.min(this.buckets.length - 1, Math.round(ms * 100))]++
    this.count++
  }

  percentile (p: number): number {
    const target = Math.ceil(this.count * p / 100)
    let seen = 0
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]
      if (seen >= target) return i / 100
    }
    return NaN
  }
}

function load (server: Server, s: Scenario, seconds: number, measure: boolean): Promise<Measure> {
  const hist = new Histogram()
  const cpu0 = cpuSeconds(server.pid)
  const busy0 = coreBusy()[0] ?? NaN
  const t0 = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    const instance = autocannon({
      url: server.url + s.path,
      method: s.method ?? 'GET',
      headers: s.headers,
      body: s.body,
      connections,
      pipelining,
      duration: seconds
    }, (err: Error | null, result: autocannon.Result) => {
      if (err) { reject(err); return }
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9
      const cpu = (cpuSeconds(server.pid) - cpu0) / elapsed
      const busy = ((coreBusy()[0] ?? NaN) - busy0) / elapsed
      resolve({
        rps: result.requests.total / result.duration,
        p50: hist.percentile(50),
        p99: hist.percentile(99),
        errors: result.errors + result.timeouts,
        non2xx: result.non2xx,
        cpu,
        other: pin ? Math.max(0, busy - cpu) : NaN
      })
    })
    if (measure) instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => hist.record(ms))
  })
}

/** Both servers must give the same answer before their speeds are compared. */
async function check (servers: Server[], s: Scenario): Promise<void> {
  const answers = await Promise.all(servers.map(async (server) => {
    const res = await fetch(server.url + s.path, { method: s.method ?? 'GET', headers: s.headers, body: s.body })
    return { server: server.name, status: res.status, type: res.headers.get('content-type'), body: await res.text() }
  }))
  const norm = (b: string): string => s.compare === 'json' ? JSON.stringify(sortKeys(JSON.parse(b))) : b
  const [a, b] = answers
  if (a.status !== b.status || a.type !== b.type || norm(a.body) !== norm(b.body)) {
    throw new Error(`scenario '${s.name}': the servers answer differently:\n${JSON.stringify(answers, null, 2)}`)
  }
  if (a.status >= 300) throw new Error(`scenario '${s.name}': status ${a.status}: ${a.body}`)
}

function sortKeys (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]))
  }
  return v
}

const median = (xs: number[]): number => {
  const a = [...xs].sort((x, y) => x - y)
  const m = a.length >> 1
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2
}

// ---------------------------------------------------------------- main

function machine (): string {
  let model = cpus()[0]?.model ?? 'unknown'
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'))
    if (line) model = line.split(':')[1].trim()
  } catch {}
  return `${model}, ${cpus().length} cores`
}

const pkgVersion = (name: string): string => {
  try { return JSON.parse(readFileSync(here(`../node_modules/${name}/package.json`), 'utf8')).version } catch { return '?' }
}

if (pin) pinProcess(process.pid, 1)

const header = [
  `machine: ${machine()}`,
  `node: ${process.version}, fastify ${pkgVersion('fastify')}, wasmoon ${pkgVersion('wasmoon')}, autocannon ${pkgVersion('autocannon')}`,
  `date: ${new Date().toISOString()}`,
  `load: ${connections} connections, pipelining ${pipelining}, ${warmup} s warm-up + ${duration} s, ${runs} runs (median)` +
    `; ${pin ? 'servers pinned to core 0, autocannon to core 1' : 'not pinned (no taskset or one core)'}`,
  opts.calibrate !== undefined
    ? `calibration: the "lua" column is the twin spinning ${opts.calibrate} µs of CPU per request (no Lua)`
    : `lua config: ${opts['lua-config']}`
]
console.log(header.join('\n'))

// --calibrate N: the Lua server's place is taken by the twin spinning N µs more per request.
const lua = opts.calibrate !== undefined
  ? await startServer('lua', './twin.ts', ['--burn-us', opts.calibrate])
  : await startServer('lua', './lua-server.ts', ['--config', opts['lua-config']!])
const twin = await startServer('twin', './twin.ts')
const servers = [lua, twin]

interface Row { name: string, lua: Measure, twin: Measure, pairs: number[] }
const rows: Row[] = []
const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })

try {
  for (const s of selected) {
    await check(servers, s)
    const got: Record<string, Measure[]> = { lua: [], twin: [] }
    for (let run = 0; run < runs; run++) {
      const order = run % 2 === 0 ? servers : [...servers].reverse()
      for (const server of order) {
        let m: Measure
        for (let attempt = 0; ; attempt++) {
          await waitQuiet()
          if (warmup > 0) await load(server, s, warmup, false)
          m = await load(server, s, duration, true)
          if (!(m.other > NOISE) || attempt >= retries) break
          console.error(`  ${s.name} run ${run + 1} ${server.name}: others used ${(m.other * 100).toFixed(0)}% of core 0: again`)
        }
        got[server.name].push(m)
        console.error(`  ${s.name} run ${run + 1} ${server.name}: ${fmt(m.rps)} req/s, p99 ${m.p99.toFixed(2)} ms, ` +
          `srv cpu ${(m.cpu * 100).toFixed(0)}%, others on core 0 ${(m.other * 100).toFixed(0)}%${m.errors || m.non2xx ? `, ${m.errors} errors, ${m.non2xx} non-2xx` : ''}`)
      }
    }
    const pick = (ms: Measure[]): Measure => ({
      rps: median(ms.map((m) => m.rps)),
      p50: median(ms.map((m) => m.p50)),
      p99: median(ms.map((m) => m.p99)),
      errors: ms.reduce((a, m) => a + m.errors, 0),
      non2xx: ms.reduce((a, m) => a + m.non2xx, 0),
      cpu: median(ms.map((m) => m.cpu)),
      other: Math.max(...ms.map((m) => m.other))
    })
    // Each run's two servers were measured back to back: their ratio is less moved by a machine
    // whose speed drifts over minutes than the ratio of the two medians.
    const pairs = got.lua.map((m, i) => m.rps / got.twin[i].rps).sort((a, b) => a - b)
    rows.push({ name: s.name, lua: pick(got.lua), twin: pick(got.twin), pairs })
  }
} finally {
  await Promise.all(servers.map(stopServer))
}

const table = [
  '| scenario | lua req/s | twin req/s | ratio | pair ratios: median (range) | lua p99 (ms) | twin p99 (ms) | µs CPU/req lua / twin | cpu ratio | srv cpu lua / twin |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => {
    const cost = (m: Measure): number => m.cpu * 1e6 / m.rps
    const pairs = `${median(r.pairs).toFixed(2)} (${r.pairs[0].toFixed(2)}-${r.pairs[r.pairs.length - 1].toFixed(2)})`
    return `| ${r.name} | ${fmt(r.lua.rps)} | ${fmt(r.twin.rps)} | ${(r.lua.rps / r.twin.rps).toFixed(2)} | ${pairs} | ` +
      `${r.lua.p99.toFixed(2)} | ${r.twin.p99.toFixed(2)} | ${cost(r.lua).toFixed(1)} / ${cost(r.twin).toFixed(1)} | ` +
      `${(cost(r.twin) / cost(r.lua)).toFixed(2)} | ${(r.lua.cpu * 100).toFixed(0)}% / ${(r.twin.cpu * 100).toFixed(0)}% |`
  })
]
const problems = [
  ...rows.filter((r) => r.lua.errors + r.lua.non2xx + r.twin.errors + r.twin.non2xx > 0)
    .map((r) => `warning: ${r.name}: lua ${r.lua.errors} errors ${r.lua.non2xx} non-2xx; twin ${r.twin.errors} errors ${r.twin.non2xx} non-2xx`),
  ...rows.filter((r) => Math.max(r.lua.other, r.twin.other) > NOISE)
    .map((r) => `warning: ${r.name}: other processes used up to ${(Math.max(r.lua.other, r.twin.other) * 100).toFixed(0)}% of core 0 during a run (noisy machine)`),
  ...rows.filter((r) => Math.min(r.lua.cpu, r.twin.cpu) < 0.9)
    .map((r) => `warning: ${r.name}: a server used under 90% of its core: the load generator (or interference) was the limit`)
]
console.log('\n' + table.join('\n'))
for (const p of problems) console.log(p)

if (opts.record) {
  const file = here('./RESULTS.md')
  if (!existsSync(file)) writeFileSync(file, '# Benchmark results\n\nAppended by `npm run bench -- --record`. Newest last.\n')
  appendFileSync(file, `\n## ${new Date().toISOString().slice(0, 10)} (npm run bench)\n\n` +
    header.map((l) => `- ${l}`).join('\n') + '\n\n' + table.join('\n') + '\n' +
    problems.map((p) => `\n${p}\n`).join(''))
  console.log(`\nappended to ${file}`)
}
