/**
 * Upload benchmark: a 1 MB multipart/form-data upload (a text field and a 1 MB file of random bytes)
 * through a Lua route that reads request.post_params, against its plain-Fastify twin using
 * @fastify/multipart's parts() + toBuffer(). Target: Lua ≥ 0.8 × the twin's requests/s.
 *
 *   node bench/upload/run.ts [--duration 8] [--warmup 2] [--connections 16] [--runs 3] [--no-pin]
 *
 * Both servers are child processes pinned to core 0 (taskset, when there are two cores or more) and
 * this process, which runs autocannon, to core 1. Each run loads one server then the other (the order
 * alternates); the table shows the median requests/s over the runs and the ratio Lua / twin, and
 * each server's CPU time per request (from /proc) with the twin's over Lua's: steadier than req/s
 * on a busy machine.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'

const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '16' },
    runs: { type: 'string', default: '3' },
    'no-pin': { type: 'boolean', default: false }
  }
})

const pin = !opts['no-pin'] && cpus().length >= 2 && (() => {
  try { execFileSync('taskset', ['-V'], { stdio: 'ignore' }); return true } catch { return false }
})()
if (pin) execFileSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' })

interface Server { name: string, url: string, child: ChildProcess }

async function startServer (name: 'lua' | 'twin'): Promise<Server> {
  const script = fileURLToPath(new URL('./server.ts', import.meta.url))
  const argv = pin ? ['taskset', '-c', '0', process.execPath, script, name] : [process.execPath, script, name]
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`${name} server exited (${code}) before listening`)))
  })
  return { name, url: line.trim(), child }
}

// one body, sent by every request
const boundary = '----evlua-bench-upload'
const file = randomBytes(1024 * 1024)
const body = Buffer.concat([
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbench upload\r\n`),
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
  file,
  Buffer.from(`\r\n--${boundary}--\r\n`)
])
const headers = { 'content-type': `multipart/form-data; boundary=${boundary}` }
const expected = { name: 'bench upload', file_name: 'bench.bin', size: file.length }

async function check (server: Server): Promise<void> {
  const res = await fetch(`${server.url}/upload`, { method: 'POST', body, headers })
  const got = await res.json()
  if (res.status !== 200 || JSON.stringify(got, Object.keys(expected).sort()) !== JSON.stringify(expected, Object.keys(expected).sort())) {
    throw new Error(`${server.name} answered ${res.status} ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`)
  }
}

/** The server process's CPU time so far, in µs (utime + stime from /proc). */
function cpuMicros (server: Server): number {
  const fields = readFileSync(`/proc/${server.child.pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * (1e6 / 100)
}

async function load (server: Server, seconds: number): Promise<{ rate: number, cpu: number }> {
  const cpu0 = cpuMicros(server)
  const result = await autocannon({
    url: `${server.url}/upload`, method: 'POST', body, headers,
    connections: Number(opts.connections), duration: seconds
  })
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${server.name}: ${result.non2xx} non-2xx answers, ${result.errors} errors`)
  return { rate: result.requests.average, cpu: (cpuMicros(server) - cpu0) / result.requests.total }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const servers = [await startServer('lua'), await startServer('twin')]
try {
  for (const s of servers) await check(s)
  const rates: Record<string, number[]> = { lua: [], twin: [] }
  const cpu: Record<string, number[]> = { lua: [], twin: [] }
  for (let run = 0; run < Number(opts.runs); run++) {
    const order = run % 2 === 0 ? servers : [...servers].reverse()
    for (const s of order) {
      await load(s, Number(opts.warmup))
      const r = await load(s, Number(opts.duration))
      rates[s.name].push(r.rate)
      cpu[s.name].push(r.cpu)
    }
    console.error(`run ${run + 1}: lua ${rates.lua.at(-1)!.toFixed(0)} req/s (${cpu.lua.at(-1)!.toFixed(0)} µs CPU/req), ` +
      `twin ${rates.twin.at(-1)!.toFixed(0)} req/s (${cpu.twin.at(-1)!.toFixed(0)} µs CPU/req)`)
  }
  const lua = median(rates.lua)
  const twin = median(rates.twin)
  const luaCpu = median(cpu.lua)
  const twinCpu = median(cpu.twin)
  console.log('| scenario | lua req/s | twin req/s | ratio | µs CPU/req lua / twin | cpu ratio |\n|---|---:|---:|---:|---:|---:|\n' +
    `| upload 1 MB multipart | ${lua.toFixed(0)} | ${twin.toFixed(0)} | ${(lua / twin).toFixed(2)} | ` +
    `${luaCpu.toFixed(0)} / ${twinCpu.toFixed(0)} | ${(twinCpu / luaCpu).toFixed(2)} |`)
  console.log(`(${opts.connections} connections, ${opts.duration} s × ${opts.runs} runs, medians${pin ? ', servers on core 0, client on core 1' : ', not pinned'})`)
} finally {
  for (const s of servers) s.child.kill('SIGTERM')
}
