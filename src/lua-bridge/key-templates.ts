import type { LuaEngine } from './engine.ts'
import { LUA_REGISTRYINDEX } from './lua-api.ts'

/** At most this many key lists are kept per cache: a route whose queries vary more uses the generic push. */
const MAX_SHAPES = 4
/** Longer key lists are pushed the generic way (a template is kept for as long as the engine). */
const MAX_KEYS = 16

/**
 * A template for evlua_newfrom (src/lua-wasm/evlua_table.c), made on the engine's main state and
 * kept in its registry: its keys listed in order in its array part and in place in its hash part,
 * with the metatable at metatableRef (0: none) and, when extraKeyRef is given, the value at that
 * registry ref as one more key, listed last (the header views' private source key). Returns its ref.
 */
export function makeKeyTemplate (engine: LuaEngine, keys: readonly string[], metatableRef = 0, extraKeyRef = 0): number {
  const { mod, L } = engine
  engine.checkStack(L, 4)
  const n = keys.length + (extraKeyRef ? 1 : 0)
  mod._lua_createtable(L, n, n)
  for (let i = 0; i < keys.length; i++) {
    engine.bytes.pushString(L, keys[i])
    mod._lua_pushvalue(L, -1)
    mod._lua_rawseti(L, -3, BigInt(i + 1))
    mod._lua_pushboolean(L, 1)
    mod._lua_rawset(L, -3)
  }
  if (extraKeyRef) {
    engine.pushRef(L, extraKeyRef)
    mod._lua_pushvalue(L, -1)
    mod._lua_rawseti(L, -3, BigInt(keys.length + 1))
    mod._lua_pushboolean(L, 1)
    mod._lua_rawset(L, -3)
  }
  if (metatableRef) {
    engine.pushRef(L, metatableRef)
    mod._lua_setmetatable(L, -2)
  }
  return mod._luaL_ref(L, LUA_REGISTRYINDEX)
}

/** One key list and its template on one engine (made when first pushed). */
export class KeyShape {
  readonly keys: readonly string[]
  #engine = 0
  #address = 0
  constructor (keys: readonly string[]) { this.keys = keys }

  /** The template's address on this engine, for evlua_newfrom (a recycled engine gets a new one). */
  template (engine: LuaEngine): number {
    if (this.#engine !== engine.serial) {
      this.#address = engine.refPointer(makeKeyTemplate(engine, this.keys))
      this.#engine = engine.serial
    }
    return this.#address
  }
}

/**
 * The key lists a record (path parameters, a query) has come with, each with its template: a
 * record whose keys are one of them, in the same order, becomes a Lua table by pushing its values
 * and one call (the keys in place: no insertion, no key pushed). Most requests to a route send
 * the same keys; up to MAX_SHAPES lists are kept.
 */
export class KeyShapes {
  readonly #shapes: KeyShape[] = []

  /** The shape of record's keys (in order), kept from now on if there is room; undefined if not kept. */
  of (record: Record<string, unknown>): KeyShape | undefined {
    const shapes = this.#shapes
    next: for (let s = 0; s < shapes.length; s++) {
      const keys = shapes[s].keys
      let i = 0
      for (const k in record) {
        if (i === keys.length || keys[i] !== k) continue next
        i++
      }
      if (i === keys.length) return shapes[s]
    }
    if (shapes.length === MAX_SHAPES) return undefined
    const keys = Object.keys(record)
    if (keys.length > MAX_KEYS) return undefined
    const shape = new KeyShape(keys)
    shapes.push(shape)
    return shape
  }
}
