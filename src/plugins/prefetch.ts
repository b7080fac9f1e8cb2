import type { LuaEngine } from '../lua-bridge/engine.ts'
import { KeyShapes, makeKeyTemplate } from '../lua-bridge/key-templates.ts'
import { charCode } from '../lua-bridge/strings.ts'

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
  /** The key lists its path parameters and queries come with (their tables are made from templates). */
  readonly paramKeys = new KeyShapes()
  readonly queryKeys = new KeyShapes()
  /** The headers_value template for the names read so far: on which engine, for how many names. */
  #viewTemplate = { engine: 0, names: 0, ref: 0, address: 0 }

  /** Its handler read headers_value[name] (name in lowercase). */
  readHeader (name: string): void {
    const names = this.headerNames
    if (names.length < MAX_HEADER_NAMES && !names.includes(name)) names.push(name)
  }

  /**
   * The address of a headers_value view's template on this engine (for evlua_newfrom): the names
   * read so far and the view's private source key, in place and listed; the view's metatable.
   */
  viewTemplate (engine: LuaEngine, refs: ViewRefs): number {
    const t = this.#viewTemplate
    if (t.engine !== engine.serial || t.names !== this.headerNames.length) {
      if (t.engine === engine.serial) engine.unref(t.ref)
      t.ref = makeKeyTemplate(engine, this.headerNames, refs.valueViewMt, refs.source)
      t.engine = engine.serial
      t.names = this.headerNames.length
      t.address = engine.refPointer(t.ref)
    }
    return t.address
  }
}

/** Registry refs of request.lua's: the headers_value views' metatable, and their private source key. */
export interface ViewRefs { readonly valueViewMt: number, readonly source: number }

/**
 * Push the headers_value view of the request at stack index source, with the entries of the names
 * its route reads: a value is the header's text, or false when it was sent more than once; an
 * absent header is left empty (the view asks JS when it is read, and gets nil). Made from the
 * route's view template (the names and the view's private source key, its metatable); on
 * wasmoon's build, key by key.
 */
export function pushHeaderView (engine: LuaEngine, L: number, reads: RouteReads, rawHeaders: readonly string[], refs: ViewRefs, source: number): void {
  const { mod, bytes } = engine
  const names = reads.headerNames
  if (mod._evlua_newfrom) {
    engine.checkStack(L, names.length + 2)
    for (let i = 0; i < names.length; i++) {
      const v = headerValue(rawHeaders, names[i])
      if (v === undefined) mod._lua_pushnil(L)
      else if (v === false) mod._lua_pushboolean(L, 0)
      else bytes.pushString(L, v)
    }
    mod._lua_pushvalue(L, source)
    mod._evlua_newfrom(L, reads.viewTemplate(engine, refs), names.length + 1)
    return
  }
  engine.checkStack(L, 3)
  mod._lua_createtable(L, 0, names.length + 1)
  for (let i = 0; i < names.length; i++) {
    const v = headerValue(rawHeaders, names[i])
    if (v === undefined) continue
    engine.pushName(L, names[i])
    if (v === false) mod._lua_pushboolean(L, 0)
    else bytes.pushString(L, v)
    mod._lua_rawset(L, -3)
  }
  engine.pushRef(L, refs.source)
  mod._lua_pushvalue(L, source)
  mod._lua_rawset(L, -3)
  engine.pushRef(L, refs.valueViewMt)
  mod._lua_setmetatable(L, -2)
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
