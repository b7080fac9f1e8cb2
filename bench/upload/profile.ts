/**
 * CPU profile of one upload-benchmark server under the 1 MB multipart load:
 *
 *   node bench/upload/profile.ts [--server lua|twin] [--duration 6] [--connections 16] [--top 30] [--keep]
 *
 * Starts bench/upload/server.ts with --cpu-prof (pinned to core 0 when taskset exists), loads it
 * with autocannon (this process, core 1), stops it and prints, in µs per request, the self time of
 * each function and the inclusive time of evlua's own (start-up included: a few %). With --keep the
 * .cpuprofile stays under bench/.profiles/ (Chrome DevTools, speedscope).
 */
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, renameSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url))
const { values: opts } = parseArgs({
  options: {
    server: { type: 'string', default: 'lua' },
    duration: { type: 'string', default: '6' },
    connections: { type: 'string', default: '16' },
    top: { type: 'string', default: '30' },
    keep: { type: 'boolean', default: false }
  }
})

const boundary = '----evlua-bench-upload'
const body = Buffer.concat([
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbench upload\r\n`),
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
  randomBytes(1024 * 1024),
  Buffer.from(`\r\n--${boundary}--\r\n`)
])
const headers = { 'content-type': `multipart/form-data; boundary=${boundary}` }

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[] }

/** Self time by function and inclusive time of evlua's own functions, in µs per request. */
function summarize (profile: Profile, top: number, requests: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const self = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0))
  const name = (id: number): string => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame
    const where = url.startsWith('wasm://') ? 'wasm' : url.replace(/^file:\/\/.*?\/(src|bench|node_modules)\//, '$1/')
    return `${functionName || '(anonymous)'}  ${where}${url && !url.startsWith('wasm') ? ':' + (lineNumber + 1) : ''}`
  }
  const fn = new Map<string, number>()
  const incl = new Map<string, number>()
  let busy = 0
  for (const [id, t] of self) {
    const key = name(id)
    fn.set(key, (fn.get(key) ?? 0) + t)
    if (key.startsWith('(idle)')) continue
    busy += t
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const url = byId.get(cur)!.callFrame.url
      const k = url.startsWith('wasm://') ? '[any wasm]' : /\/(src|bench)\//.test(url) ? name(cur) : undefined
      if (k && !seen.has(k)) { seen.add(k); incl.set(k, (incl.get(k) ?? 0) + t) }
    }
  }
  const fmt = (m: Map<string, number>): string => [...m].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, t]) => `${(t / requests).toFixed(1).padStart(8)} µs/req  ${k}`).join('\n')
  return `busy (not idle): ${(busy / requests).toFixed(0)} µs/req over the whole profile (start-up included)\n\n` +
    `self time:\n${fmt(fn)}\n\ninclusive (evlua):\n${fmt(incl)}`
}

const dir = mkdtempSync(join(tmpdir(), 'evlua-upload-prof-'))
let pin = false
try { execFileSync('taskset', ['-V'], { stdio: 'ignore' }); pin = true } catch {}
const argv = [process.execPath, '--cpu-prof', '--cpu-prof-dir', dir, here('./server.ts'), opts.server!]
const child = pin ? spawn('taskset', ['-c', '0', ...argv], { stdio: ['ignore', 'pipe', 'inherit'] })
  : spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] })
if (pin) execFileSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' })
const url = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve))
const result = await autocannon({
  url: url + '/upload', method: 'POST', body, headers, connections: Number(opts.connections), duration: Number(opts.duration)
})
if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx answers, ${result.errors} errors`)
console.log(`${opts.server} upload: ${Math.round(result.requests.total / result.duration)} req/s under the profiler, ${result.requests.total} requests`)
const exited = new Promise((resolve) => child.once('exit', resolve))
child.kill('SIGTERM')
await exited
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
if (!file) throw new Error('no profile written')
const out = join(dir, file)
console.log(summarize(JSON.parse(readFileSync(out, 'utf8')), Number(opts.top), result.requests.total))
if (opts.keep) {
  mkdirSync(here('../.profiles'), { recursive: true })
  const kept = here(`../.profiles/upload-${opts.server}-${Date.now()}.cpuprofile`)
  renameSync(out, kept)
  console.log(`\nprofile: ${kept}`)
}
rmSync(dir, { recursive: true, force: true })
