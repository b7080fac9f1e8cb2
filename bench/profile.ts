/**
 * CPU profile of the Lua server under load: where a request's time goes.
 *
 *   node bench/profile.ts [--only hello] [--server lua|twin] [--duration 8] [--connections 50] [--top 30]
 *                         [--lua-config '{"lua":{"memory_limit_mb":0}}'] [--keep]
 *
 * Starts bench/lua-server.ts with --cpu-prof (pinned to core 0), loads one scenario with autocannon
 * (this process, pinned to core 1), stops the server and prints the functions with the most self
 * time, and the same grouped by file (wasm = the Lua VM itself). The .cpuprofile is kept under
 * bench/.profiles/ with --keep (open it in Chrome DevTools or speedscope).
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, renameSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'
import { scenarios } from './scenarios.ts'

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url))
const { values: opts } = parseArgs({
  options: {
    only: { type: 'string', default: 'hello' },
    server: { type: 'string', default: 'lua' },
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '50' },
    top: { type: 'string', default: '30' },
    'lua-config': { type: 'string', default: '{}' },
    keep: { type: 'boolean', default: false },
    file: { type: 'string' }
  }
})

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number, children?: number[] }
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[] }

/** Self time by function and by file, in percent of all samples. */
export function summarize (profile: Profile, top: number, requests = 0): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const fn = new Map<string, number>()
  const file = new Map<string, number>()
  for (const [id, t] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame
    const short = url.replace(/^file:\/\/.*?\/(src|bench|node_modules)\//, '$1/')
    const where = url.startsWith('wasm://') ? 'wasm (Lua VM)' : short || '(native/VM)'
    const key = `${functionName || '(anonymous)'}  ${where}${url && !url.startsWith('wasm') ? ':' + (lineNumber + 1) : ''}`
    fn.set(key, (fn.get(key) ?? 0) + t)
    const group = url.startsWith('wasm://') ? 'wasm (Lua VM)'
      : /node_modules\/(fastify|find-my-way|light-my-request|avvio|@fastify)/.test(url) ? 'fastify'
        : url.includes('/node_modules/') ? short.split('/').slice(0, 2).join('/')
          : url.startsWith('node:') ? 'node: ' + url.slice(5).split('/')[0]
            : short || `(${functionName || 'native'})`
    file.set(group, (file.get(group) ?? 0) + t)
  }
  // inclusive time of evlua's own functions (src/, bench/) and of the Lua VM as a whole
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const incl = new Map<string, number>()
  for (const [id, t] of self) {
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const { functionName, url, lineNumber } = byId.get(cur)!.callFrame
      let key: string | undefined
      if (url.startsWith('wasm://')) key = '[any wasm: the Lua VM and what it calls]'
      else if (/\/(src|bench)\//.test(url)) key = `${functionName || '(anonymous)'}  ${url.replace(/^file:\/\/.*?\/(src|bench)\//, '$1/')}:${lineNumber + 1}`
      if (key && !seen.has(key)) { seen.add(key); incl.set(key, (incl.get(key) ?? 0) + t) }
    }
  }
  // µs per request: over the whole profile (start-up included, a few %), when the request count is known
  const perReq = (t: number): string => requests ? `  ${(t / requests).toFixed(2).padStart(6)} µs/req` : ''
  const fmt = (m: Map<string, number>, n: number): string => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, t]) => `${(t / total * 100).toFixed(1).padStart(5)}%${perReq(t)}  ${k}`).join('\n')
  return `self time by function (top ${top}):\n${fmt(fn, top)}\n\nself time by file:\n${fmt(file, 25)}` +
    `\n\ninclusive time (evlua functions):\n${fmt(incl, top)}`
}

if (opts.file) {
  console.log(summarize(JSON.parse(readFileSync(opts.file, 'utf8')), Number(opts.top)))
  process.exit(0)
}

const scenario = scenarios.find((s) => s.name === opts.only)
if (!scenario) throw new Error(`unknown scenario '${opts.only}'`)
const dir = mkdtempSync(join(tmpdir(), 'evlua-prof-'))
let pin = false
try { execFileSync('taskset', ['-V'], { stdio: 'ignore' }); pin = true } catch {}
const argv = opts.server === 'twin'
  ? [process.execPath, '--cpu-prof', '--cpu-prof-dir', dir, here('./twin.ts')]
  : [process.execPath, '--cpu-prof', '--cpu-prof-dir', dir, here('./lua-server.ts'), '--config', opts['lua-config']!]
const child = pin ? spawn('taskset', ['-c', '0', ...argv], { stdio: ['ignore', 'pipe', 'inherit'] })
  : spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] })
if (pin) execFileSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' })
const url = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve))
const result = await autocannon({
  url: url + scenario.path, headers: scenario.headers, connections: Number(opts.connections), duration: Number(opts.duration)
})
console.log(`${opts.server} ${scenario.name}: ${Math.round(result.requests.total / result.duration)} req/s under the profiler`)
const exited = new Promise((resolve) => child.once('exit', resolve))
child.kill('SIGTERM')
await exited
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
if (!file) throw new Error('no profile written')
console.log(summarize(JSON.parse(readFileSync(join(dir, file), 'utf8')), Number(opts.top), result.requests.total))
if (opts.keep) {
  mkdirSync(here('./.profiles'), { recursive: true })
  const out = here(`./.profiles/${opts.server}-${scenario.name}-${Date.now()}.cpuprofile`)
  renameSync(join(dir, file), out)
  console.log(`\nprofile: ${out}`)
}
rmSync(dir, { recursive: true, force: true })
