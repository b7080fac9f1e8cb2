import { mkdirSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { luaSource } from '../lua-bridge/modules.ts'
import { LuaRows } from '../lua-bridge/rows.ts'
import { LUA_NULL, LuaFunctionRef, badArgument, isLuaString, multi, toText, type CallContext, type TaskHandle } from '../lua-bridge/values.ts'
import { taskOf } from './data-values.ts'

/** Prepared statements kept per connection for `db:query` / `db:exec`-style calls, by SQL text. */
const STATEMENT_CACHE_SIZE = 256
/** How long SQLite itself retries on a lock held by another process (it blocks the event loop meanwhile). */
const BUSY_TIMEOUT_MS = 5000
/** Stands in for the task when a database is used outside any task (a module's main chunk at load time). */
const NO_TASK = Object.freeze({ id: 0 }) as unknown as TaskHandle

interface CachedStatement {
  stmt: StatementSync
  /** How Lua names a cached statement in `run` (unique in the process). */
  key: number
  /** The statement has result columns (SELECT, RETURNING, some PRAGMAs): run it with all(). */
  rows: boolean
  /** A plain SELECT: cannot change last_id()/changes(), and is safe to run again. */
  select: boolean
  /** The result's column names, as read at schema epoch `epoch` (reading them costs more than a query). */
  names: string[]
  epoch: number
}

/**
 * One SQLite connection. File databases are shared by every handle that opens the same path
 * (one connection per file per process: no lock fights between our own handles); `:memory:` gets a
 * connection per handle. `owner` is the task whose transaction is open on it: other tasks' statements
 * wait until it ends, so a transaction that waits (a query elsewhere, a sleep) stays isolated.
 */
interface Connection {
  key: string
  db: DatabaseSync
  shared: boolean
  handles: number
  cache: Map<string, CachedStatement>
  /**
   * The statements Lua holds keys to (in the db's `_cache`, by SQL text: the text then need not
   * cross to JS on every query). Kept until Lua starts its cache afresh, even if evicted from `cache`.
   */
  keys: Map<number, CachedStatement>
  /** db:rows statements not iterating now, by SQL text (compiling one costs more than a short loop). */
  idle: Map<string, StatementSync>
  owner: TaskHandle | undefined
  depth: number
  waiters: Array<() => void>
  info: StatementSync
}

interface Handle {
  conn: Connection
  lastId: number | bigint
  changes: number | bigint
  /** Statement and cursor ids opened through this handle, closed with it. */
  children: Set<number>
}

interface Statement {
  handle: Handle
  entry: CachedStatement
  /** The parameters of the last execute, for rows() without parameters (LuaDBI's execute-then-rows). */
  last: unknown[]
}
/**
 * `entry`: a prepared statement's, which returns arrays of values; else db:rows' own statement
 * (which returns objects), for the idle ones when the loop ends.
 */
interface Cursor { handle: Handle, iter: Iterator<unknown>, arrays: boolean, entry: CachedStatement | undefined, text: string, stmt: StatementSync }

const SELECT = /^\s*(?:select|values)\b/i

/** SQLite values → Lua: NULL → platform.null, integers as numbers (Lua integers beyond 2^53), blobs as bytes. */
function rowToLua (row: Record<string, unknown>): Record<string, unknown> {
  for (const k in row) {
    const v = row[k]
    if (v === null) row[k] = LUA_NULL
    else if (typeof v === 'bigint' && v >= -9007199254740991n && v <= 9007199254740991n) row[k] = Number(v)
  }
  return row
}

/** A Lua value → a SQLite parameter. Lua integers bind as INTEGER, so `'n' || ?` reads `n3`, not `n3.0`. */
function param (v: unknown, n: number, fn: string): unknown {
  switch (typeof v) {
    case 'number': return Number.isSafeInteger(v) ? BigInt(v) : v
    case 'string': case 'bigint': return v
    case 'boolean': return v ? 1n : 0n
    case 'undefined': return null
  }
  if (v === LUA_NULL) return null
  if (Buffer.isBuffer(v)) return v
  if (v instanceof LuaFunctionRef) v.release()
  throw badArgument(n, fn, 'string, number, boolean, nil or platform.null', v)
}

/** The parameters of a call, converted in place (args is the call's own rest array). */
function params (args: unknown[], first: number, fn: string): unknown[] {
  // One table argument holds named parameters: db:query('... :name', { name = 'x' }).
  if (args.length === 1 && typeof args[0] === 'object' && args[0] !== null && !Buffer.isBuffer(args[0]) && !(args[0] instanceof LuaFunctionRef)) {
    const named: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(args[0] as Record<string, unknown>)) named[k] = param(v, first, fn)
    args[0] = named
    return args
  }
  for (let i = 0; i < args.length; i++) args[i] = param(args[i], first + i, fn)
  return args
}

/** A row of values (a statement in arrays mode) as a list for Lua, NULL → platform.null. */
function valuesToLua (values: unknown[]): unknown[] {
  for (let i = 0; i < values.length; i++) if (values[i] === null) values[i] = LUA_NULL
  return values
}

/** A row of values as a table keyed by column name (a later column wins a repeated name, as in node:sqlite). */
function rowObject (names: readonly string[], values: unknown[]): Record<string, unknown> {
  const row: Record<string, unknown> = {}
  for (let i = 0; i < names.length; i++) row[names[i]] = values[i] === null ? LUA_NULL : values[i]
  return row
}

// Node 22's node:sqlite has neither (Node 24 has both): without an authorizer, column names are
// read on every query; without array rows, object rows are turned into arrays (a column name
// that repeats keeps one value then).
const SQLITE_OK = 0
const WATCHES_SCHEMA = typeof (DatabaseSync.prototype as { setAuthorizer?: unknown }).setAuthorizer === 'function'

function returnArrays (stmt: StatementSync): void {
  if (typeof (stmt as { setReturnArrays?: unknown }).setReturnArrays === 'function') {
    stmt.setReturnArrays(true)
    return
  }
  const all = stmt.all.bind(stmt)
  stmt.all = ((...args: []) => all(...args).map((row) => Object.values(row as object))) as unknown as typeof stmt.all
}

/** `evsqlite`: SQLite through node:sqlite (synchronous, in the server's thread; see docs/modules/evsqlite.md). */
async function sqlitePlugin (fastify: FastifyInstance): Promise<void> {
  const { runtime, config, dir } = fastify.evlua
  const connections = new Map<string, Connection>()
  const handles = new Map<number, Handle>()
  const statements = new Map<number, Statement>()
  const cursors = new Map<number, Cursor>()
  let nextId = 1
  let nextMemory = 1
  /**
   * Bumped whenever SQLite re-prepares a statement (after a schema change: ours, a rollback's,
   * another process's), whose columns may then differ (`select *`): cached column names older than
   * it are read again. SQLite calls the authorizer whenever it compiles SQL; `compiling` is set
   * while we compile our own, so any other call is a re-prepare.
   */
  let schemaEpoch = 0
  let compiling = false
  const authorize = (): number => {
    if (!compiling) schemaEpoch++
    return SQLITE_OK
  }

  function execSql (db: DatabaseSync, sql: string): void {
    compiling = true
    try { db.exec(sql) } finally { compiling = false }
  }

  function prepareSql (db: DatabaseSync, sql: string): StatementSync {
    compiling = true
    try { return db.prepare(sql) } finally { compiling = false }
  }

  function connect (path: string): Connection {
    const memory = path === ':memory:' || path === '' || path.includes('mode=memory')
    const key = memory ? `:memory:#${nextMemory++}` : path
    const existing = connections.get(key)
    if (existing) return existing
    if (!memory && !path.startsWith('file:')) mkdirSync(dirname(path), { recursive: true })
    const db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS })
    if (!memory) {
      try { db.exec('PRAGMA journal_mode = WAL') } catch {}
    }
    const conn: Connection = {
      key,
      db,
      shared: !memory,
      handles: 0,
      cache: new Map(),
      keys: new Map(),
      idle: new Map(),
      owner: undefined,
      depth: 0,
      waiters: [],
      info: db.prepare('SELECT last_insert_rowid() AS id, changes() AS n')
    }
    if (WATCHES_SCHEMA) db.setAuthorizer(authorize)
    connections.set(key, conn)
    return conn
  }

  function disconnect (conn: Connection): void {
    if (conn.handles > 0 || conn.shared) return
    connections.delete(conn.key)
    conn.cache.clear()
    conn.keys.clear()
    conn.idle.clear()
    try { conn.db.close() } catch {}
  }

  function handle (id: unknown, fn: string): Handle {
    const h = handles.get(id as number)
    if (!h) throw new Error(typeof id === 'number' ? 'database is closed' : `bad database handle in '${fn}'`)
    return h
  }

  function prepared (conn: Connection, sql: string): CachedStatement {
    let entry = conn.cache.get(sql)
    if (entry) return entry
    entry = describe(prepareSql(conn.db, sql), sql)
    // First in, first out: a program runs a fixed set of statements, so this rarely evicts.
    if (conn.cache.size >= STATEMENT_CACHE_SIZE) conn.cache.delete(conn.cache.keys().next().value!)
    conn.cache.set(sql, entry)
    return entry
  }

  function describe (stmt: StatementSync, sql: string): CachedStatement {
    const names = stmt.columns().map((c) => c.name)
    const rows = names.length > 0
    const select = rows && SELECT.test(sql)
    if (!select) stmt.setReadBigInts(true)
    // Rows as arrays of values: cheaper to make and to push than objects (see LuaRows).
    if (rows) returnArrays(stmt)
    return { stmt, key: nextId++, rows, select, names, epoch: schemaEpoch }
  }

  function rowsStatement (conn: Connection, text: string): StatementSync {
    const stmt = conn.idle.get(text)
    if (!stmt) return prepareSql(conn.db, text)
    conn.idle.delete(text)
    return stmt
  }

  function endCursor (cid: number, c: Cursor): void {
    cursors.delete(cid)
    c.handle.children.delete(cid)
    c.iter.return?.()
    if (c.entry) return
    const { idle } = c.handle.conn
    if (idle.size >= STATEMENT_CACHE_SIZE) idle.delete(idle.keys().next().value!)
    idle.set(c.text, c.stmt)
  }

  function columnNames (entry: CachedStatement): readonly string[] {
    if (entry.epoch !== schemaEpoch || !WATCHES_SCHEMA) {
      entry.names = entry.stmt.columns().map((c) => c.name)
      entry.epoch = schemaEpoch
    }
    return entry.names
  }

  function snapshot (h: Handle): void {
    const info = h.conn.info.get() as { id: number | bigint, n: number | bigint }
    h.lastId = info.id
    h.changes = info.n
  }

  function execute (h: Handle, entry: CachedStatement, args: unknown[]): unknown[] | LuaRows {
    const { stmt } = entry
    if (!entry.rows) {
      const r = stmt.run(...(args as []))
      h.lastId = r.lastInsertRowid
      h.changes = r.changes
      return []
    }
    let rows: unknown[][]
    if (entry.select) {
      try {
        rows = stmt.all(...(args as [])) as unknown as unknown[][]
      } catch (err) {
        // An integer beyond 2^53 in a SELECT: read this statement's integers as bigints from now on.
        if ((err as NodeJS.ErrnoException).code !== 'ERR_OUT_OF_RANGE') throw err
        stmt.setReadBigInts(true)
        rows = stmt.all(...(args as [])) as unknown as unknown[][]
      }
    } else {
      rows = stmt.all(...(args as [])) as unknown as unknown[][]
      snapshot(h)
    }
    if (rows.length === 0) return []
    return new LuaRows(columnNames(entry), rows)
  }

  /** Whether the calling task may use the connection now (no other task's transaction is open on it). */
  function free (ctx: CallContext | undefined, h: Handle): boolean {
    const owner = h.conn.owner
    return owner === undefined || owner === (taskOf(ctx) ?? NO_TASK)
  }

  /**
   * Run op now, unless another task holds a transaction on this connection: then wait for it
   * to end (only this coroutine waits). Outside a task (load time) there is no waiting.
   */
  function guarded<T> (ctx: CallContext | undefined, h: Handle, op: () => T): T | Promise<T> {
    const conn = h.conn
    const task = taskOf(ctx) ?? NO_TASK
    if (conn.owner === undefined || conn.owner === task) return op()
    if (task === NO_TASK) throw new Error('database is locked by a transaction in progress')
    return new Promise<T>((resolve, reject) => {
      let cancelled = false
      const waiter = (): void => {
        if (cancelled) return
        try { resolve(op()) } catch (err) { reject(err) }
      }
      conn.waiters.push(waiter)
      // A task stopped while it waits must not run its statement (or take the lock) later.
      task.onEnd(() => { cancelled = true })
    })
  }

  function wake (conn: Connection): void {
    while (conn.waiters.length > 0 && conn.owner === undefined) conn.waiters.shift()!()
  }

  function endTransaction (conn: Connection): void {
    conn.owner = undefined
    conn.depth = 0
    wake(conn)
  }

  function begin (this: CallContext | undefined, id: number): true | Promise<true> {
    const h = handle(id, 'transaction')
    const conn = h.conn
    const task = taskOf(this) ?? NO_TASK
    return guarded(this, h, () => {
      if (conn.owner === task) {
        execSql(conn.db, `SAVEPOINT evlua_${conn.depth}`)
        conn.depth++
        return true as const
      }
      // BEGIN IMMEDIATE takes the write lock now, so another process cannot make our COMMIT fail.
      execSql(conn.db, 'BEGIN IMMEDIATE')
      conn.owner = task
      conn.depth = 1
      if (task !== NO_TASK) {
        task.onEnd(() => {
          if (conn.owner !== task) return
          try { if (conn.db.isTransaction) execSql(conn.db, 'ROLLBACK') } catch {}
          endTransaction(conn)
        })
      }
      return true as const
    })
  }

  function finish (ctx: CallContext | undefined, id: number, commit: boolean): true {
    const h = handle(id, commit ? 'commit' : 'rollback')
    const conn = h.conn
    const task = taskOf(ctx) ?? NO_TASK
    if (conn.owner !== task) throw new Error('no transaction in progress')
    if (conn.depth > 1) {
      conn.depth--
      const sp = `evlua_${conn.depth}`
      execSql(conn.db, commit ? `RELEASE ${sp}` : `ROLLBACK TO ${sp}; RELEASE ${sp}`)
      return true
    }
    try {
      if (conn.db.isTransaction) execSql(conn.db, commit ? 'COMMIT' : 'ROLLBACK')
    } catch (err) {
      // A failed COMMIT leaves the transaction open: the caller rolls back, which ends it.
      if (!commit) endTransaction(conn)
      throw err
    }
    endTransaction(conn)
    return true
  }

  const defaultPath = config.sqlite.path

  runtime.define({
    name: 'evsqlite',
    source: luaSource('evsqlite.lua'),
    chunkName: '[evlua] evsqlite.lua',
    functions: {
      open: (path?: unknown) => {
        let file: string
        if (path === undefined) file = defaultPath
        else if (isLuaString(path)) {
          file = toText(path)
          if (file !== ':memory:' && !file.startsWith('file:') && !isAbsolute(file)) file = resolve(dir, file)
        } else throw badArgument(1, 'open', 'string or nil', path)
        const conn = connect(file)
        conn.handles++
        const id = nextId++
        handles.set(id, { conn, lastId: 0, changes: 0, children: new Set() })
        // A shared connection's name, so that its handles share one statement cache in Lua too.
        return multi(id, conn.shared ? conn.key : false)
      },
      close: (id: number) => {
        const h = handles.get(id)
        if (!h) return true
        handles.delete(id)
        for (const child of h.children) {
          statements.delete(child)
          cursors.get(child)?.iter.return?.()
          cursors.delete(child)
        }
        h.conn.handles--
        disconnect(h.conn)
        return true
      },
      exec: function (this: CallContext | undefined, id: number, sql: unknown) {
        if (!isLuaString(sql)) throw badArgument(1, 'exec', 'string', sql)
        const h = handle(id, 'exec')
        return guarded(this, h, () => {
          execSql(h.conn.db, toText(sql))
          snapshot(h)
          return true
        })
      },
      /** The key of sql's cached statement, for run; `fresh`: Lua forgot the keys it had. */
      statement_key: (id: number, sql: unknown, fresh: boolean) => {
        if (!isLuaString(sql)) throw badArgument(1, 'query', 'string', sql)
        const { conn } = handle(id, 'query')
        if (fresh) conn.keys.clear()
        const entry = prepared(conn, toText(sql))
        conn.keys.set(entry.key, entry)
        return entry.key
      },
      run: function (this: CallContext | undefined, id: number, key: number, ...args: unknown[]) {
        const h = handle(id, 'query')
        const entry = h.conn.keys.get(key)
        if (!entry) throw new Error('statement is closed')
        const bound = params(args, 2, 'query')
        if (free(this, h)) return execute(h, entry, bound)
        return guarded(this, h, () => execute(h, entry, bound))
      },
      prepare: (id: number, sql: unknown) => {
        if (!isLuaString(sql)) throw badArgument(1, 'prepare', 'string', sql)
        const h = handle(id, 'prepare')
        const text = toText(sql)
        const sid = nextId++
        statements.set(sid, { handle: h, entry: describe(prepareSql(h.conn.db, text), text), last: [] })
        h.children.add(sid)
        return sid
      },
      execute: function (this: CallContext | undefined, sid: number, ...args: unknown[]) {
        const s = statements.get(sid)
        if (!s) throw new Error('statement is closed')
        const bound = params(args, 1, 'execute')
        s.last = bound
        if (free(this, s.handle)) return execute(s.handle, s.entry, bound)
        return guarded(this, s.handle, () => execute(s.handle, s.entry, bound))
      },
      finalize: (sid: number) => {
        statements.get(sid)?.handle.children.delete(sid)
        statements.delete(sid)
        return true
      },
      /**
       * Start iterating a statement's rows (stmt:rows) or an SQL text's (db:rows). `last`: with the
       * parameters of the statement's last execute; `arrays`: rows as lists in column order.
       */
      cursor: function (this: CallContext | undefined, sid: number, sql: unknown, last: boolean, arrays: boolean, ...args: unknown[]) {
        let h: Handle
        let stmt: StatementSync
        let bound: unknown[]
        let entry: CachedStatement | undefined
        let text = ''
        if (sql === undefined) {
          const s = statements.get(sid)
          if (!s) throw new Error('statement is closed')
          h = s.handle
          entry = s.entry
          stmt = entry.stmt
          bound = last ? s.last : params(args, 1, 'rows')
        } else {
          if (!isLuaString(sql)) throw badArgument(1, 'rows', 'string', sql)
          h = handle(sid, 'rows')
          bound = params(args, 2, 'rows')
          text = toText(sql)
          stmt = rowsStatement(h.conn, text)
        }
        stmt.setReadBigInts(true)
        return guarded(this, h, () => {
          const cid = nextId++
          cursors.set(cid, { handle: h, iter: stmt.iterate(...(bound as [])) as Iterator<unknown>, arrays, entry, text, stmt })
          h.children.add(cid)
          return cid
        })
      },
      next: function (this: CallContext | undefined, cid: number) {
        const c = cursors.get(cid)
        if (!c) return undefined
        return guarded(this, c.handle, () => {
          const r = c.iter.next()
          if (r.done) { endCursor(cid, c); return undefined }
          if (c.entry && Array.isArray(r.value)) {
            const values = r.value as unknown[]
            return c.arrays ? valuesToLua(values) : rowObject(columnNames(c.entry), values)
          }
          const row = rowToLua(r.value as Record<string, unknown>)
          return c.arrays ? Object.values(row) : row
        })
      },
      close_cursor: (cid: number) => {
        const c = cursors.get(cid)
        if (c) endCursor(cid, c)
        return true
      },
      begin,
      commit: function (this: CallContext | undefined, id: number) { return finish(this, id, true) },
      rollback: function (this: CallContext | undefined, id: number) { return finish(this, id, false) },
      last_id: (id: number) => {
        const v = handle(id, 'last_id').lastId
        return typeof v === 'bigint' && v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v
      },
      changes: (id: number) => {
        const v = handle(id, 'changes').changes
        return typeof v === 'bigint' ? Number(v) : v
      }
    }
  })

  // A fresh engine (the old one was corrupted) holds none of the old handles: forget them. The
  // connections stay; transactions of the old engine's tasks were rolled back as those tasks ended.
  let generation = runtime.generation
  runtime.onBoot((rt) => {
    if (rt.generation === generation) return
    generation = rt.generation
    for (const c of cursors.values()) c.iter.return?.()
    cursors.clear()
    statements.clear()
    for (const h of handles.values()) h.conn.handles--
    handles.clear()
    for (const conn of [...connections.values()]) disconnect(conn)
  })

  fastify.addHook('onClose', async () => {
    handles.clear()
    statements.clear()
    cursors.clear()
    for (const conn of connections.values()) {
      conn.cache.clear()
      try { conn.db.close() } catch {}
    }
    connections.clear()
  })
}

export default fp(sqlitePlugin, { name: 'evlua-sqlite', fastify: '5.x', dependencies: ['evlua-platform'] })
