// The data benchmarks: each scenario runs against the evlua server and its plain-Fastify twin,
// alternately, and reports requests/s, server CPU µs per request and the ratio evlua / plain.
//   node_modules/.bin/node bench/data/run.ts [--duration 10] [--connections 50] [--rounds 3]
// Starts its own PostgreSQL and Redis (test/helpers), seeds 10000 users, then for each scenario:
// `rounds` rounds, each a warm-up and a run of autocannon on each server (the order alternating);
// a round's ratio compares its two runs, and the median round counts. When taskset is there, the
// HTTP server under test has core 0 to itself; this process, PostgreSQL and Redis share core 1.
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual, parseArgs } from 'node:util'
import autocannon from 'autocannon'
import pg from 'pg'
import { Redis } from 'ioredis'
import { startPostgres } from '../../test/helpers/postgres.ts'
import { startRedis } from '../../test/helpers/redis.ts'
import { canPin, cpuSeconds, pinByName, pinProcess, spawnOn } from '../processes.ts'

const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string' }
  }
})
const duration = Number(opts.duration)
const connections = Number(opts.connections)
const rounds = Number(opts.rounds)

const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url))
const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url))
const USERS = 10000
const pin = canPin()

interface Scenario { name: string, path: (i: number) => string, target: number }
const scenarios: Scenario[] = [
  { name: 'baseline: no data access', path: () => '/baseline', target: 0 },
  { name: 'postgres: indexed SELECT → JSON', path: (i) => `/pg/${i}`, target: 0.80 },
  { name: 'sqlite: indexed SELECT → JSON', path: (i) => `/sqlite/${i}`, target: 0.75 },
  { name: 'redis: GET', path: (i) => `/redis/user:${i}`, target: 0.70 }
].filter((s) => !opts.only || s.name.startsWith(opts.only))

async function seed (pgUrl: string, redisUrl: string, sqlitePath: string): Promise<void> {
  const client = new pg.Client({ connectionString: pgUrl })
  await client.connect()
  await client.query('create table users (id int primary key, name text not null, email text not null, score double precision)')
  await client.query(`insert into users select i, 'user ' || i, 'user' || i || '@example.com', i * 1.5 from generate_series(1, ${USERS}) i`)
  await client.end()
  const db = new DatabaseSync(sqlitePath)
  db.exec('pragma journal_mode = wal; create table users (id integer primary key, name text not null, email text not null, score real)')
  db.exec(`with recursive s(i) as (select 1 union all select i + 1 from s where i < ${USERS})
    insert into users select i, 'user ' || i, 'user' || i || '@example.com', i * 1.5 from s`)
  db.close()
  const redis = new Redis(redisUrl)
  const pipeline = redis.pipeline()
  for (let i = 1; i <= USERS; i++) pipeline.set(`user:${i}`, JSON.stringify({ id: i, name: `user ${i}` }))
  await pipeline.exec()
  redis.disconnect()
}

async function startServer (kind: string, env: Record<string, string>): Promise<{ url: string, child: ChildProcess }> {
  const child = spawnOn(pin ? 0 : undefined, [NODE, SERVER, kind], { env: { ...process.env, ...env, NODE_ENV: 'production' }, stdio: ['ignore', 'pipe', 'inherit'] })
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = out.match(/^(http:\/\/\S+)\n/m)
      if (m) resolve(m[1])
    })
    child.once('exit', (code) => reject(new Error(`${kind} server exited (${code})`)))
  })
  return { url, child }
}

async function stopServer (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

/** What a server answers (status, content type, parsed body): both servers must agree. */
async function answer (url: string): Promise<unknown> {
  const res = await fetch(url)
  const text = await res.text()
  const type = res.headers.get('content-type')
  return { status: res.status, type, body: type?.startsWith('application/json') ? JSON.parse(text) : text }
}

interface Run { rps: number, p99: number, errors: number, cpuUs: number }

async function load (url: string, pid: number, scenario: Scenario, seconds: number): Promise<Run> {
  let n = 0
  const cpu0 = cpuSeconds(pid)
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [{ setupRequest: (req) => ({ ...req, path: scenario.path((n++ % USERS) + 1) }) }]
  })
  const errors = result.errors + result.non2xx + result.timeouts
  const cpuUs = (cpuSeconds(pid) - cpu0) / result.requests.total * 1e6
  return { rps: result.requests.average, p99: result.latency.p99, errors, cpuUs }
}

const median = (xs: number[]): number => {
  const a = [...xs].sort((x, y) => x - y)
  return a.length % 2 ? a[a.length >> 1] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2
}

const dir = await mkdtemp(join(tmpdir(), 'evlua-bench-'))
if (pin) pinProcess(process.pid, 1)
const postgres = await startPostgres({ settings: { max_connections: '50' } })
const redis = await startRedis()
if (pin) { pinByName('postgres', 1); pinByName('redis-server', 1) }
try {
  const sqlitePath = join(dir, 'bench.sqlite')
  await seed(postgres.url, redis.url, sqlitePath)
  const env = { DATABASE_URL: postgres.url, REDIS_URL: redis.url, SQLITE_PATH: sqlitePath }
  console.log(`node ${process.version}, ${connections} connections, ${duration} s per run, median of ${rounds} rounds` +
    (pin ? '; HTTP server on core 0, load, PostgreSQL and Redis on core 1' : '; not pinned') + '\n')
  const rows: string[] = []
  for (const scenario of scenarios) {
    const runs: Record<string, Run[]> = { evlua: [], plain: [] }
    const ratios: number[] = []
    const answers: Record<string, unknown> = {}
    for (let round = 0; round < rounds; round++) {
      for (const kind of round % 2 === 0 ? ['evlua', 'plain'] : ['plain', 'evlua']) {
        const server = await startServer(kind, env)
        try {
          if (round === 0) answers[kind] = await answer(server.url + scenario.path(42))
          await load(server.url, server.child.pid!, scenario, Math.min(3, duration)) // warm-up (JIT, pools, caches)
          runs[kind].push(await load(server.url, server.child.pid!, scenario, duration))
        } finally {
          await stopServer(server.child)
        }
      }
      ratios.push(runs.evlua[round].rps / runs.plain[round].rps)
    }
    if (!isDeepStrictEqual(answers.evlua, answers.plain)) {
      throw new Error(`${scenario.name}: the two servers answer differently:\n${JSON.stringify(answers.evlua)}\n${JSON.stringify(answers.plain)}`)
    }
    const ratio = median(ratios)
    const m = (kind: string, f: (r: Run) => number): number => median(runs[kind].map(f))
    const errors = runs.evlua.concat(runs.plain).reduce((a, r) => a + r.errors, 0)
    const line = `${scenario.name.padEnd(34)} evlua ${m('evlua', (r) => r.rps).toFixed(0).padStart(6)} req/s ${m('evlua', (r) => r.cpuUs).toFixed(1).padStart(6)} µs CPU (p99 ${m('evlua', (r) => r.p99)} ms)` +
      `  plain ${m('plain', (r) => r.rps).toFixed(0).padStart(6)} req/s ${m('plain', (r) => r.cpuUs).toFixed(1).padStart(6)} µs CPU (p99 ${m('plain', (r) => r.p99)} ms)` +
      `  ratio ${ratio.toFixed(2)}` + (scenario.target ? ` (target ≥ ${scenario.target.toFixed(2)}) ${ratio >= scenario.target ? 'ok' : 'BELOW'}` : ' (the ceiling)') +
      (errors > 0 ? `  errors ${errors}` : '')
    console.log(line)
    rows.push(line)
  }
} finally {
  await redis.stop()
  await postgres.destroy()
  await rm(dir, { recursive: true, force: true })
}
