import type { LuaEngine } from './engine.ts'
import { luaInteger } from './lua-api.ts'
import { LUA_NULL, LuaPushable } from './values.ts'

/**
 * Query results for Lua: a list of tables keyed by column name, made from the column names and
 * one array of values per row (SQL NULL → platform.null). Cheaper than pushing objects: no key is
 * looked up on the JS side, and with several rows each name becomes a Lua string once, not once
 * per row.
 */
export class LuaRows extends LuaPushable {
  readonly names: readonly string[]
  readonly rows: ReadonlyArray<readonly unknown[]>
  constructor (names: readonly string[], rows: ReadonlyArray<readonly unknown[]>) {
    super()
    this.names = names
    this.rows = rows
  }

  pushLua (engine: LuaEngine, L: number): void {
    const { mod } = engine
    const { names, rows } = this
    // The list, the names above it, then a row, a key and a value.
    engine.checkStack(L, names.length + 4)
    mod._lua_createtable(L, rows.length, 0)
    if (rows.length === 1) {
      pushRow(engine, L, names, rows[0], 0)
      mod._lua_rawseti(L, -2, 1n)
      return
    }
    const list = mod._lua_gettop(L)
    for (const name of names) engine.pushName(L, name)
    for (let r = 0; r < rows.length; r++) {
      pushRow(engine, L, names, rows[r], list)
      mod._lua_rawseti(L, list, luaInteger(r + 1))
    }
    mod._lua_settop(L, list)
  }
}

/** One row as a table; its keys pushed from `names`, or copied from the stack just above `keys`. */
function pushRow (engine: LuaEngine, L: number, names: readonly string[], row: readonly unknown[], keys: number): void {
  const { mod } = engine
  const n = names.length
  mod._lua_createtable(L, 0, n)
  for (let c = 0; c < n; c++) {
    if (keys === 0) engine.pushName(L, names[c])
    else mod._lua_pushvalue(L, keys + 1 + c)
    pushValue(engine, L, row[c])
    mod._lua_rawset(L, -3)
  }
}

/** Text and integers, most of what SQLite returns, directly; the rest as engine.push does. */
function pushValue (engine: LuaEngine, L: number, v: unknown): void {
  if (typeof v === 'string') engine.bytes.pushString(L, v)
  else if (typeof v === 'number' && Number.isSafeInteger(v)) engine.mod._lua_pushinteger(L, luaInteger(v))
  else engine.push(L, v === null ? LUA_NULL : v)
}
