// One bench server: `evlua` (the Lua routes in bench/data/app) or `plain` (the same three routes in
// plain Fastify + @fastify/postgres / node:sqlite / @fastify/redis). Prints its URL when listening.
// Usage: node bench/data/server.ts evlua|plain   (DATABASE_URL, REDIS_URL, SQLITE_PATH from the environment)
import { fileURLToPath } from 'node:url'
import { DatabaseSync } from 'node:sqlite'
import Fastify from 'fastify'
import fastifyPostgres from '@fastify/postgres'
import fastifyRedis from '@fastify/redis'
import evlua from '../../src/index.ts'

const kind = process.argv[2]
const app = Fastify({ logger: false })

if (kind === 'evlua') {
  await app.register(evlua, { dir: fileURLToPath(new URL('./app', import.meta.url)) })
} else if (kind === 'plain') {
  await app.register(fastifyPostgres, { connectionString: process.env.DATABASE_URL, max: 10 })
  await app.register(fastifyRedis, { url: process.env.REDIS_URL })
  const db = new DatabaseSync(process.env.SQLITE_PATH!)
  const byId = db.prepare('select id, name, email, score from users where id = ?')
  app.get('/baseline', async () => ({ id: 1, name: 'user 1', email: 'user1@example.com', score: 1.5 }))
  app.get<{ Params: { id: string } }>('/pg/:id', async (request, reply) => {
    const { rows } = await app.pg.query('select id, name, email, score from users where id = $1', [request.params.id])
    if (!rows[0]) return reply.code(404).send({ error: 'not found' })
    return rows[0]
  })
  app.get<{ Params: { id: string } }>('/sqlite/:id', async (request, reply) => {
    const row = byId.get(request.params.id)
    if (!row) return reply.code(404).send({ error: 'not found' })
    return row
  })
  app.get<{ Params: { key: string } }>('/redis/:key', async (request, reply) => {
    const v = await app.redis.get(request.params.key)
    if (v === null) return reply.code(404).send({ error: 'not found' })
    return v
  })
} else {
  console.error('usage: server.ts evlua|plain')
  process.exit(2)
}

await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
console.log(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`)
process.on('SIGTERM', () => { app.close().then(() => process.exit(0)) })
