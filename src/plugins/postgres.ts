import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import fastifyPostgres from '@fastify/postgres'
import pg from 'pg'
import { luaSource } from '../lua-bridge/modules.ts'
import { LuaRows } from '../lua-bridge/rows.ts'
import { LUA_NULL, LuaFunctionRef, badArgument, isLuaString, toBytes, toText, type CallContext } from '../lua-bridge/values.ts'
import { taskOf } from './data-values.ts'

/** How long opening a connection may take before the query fails with `nil, err`. */
const CONNECT_TIMEOUT_MS = 10_000
/** The marker key of `evpostgres.bytea(s)`: a Lua string bound as bytes (binary), never as text. */
const BYTEA_KEY = '__evlua_bytea'

const MAX_SAFE = 9007199254740991
const MAX_SAFE_N = 9007199254740991n
const MIN_SAFE_N = -9007199254740991n

// --- Postgres values → Lua ----------------------------------------------------------------------

/** int8: a number when exact, else a bigint (a Lua integer: Lua integers are 64-bit). */
function parseInt8 (s: string): number | bigint {
  const n = Number(s)
  if (Number.isSafeInteger(n)) return n
  const b = BigInt(s)
  return b >= MIN_SAFE_N && b <= MAX_SAFE_N ? Number(b) : b
}

/** numeric: a Lua number while its magnitude is within 2^53, else the exact decimal text. */
function parseNumeric (s: string): number | string {
  const n = Number(s)
  return Number.isFinite(n) && Math.abs(n) <= MAX_SAFE ? n : s
}

const TIMESTAMP = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)(?:([+-]\d\d)(:\d\d(?::\d\d)?)?)?$/

/** timestamp / timestamptz text → ISO 8601 (`2024-05-01T12:00:00.123456Z`), microseconds kept. */
function parseTimestamp (s: string): string {
  const m = TIMESTAMP.exec(s)
  if (!m) return s // infinity, BC dates: the server's text
  if (m[3] === undefined) return `${m[1]}T${m[2]}`
  const offset = m[3] + (m[4] ?? ':00')
  return `${m[1]}T${m[2]}${offset === '+00:00' ? 'Z' : offset}`
}

function parseJson (s: string): unknown {
  return JSON.parse(s, (_k, v) => v === null ? LUA_NULL : v)
}

const identity = (s: string): string => s
const pgParser = pg.types.getTypeParser as (oid: number, format?: string) => (value: string) => unknown
/** text[]: the array syntax parsed into nested arrays of strings (and nulls). */
const textArray = pgParser(1009) as (s: string) => unknown[]

function arrayOf (element: (s: string) => unknown): (s: string) => unknown {
  const map = (a: unknown[]): unknown[] => a.map((e) => e === null ? null : Array.isArray(e) ? map(e) : element(e as string))
  return (s: string) => map(textArray(s))
}

/** Our text parsers by type oid (the rest are pg's defaults). */
const PARSERS: Record<number, (s: string) => unknown> = {
  20: parseInt8, 1016: arrayOf(parseInt8),
  1700: parseNumeric, 1231: arrayOf(parseNumeric),
  114: parseJson, 3802: parseJson, 199: arrayOf(parseJson), 3807: arrayOf(parseJson),
  1114: parseTimestamp, 1184: parseTimestamp, 1115: arrayOf(parseTimestamp), 1185: arrayOf(parseTimestamp),
  1082: identity, 1182: arrayOf(identity), // date: the text, not a Date at local midnight
  1083: identity, 1266: identity, 1186: identity, 1187: arrayOf(identity) // time, timetz, interval
}

const types = {
  getTypeParser (oid: number, format?: string): (value: string) => unknown {
    if (format !== 'binary') {
      const parser = PARSERS[oid]
      if (parser) return parser
    }
    return pgParser(oid, format)
  }
}

/** NULL → platform.null, also inside arrays (a nil would cut the Lua sequence short). */
function nullsInArray (a: unknown[]): unknown[] {
  for (let i = 0; i < a.length; i++) {
    const v = a[i]
    if (v === null) a[i] = LUA_NULL
    else if (Array.isArray(v)) nullsInArray(v)
  }
  return a
}

/** Several statements in one text (no parameters) give several results: the last one's rows. */
function rowsOf (result: pg.QueryResult | pg.QueryResult[]): LuaRows | unknown[] {
  const last = Array.isArray(result) ? result[result.length - 1] : result
  const rows = (last?.rows ?? []) as unknown[][]
  if (rows.length === 0) return []
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]
    for (let c = 0; c < row.length; c++) if (Array.isArray(row[c])) nullsInArray(row[c] as unknown[])
  }
  return new LuaRows(last.fields.map((f) => f.name), rows)
}

// --- Lua values → Postgres parameters ------------------------------------------------------------

function fromLua (v: unknown): unknown {
  if (v === LUA_NULL || v === undefined) return null
  if (typeof v === 'bigint') return v.toString()
  if (typeof v !== 'object' || v === null || Buffer.isBuffer(v)) return v
  if (Array.isArray(v)) return v.map(fromLua)
  const o = v as Record<string, unknown>
  if (isLuaString(o[BYTEA_KEY])) return toBytes(o[BYTEA_KEY] as string | Buffer)
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(o)) out[k] = fromLua(o[k])
  return out
}

/**
 * Strings that are valid UTF-8 go as text (Postgres parses them for the column's type); other
 * byte strings go as binary (bytea, byte-exact). Sequences become Postgres arrays, other tables JSON.
 */
function params (args: unknown[], first: number, fn: string): unknown[] {
  const out = new Array(args.length)
  for (let i = 0; i < args.length; i++) {
    const v = args[i]
    const t = typeof v
    // Postgres text never holds a NUL byte: such a string can only be bytes (bytea).
    if (t === 'string') out[i] = (v as string).includes('\0') ? Buffer.from(v as string, 'utf8') : v
    else if (t === 'number' || t === 'boolean' || v === undefined || Buffer.isBuffer(v)) out[i] = v ?? null
    else if (v === LUA_NULL) out[i] = null
    else if (t === 'bigint') out[i] = (v as bigint).toString()
    else if (v instanceof LuaFunctionRef) {
      v.release()
      throw badArgument(first + i, fn, 'string, number, boolean, table, nil or platform.null', v)
    } else if (t === 'object') {
      const p = fromLua(v)
      // A JSON object or a Postgres array literal: pg serialises both.
      out[i] = Buffer.isBuffer(p) || Array.isArray(p) ? p : JSON.stringify(p)
    } else throw badArgument(first + i, fn, 'string, number, boolean, table, nil or platform.null', v)
  }
  return out
}

/** `23505: duplicate key value violates unique constraint "t_pkey"`, or the network error. */
export function pgErrorMessage (err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return pgErrorMessage(err.errors[0])
  const e = err as { message?: string, code?: string, name?: string, severity?: string }
  const message = e?.message || (e?.code ? `${e.code}` : String(err))
  if (e?.severity && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return `${e.code}: ${message}`
  return message
}

// --- the plugin ------------------------------------------------------------------------------------

interface Connection {
  client: pg.PoolClient
  /** Queries sent and not yet answered: a connection abandoned mid-query is destroyed, not reused. */
  busy: number
  closed: boolean
  statements: Set<number>
}

interface Statement { conn: number, name: string, text: string }

/** `evpostgres`: PostgreSQL through @fastify/postgres' pool (see docs/modules/evpostgres.md). */
async function postgresPlugin (fastify: FastifyInstance): Promise<void> {
  const { runtime, config } = fastify.evlua
  const log = fastify.log
  await fastify.register(fastifyPostgres, {
    name: 'evlua',
    connectionString: config.postgres.url!,
    max: config.postgres.pool_max,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    types
  })
  const pool = fastify.pg.evlua.pool
  // An idle connection whose server went away: pg drops it from the pool; without a listener the
  // 'error' event would crash the process.
  pool.on('error', (err) => { log.warn({ err: pgErrorMessage(err) }, 'evpostgres: idle connection lost') })

  const connections = new Map<number, Connection>()
  const statements = new Map<number, Statement>()
  const statementNames = new Map<string, string>()
  let nextId = 1

  async function run (conn: Connection, query: pg.QueryConfig): Promise<unknown> {
    conn.busy++
    try {
      return rowsOf(await conn.client.query({ ...query, rowMode: 'array' }))
    } catch (err) {
      throw new Error(pgErrorMessage(err))
    } finally {
      conn.busy--
    }
  }

  /** Back to the pool: rolled back first if a transaction is open; destroyed if a query is still running. */
  function release (id: number): void {
    const conn = connections.get(id)
    if (!conn || conn.closed) return
    conn.closed = true
    connections.delete(id)
    for (const sid of conn.statements) statements.delete(sid)
    const { client } = conn
    if (conn.busy > 0) {
      client.release(new Error('connection abandoned while a query was running'))
      return
    }
    if (client.getTransactionStatus() === 'I') {
      client.release()
      return
    }
    client.query('ROLLBACK').then(() => client.release(), (err: Error) => client.release(err))
  }

  function connection (id: unknown): Connection {
    const conn = connections.get(id as number)
    if (!conn) throw new Error('connection is closed')
    return conn
  }

  function sqlText (sql: unknown, fn: string): string {
    if (!isLuaString(sql)) throw badArgument(1, fn, 'string', sql)
    return toText(sql)
  }

  runtime.define({
    name: 'evpostgres',
    source: luaSource('evpostgres.lua'),
    chunkName: '[evlua] evpostgres.lua',
    functions: {
      query: async (sql: unknown, ...args: unknown[]) => {
        const text = sqlText(sql, 'query')
        const values = params(args, 2, 'query')
        try {
          return rowsOf(await pool.query({ text, values, rowMode: 'array' }))
        } catch (err) {
          throw new Error(pgErrorMessage(err))
        }
      },
      open: async function (this: CallContext | undefined) {
        const task = taskOf(this)
        if (!task) throw new Error('open_connection must be called from a handler or a task')
        let ended = false
        let id = 0
        task.onEnd(() => {
          ended = true
          if (id) release(id)
        })
        let client: pg.PoolClient
        try {
          client = await pool.connect()
        } catch (err) {
          throw new Error(pgErrorMessage(err))
        }
        if (ended) {
          client.release()
          throw new Error('task ended')
        }
        id = nextId++
        connections.set(id, { client, busy: 0, closed: false, statements: new Set() })
        return id
      },
      cquery: (id: number, sql: unknown, ...args: unknown[]) => {
        const conn = connection(id)
        return run(conn, { text: sqlText(sql, 'query'), values: params(args, 2, 'query') })
      },
      prepare: (id: number, sql: unknown) => {
        const conn = connection(id)
        const text = sqlText(sql, 'prepare')
        let name = statementNames.get(text)
        if (!name) {
          name = `evlua_${statementNames.size + 1}`
          statementNames.set(text, name)
        }
        const sid = nextId++
        statements.set(sid, { conn: id, name, text })
        conn.statements.add(sid)
        return sid
      },
      execute: (sid: number, ...args: unknown[]) => {
        const stmt = statements.get(sid)
        if (!stmt) throw new Error('statement is closed')
        return run(connection(stmt.conn), { name: stmt.name, text: stmt.text, values: params(args, 1, 'execute') })
      },
      finalize: (sid: number) => {
        const stmt = statements.get(sid)
        if (stmt) {
          statements.delete(sid)
          connections.get(stmt.conn)?.statements.delete(sid)
        }
        return true
      },
      close: (id: number) => { release(id); return true },
      /** COMMIT, failing when Postgres rolled back instead (a statement had failed in the transaction). */
      commit: async (id: number) => {
        const conn = connection(id)
        conn.busy++
        try {
          const result = await conn.client.query('COMMIT')
          if (result.command === 'ROLLBACK') throw new Error('transaction failed and was rolled back')
          return true
        } catch (err) {
          throw new Error(pgErrorMessage(err))
        } finally {
          conn.busy--
        }
      }
    }
  })

  fastify.addHook('onClose', async () => {
    for (const id of [...connections.keys()]) release(id)
  })
}

export default fp(postgresPlugin, { name: 'evlua-postgres', fastify: '5.x', dependencies: ['evlua-platform'] })
