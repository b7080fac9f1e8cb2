import type { LuaEngine } from '../lua-bridge/engine.ts'
import { charCode } from '../lua-bridge/strings.ts'
import { LuaPushable } from '../lua-bridge/values.ts'

/** At most this many header names per route are fetched with its requests. */
const MAX_HEADER_NAMES = 8

/**
 * What a route's handler has been seen to read through the lazy request fields (`path`,
 * `get_params`, `headers_value[name]`): from then on each of its requests brings those values along when it
 * starts, instead of the handler calling into JS for each one (a call costs more than the push).
 * The handler sees the same values either way.
 */
export class RouteReads {
  getParams = false
  path = false
  readonly headerNames: string[] = []

  /** Its handler read headers_value[name] (name in lowercase). */
  readHeader (name: string): void {
    const names = this.headerNames
    if (names.length < MAX_HEADER_NAMES && !names.includes(name)) names.push(name)
  }
}

/**
 * The headers_value entries of the names a route reads, as the view table's first entries: a Lua
 * table with the view's metatable, and room for the view's private key too (so adding it does not
 * resize the table). A value is the header's text, or false when it was sent more than once; an
 * absent header is left out (the view asks JS when it is read, and gets nil).
 */
export class HeaderValues extends LuaPushable {
  readonly #names: readonly string[]
  readonly #raw: readonly string[]
  readonly #metatable: number

  /**
   * names: what the route reads (looked up when pushed, which start() does at once); metatable:
   * the registry ref of the view's metatable.
   */
  constructor (names: readonly string[], rawHeaders: readonly string[], metatable: number) {
    super()
    this.#names = names
    this.#raw = rawHeaders
    this.#metatable = metatable
  }

  pushLua (engine: LuaEngine, L: number): void {
    const { mod, bytes } = engine
    const names = this.#names
    engine.checkStack(L, 3)
    mod._lua_createtable(L, 0, names.length + 1)
    for (let i = 0; i < names.length; i++) {
      const v = headerValue(this.#raw, names[i])
      if (v === undefined) continue
      engine.pushName(L, names[i])
      if (v === false) mod._lua_pushboolean(L, 0)
      else bytes.pushString(L, v)
      mod._lua_rawset(L, -3)
    }
    engine.pushRef(L, this.#metatable)
    mod._lua_setmetatable(L, -2)
  }
}

/** headers_value's answer for one header: its value when sent once, false when repeated, undefined when absent. */
export function headerValue (raw: readonly string[], name: string): string | false | undefined {
  let out: string | false | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (sameName(raw[i], name)) {
      if (out !== undefined) return false
      out = raw[i + 1]
    }
  }
  return out
}

/** Whether a header name as sent is `lower` (a lowercase name), ignoring ASCII case, without a lowercased copy. */
export function sameName (sent: string, lower: string): boolean {
  const n = sent.length
  if (n !== lower.length) return false
  for (let i = 0; i < n; i++) {
    let c = charCode(sent, i)
    if (c >= 0x41 && c <= 0x5a) c += 0x20
    if (c !== charCode(lower, i)) return false
  }
  return true
}
