// The data benchmarks: each scenario runs against the evlua server and its plain-Fastify twin,
// alternately, and reports requests/s and the ratio evlua / plain.
//   node_modules/.bin/node bench/data/run.ts [--duration 10] [--connections 50] [--rounds 2]
// Starts its own PostgreSQL and Redis (test/helpers), seeds 10000 users, then for each scenario:
// a warm-up, then `rounds` alternating runs of autocannon per server; the best run of each counts.
import { spawn, type ChildProcess } from 'node:child_process'
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

const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '2' },
    only: { type: 'string' }
  }
})
const duration = Number(opts.duration)
const connections = Number(opts.connections)
const rounds = Number(opts.rounds)

const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url))
const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url))
const USERS = 10000

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
  const child = spawn(NODE, [SERVER, kind], { env: { ...process.env, ...env, NODE_ENV: 'production' }, stdio: ['ignore', 'pipe', 'inherit'] })
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

async function load (url: string, scenario: Scenario, seconds: number): Promise<{ rps: number, p99: number, errors: number }> {
  let n = 0
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [{ setupRequest: (req) => ({ ...req, path: scenario.path((n++ % USERS) + 1) }) }]
  })
  const errors = result.errors + result.non2xx + result.timeouts
  return { rps: result.requests.average, p99: result.latency.p99, errors }
}

const dir = await mkdtemp(join(tmpdir(), 'evlua-bench-'))
const postgres = await startPostgres({ settings: { max_connections: '50' } })
const redis = await startRedis()
try {
  const sqlitePath = join(dir, 'bench.sqlite')
  await seed(postgres.url, redis.url, sqlitePath)
  const env = { DATABASE_URL: postgres.url, REDIS_URL: redis.url, SQLITE_PATH: sqlitePath }
  console.log(`node ${process.version}, ${connections} connections, ${duration} s per run, best of ${rounds} rounds\n`)
  const rows: string[] = []
  for (const scenario of scenarios) {
    const best: Record<string, { rps: number, p99: number, errors: number }> = {}
    const answers: Record<string, unknown> = {}
    for (let round = 0; round < rounds; round++) {
      for (const kind of round % 2 === 0 ? ['evlua', 'plain'] : ['plain', 'evlua']) {
        const server = await startServer(kind, env)
        try {
          if (round === 0) answers[kind] = await answer(server.url + scenario.path(42))
          await load(server.url, scenario, Math.min(3, duration)) // warm-up (JIT, pools, caches)
          const r = await load(server.url, scenario, duration)
          if (!best[kind] || r.rps > best[kind].rps) best[kind] = r
        } finally {
          await stopServer(server.child)
        }
      }
    }
    if (!isDeepStrictEqual(answers.evlua, answers.plain)) {
      throw new Error(`${scenario.name}: the two servers answer differently:\n${JSON.stringify(answers.evlua)}\n${JSON.stringify(answers.plain)}`)
    }
    const ratio = best.evlua.rps / best.plain.rps
    const line = `${scenario.name.padEnd(34)} evlua ${best.evlua.rps.toFixed(0).padStart(6)} req/s (p99 ${best.evlua.p99} ms)` +
      `  plain ${best.plain.rps.toFixed(0).padStart(6)} req/s (p99 ${best.plain.p99} ms)` +
      `  ratio ${ratio.toFixed(2)}` + (scenario.target ? ` (target ≥ ${scenario.target.toFixed(2)}) ${ratio >= scenario.target ? 'ok' : 'BELOW'}` : ' (the ceiling)') +
      (best.evlua.errors + best.plain.errors > 0 ? `  errors ${best.evlua.errors}/${best.plain.errors}` : '')
    console.log(line)
    rows.push(line)
  }
} finally {
  await redis.stop()
  await postgres.destroy()
  await rm(dir, { recursive: true, force: true })
}
