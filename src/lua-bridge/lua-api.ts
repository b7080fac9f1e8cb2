import { readFile } from 'node:fs/promises'
import { LuaFactory } from 'wasmoon'

/** Constants of Lua 5.4's C API. */
export const LUA_REGISTRYINDEX = -1001000
/** lua_upvalueindex(1): a C closure's first upvalue. */
export const LUA_UPVALUE1 = LUA_REGISTRYINDEX - 1
export const LUA_OK = 0
export const LUA_YIELD = 1
export const LUA_ERRRUN = 2
export const LUA_ERRSYNTAX = 3
export const LUA_ERRMEM = 4
export const LUA_MASKCOUNT = 8
export const LUA_MULTRET = -1

export const LUA_TNIL = 0
export const LUA_TBOOLEAN = 1
export const LUA_TLIGHTUSERDATA = 2
export const LUA_TNUMBER = 3
export const LUA_TSTRING = 4
export const LUA_TTABLE = 5
export const LUA_TFUNCTION = 6

const SMALL_INTEGERS = Array.from({ length: 1024 }, (_, i) => BigInt(i))

/**
 * n (a safe integer) as the bigint a lua_Integer parameter takes. Making a bigint costs ~25 ns, as
 * much as the call it is for: the small ones (ids, counts, indexes) are made once.
 */
export function luaInteger (n: number): bigint {
  return n >= 0 && n < 1024 ? SMALL_INTEGERS[n] : BigInt(n)
}

/**
 * The raw exports of the Lua build (luaBuildName), typed as we call them: pointers and sizes as numbers,
 * lua_Integer as bigint. We never use wasmoon's high-level API (PERFORMANCE.md: 5-10x slower).
 */
export type LuaBuild = 'native-eh' | 'wasmoon'

export interface LuaModule {
  /** Which Lua build this is (luaBuildName). */
  build: LuaBuild
  HEAPU8: Uint8Array
  HEAPU32: Uint32Array
  addFunction (fn: (...args: any[]) => any, signature: string): number
  removeFunction (ptr: number): void
  _malloc (size: number): number
  _free (ptr: number): void
  _realloc (ptr: number, size: number): number
  _luaL_newstate (): number
  _lua_newstate (alloc: number, ud: number): number
  _lua_close (L: number): void
  _luaL_openlibs (L: number): void
  _lua_newthread (L: number): number
  _lua_resetthread (L: number): number
  _lua_gettop (L: number): number
  _lua_settop (L: number, idx: number): void
  _lua_checkstack (L: number, n: number): number
  _lua_pushvalue (L: number, idx: number): void
  _lua_type (L: number, idx: number): number
  _lua_isinteger (L: number, idx: number): number
  _lua_tonumberx (L: number, idx: number, isnum: number): number
  _lua_tointegerx (L: number, idx: number, isnum: number): bigint
  _lua_toboolean (L: number, idx: number): number
  _lua_tolstring (L: number, idx: number, len: number): number
  _lua_touserdata (L: number, idx: number): number
  _lua_rawlen (L: number, idx: number): bigint
  _lua_topointer (L: number, idx: number): number
  _lua_pushnil (L: number): void
  _lua_pushnumber (L: number, n: number): void
  _lua_pushinteger (L: number, n: bigint): void
  _lua_pushlstring (L: number, s: number, len: number): number
  _lua_pushboolean (L: number, b: number): void
  _lua_pushlightuserdata (L: number, p: number): void
  _lua_pushcclosure (L: number, fn: number, n: number): void
  _lua_createtable (L: number, narr: number, nrec: number): void
  _lua_rawset (L: number, idx: number): void
  _lua_setmetatable (L: number, idx: number): number
  _lua_rawget (L: number, idx: number): number
  _lua_rawseti (L: number, idx: number, n: bigint): void
  _lua_rawgeti (L: number, idx: number, n: bigint): number
  _lua_next (L: number, idx: number): number
  _lua_resume (L: number, from: number, narg: number, nres: number): number
  _lua_status (L: number): number
  _lua_yieldk (L: number, nres: number, ctx: number, k: number): number
  _lua_isyieldable (L: number): number
  _lua_error (L: number): number
  _lua_pcallk (L: number, nargs: number, nres: number, errfunc: number, ctx: number, k: number): number
  _lua_sethook (L: number, fn: number, mask: number, count: number): void
  _luaL_ref (L: number, t: number): number
  _luaL_unref (L: number, t: number, ref: number): void
  _luaL_loadbufferx (L: number, buf: number, size: number, name: number, mode: number): number
  _luaL_traceback (L: number, L1: number, msg: number, level: number): void
  _luaL_where (L: number, level: number): void
  _lua_concat (L: number, n: number): void
  _lua_rotate (L: number, idx: number, n: number): void
  _lua_copy (L: number, from: number, to: number): void
  _luaL_tolstring (L: number, idx: number, len: number): number
  /** Our build only (src/lua-wasm/evlua_json.c). */
  _evlua_json?: (t: number) => number
  _evlua_json_out?: () => number
  /**
   * lua_yieldk that, called by a C function Lua code called at the coroutine's base level, yields
   * by returning (its value must be returned at once) instead of unwinding (src/lua-wasm,
   * yield-return.patch). Only in our build.
   */
  _evlua_yieldk?: (L: number, nres: number, ctx: number, k: number) => number
  /** How many yields evlua_yieldk made by returning (for tests). Only in our build. */
  _evlua_returnyields?: () => number
  /**
   * Our build: replaces the n values on top of the stack with a new table made from the template
   * at address template (kept alive by a registry ref; engine.refPointer): its keys in place, the
   * values under its first n listed keys, its metatable. Needs one free stack slot.
   */
  _evlua_newfrom?: (L: number, template: number, n: number) => void
}

let modulePromise: Promise<LuaModule> | undefined

/**
 * One wasm instance per process; Lua states (engines) are cheap on top of it. `fresh` makes a new
 * instance (7-8 ms, 16 MB): after a wasm-level failure the old one may have aborted for good.
 */
export function loadLuaModule (fresh = false): Promise<LuaModule> {
  if (fresh || !modulePromise) {
    const previous = modulePromise ?? Promise.resolve(undefined)
    modulePromise = previous.catch(() => undefined).then(instantiate)
  }
  return modulePromise
}

/**
 * Which Lua build the process runs: `native-eh` (default), our build of Lua with native wasm
 * exceptions (src/lua-wasm), or `wasmoon`, wasmoon's own build, where each yield and each Lua error
 * is a thrown JS exception caught by a JS trampoline (PERFORMANCE.md). Chosen with EVLUA_LUA_BUILD,
 * for comparing the two; both expose the same raw exports.
 */
export function luaBuildName (): LuaBuild {
  return process.env.EVLUA_LUA_BUILD === 'wasmoon' ? 'wasmoon' : 'native-eh'
}

async function instantiate (): Promise<LuaModule> {
  return luaBuildName() === 'wasmoon' ? instantiateWasmoon() : instantiateNative()
}

/**
 * The glue emscripten made (CommonJS: emscripten 3.1's ES module glue cannot find its wasm under
 * Node). The wasm bytes are handed over, so the glue never looks for the file itself.
 */
async function instantiateNative (): Promise<LuaModule> {
  const { default: create } = await import('../lua-wasm/lua.cjs')
  const wasmBinary = await readFile(new URL('../lua-wasm/lua.wasm', import.meta.url))
  const mod = await create({ wasmBinary })
  // Each `_name` is a glue function that looks its export up under a minified name on first call:
  // read the name from it, and call the export itself.
  const raw = Object.keys(mod).flatMap((key) => {
    const glue = mod[key]
    const name = key.startsWith('_') && typeof glue === 'function'
      ? /Module\["asm"\]\["(\w+)"\]/.exec(String(glue))?.[1]
      : undefined
    const fn = name === undefined ? undefined : mod.asm[name]
    return typeof fn === 'function' ? [[key, fn] as const] : []
  })
  return directExports('native-eh', raw, mod)
}

/**
 * wasmoon's module wraps every export in an assertion closure called through `apply` (4x the cost
 * of the call itself). We keep the module for its helpers (memory views, addFunction) and call the
 * wasm instance's exports directly; the instance is caught as wasmoon instantiates it.
 */
async function instantiateWasmoon (): Promise<LuaModule> {
  const original = WebAssembly.instantiate
  let instance: WebAssembly.Instance | undefined
  const capture = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
    const result = await (original as (...a: unknown[]) => Promise<unknown>).apply(this, args)
    instance = (result as { instance?: WebAssembly.Instance }).instance ?? result as WebAssembly.Instance
    return result
  }
  ;(WebAssembly as { instantiate: unknown }).instantiate = capture
  let mod: LuaModule
  try {
    mod = (await new LuaFactory().getLuaModule()).module as unknown as LuaModule
  } finally {
    ;(WebAssembly as { instantiate: unknown }).instantiate = original
  }
  const exports = instance?.exports
  if (!exports) return Object.assign(mod, { build: 'wasmoon' as const })
  const raw = Object.keys(mod).flatMap((key) => {
    const fn = key.startsWith('_') ? exports[key.slice(1)] : undefined
    return typeof fn === 'function' ? [[key, fn] as const] : []
  })
  return directExports('wasmoon', raw, mod)
}

function directExports (build: LuaBuild, raw: Array<readonly [string, unknown]>, mod: object): LuaModule {
  // Made in one piece (a spread), the object keeps fast properties: assigned one by one, 150
  // functions would leave it a dictionary, and every call would pay a hash lookup (~5 ns of ~9).
  const direct = { ...Object.fromEntries(raw), build }
  // The module's other members (memory views, addFunction) through the prototype.
  Object.setPrototypeOf(direct, mod)
  return direct as unknown as LuaModule
}
