import { isDeepStrictEqual } from 'node:util'
import {
  LUA_ERRSYNTAX, LUA_OK, LUA_REGISTRYINDEX, LUA_TBOOLEAN, LUA_TFUNCTION, LUA_TLIGHTUSERDATA,
  LUA_TNIL, LUA_TNUMBER, LUA_TSTRING, LUA_TTABLE, LUA_UPVALUE1, loadLuaModule, type LuaModule, luaInteger
} from './lua-api.ts'
import { Bytes } from './bytes.ts'
import { TableBuilder, TableReader, UNSUPPORTED } from './table-reader.ts'
import { JsonWriter } from './json-writer.ts'
import { NativeJsonWriter } from './json-native.ts'
import {
  LUA_NULL, LuaArgumentError, LuaFunctionRef, LuaPushable, MultipleValues, type CallContext, type JsFunction
} from './values.ts'

/**
 * How the scheduler resumes a coroutine that waited on a JS promise: a tag, then the values. The
 * waiting call's continuation (#resumed) turns them into its results, `nil, err`, or an error.
 */
const TAG_OK = 1
const TAG_FAIL = 2
const TAG_RAISE = 3
/** Light userdata sentinels: NULL is platform.null; PENDING marks a wait for a JS promise. */
const NULL_POINTER = 0
const PENDING_POINTER = 1

const MAX_DEPTH = 64
/** How many recurring names (pushName) are kept as Lua strings in the registry. */
const MAX_NAMES = 4096

/** A table of every kind of value a JSON writer handles, to check one against JSON.stringify. */
const JSON_CHECK = `return { s = 'q"b\\\\n\\n\\1\\127é€', i = -42, big = math.maxinteger, f = 1.5, z = -0.0, t = true, no = false,
  list = { 1, 2.25, 'three', { k = 'v' } }, empty = {}, long = string.rep('x', 300) }`
/** Floats the C writer prints itself (it leaves the others to the JS writer). */
const JSON_FLOAT_CHECK = `return { 12.5, 0.3, 63.0, -2.75, 1e-6, 123456.789012, 0.1, 100.0, -0.5, 999999999999999.0,
  math.mininteger, -1 }`
/** Pushes the PENDING sentinel (only bootstrap.lua receives it). */
export const LUA_PENDING: unique symbol = Symbol('evlua.pending')

export interface EngineOptions {
  /** Start on a new wasm instance rather than the shared one. */
  freshModule?: boolean
  /** Cap on Lua's heap in bytes; 0 = no cap (and no allocation tracing cost). */
  memoryLimit?: number
}

export interface PendingCall {
  promise: PromiseLike<unknown>
}

/** A Lua error that came out of loading or running a chunk, with its message. */
export class LuaError extends Error {
  readonly luaTraceback: string | undefined
  constructor (message: string, traceback?: string) {
    super(message)
    this.luaTraceback = traceback
  }
}

let engineSerial = 0

/**
 * One Lua state on the shared wasm instance: value conversion both ways, the registry of JS
 * functions Lua can call, chunk loading. Knows nothing of coroutine scheduling or HTTP.
 */
export class LuaEngine {
  readonly mod: LuaModule
  readonly L: number
  /** Tells engines apart (a recycled engine is a new one) without holding on to one. */
  readonly serial = ++engineSerial
  readonly bytes: Bytes
  readonly memory = { used: 0, max: 0 }
  /**
   * The cap applies only while a task's Lua code runs: our own bookkeeping on the main state
   * (tracebacks, new threads) is unprotected, and an allocation failure there would abort.
   */
  capping = false
  /** The call that jscall left pending; the scheduler takes it when the coroutine yields. */
  pending: PendingCall | undefined
  /** Set by the scheduler while a task runs, so JS functions know their caller. */
  context: CallContext | undefined
  #functions: JsFunction[] = []
  #functionNames: string[] = []
  #pointers: number[] = []
  #closed = false
  #traced = false
  readonly #global: number
  /** A JS exception escaped through Lua: the state can no longer be trusted. */
  corrupted = false
  /** Reads tables from wasm memory (undefined if its check at start-up failed). */
  #tables: TableReader | undefined

  #json: JsonWriter | undefined
  #nativeJson: NativeJsonWriter | undefined
  #tostringRef: number | undefined
  readonly #names = new Map<string, number>()

  /** Whether table bodies are written as JSON from wasm memory (its check at start-up passed). */
  get writesJsonDirectly (): boolean { return this.#json !== undefined }
  /** Whether table bodies are written as JSON in C (our Lua build), checked like the JS writer. */
  get writesJsonNatively (): boolean { return this.#nativeJson !== undefined }

  /** Whether tables cross to JS by the table reader (its check at start-up passed) rather than the C API. */
  get readsTablesDirectly (): boolean { return this.#tables !== undefined }
  /** Registry refs as the bigints lua_rawgeti takes (the same few refs are pushed on every request). */
  #refKeys: bigint[] = []
  /** C function pointers of #call and #resumed (set once the fields holding them exist). */
  #callPtr = 0
  #resumedPtr = 0
  /** The yield of a waiting call: evlua_yieldk returns when it can, where lua_yieldk unwinds (an exception). */
  readonly #yieldk: (L: number, nres: number, ctx: number, k: number) => number

  static async create (options: EngineOptions = {}): Promise<LuaEngine> {
    return LuaEngine.#make(await loadLuaModule(options.freshModule), options)
  }

  private constructor (mod: LuaModule, options: EngineOptions, traced = false) {
    this.mod = mod
    this.#yieldk = mod._evlua_yieldk ?? mod._lua_yieldk
    this.bytes = new Bytes(mod)
    this.memory.max = options.memoryLimit ?? 0
    if (traced) {
      this.#traced = true
      const alloc = this.#pointer(mod.addFunction(this.#allocate.bind(this), 'iiiii'))
      this.L = mod._lua_newstate(alloc, 0)
    } else {
      this.L = mod._luaL_newstate()
    }
    if (!this.L) throw new Error('lua_newstate failed')
    mod._luaL_openlibs(this.L)
    // lua_State.l_G: where Lua keeps its byte counts (global_State.totalbytes + GCdebt).
    this.#global = this.bytes.heap().readUInt32LE(this.L + 16)
    this.#callPtr = this.#pointer(mod.addFunction(this.#call, 'ii'))
    this.#resumedPtr = this.#pointer(mod.addFunction(this.#resumed, 'iiii'))
  }

  /**
   * With a memory cap, Lua allocates through its own C allocator and the scheduler's hook compares
   * the bytes Lua holds with the cap: routing every allocation through JS (wasmoon's traced
   * allocator) doubles the cost of allocation-heavy Lua. The bytes are read from global_State,
   * checked here against collectgarbage('count'); if the layout ever differs, we trace instead.
   */
  static #make (mod: LuaModule, options: EngineOptions): LuaEngine {
    const engine = new LuaEngine(mod, options)
    engine.#tables = engine.#checkTableReader()
    if (engine.#tables) engine.#json = engine.#checkJsonWriter()
    engine.#nativeJson = engine.#checkNativeJson()
    if (!options.memoryLimit || engine.#countMatches()) return engine
    engine.close()
    return new LuaEngine(mod, options, true)
  }

  /**
   * The table reader, if it reads what the C API reads on tables of every shape (array and hash
   * parts, all key and value types it handles, long strings, big and negative integers, holes).
   */
  #checkTableReader (): TableReader | undefined {
    const L = this.L
    const reader = new TableReader(this.bytes)
    const source = `
      local sparse = { [1] = 'a', [3] = 'c', [2^53] = 'big' }
      local grown = {} for i = 1, 5 do grown[i] = i * 10 end
      local holes = { 1, 2, 3, nil, 5 } holes[2] = nil
      local deleted = { a = 1, b = 2, c = 3 } deleted.b = nil
      local many = {} for i = 1, 100 do many['k' .. i] = i end
      return { 1, 2.5, 'x', { 'nested', { deep = true } }, s = 'v', t = true, f = false,
        long = string.rep('long ', 20), bytes = '\\255\\0\\1', utf8 = 'é€',
        ints = { 2^53 - 1, -(2^53 - 1), math.tointeger(2^53), math.mininteger, math.maxinteger, -1, 0 },
        floats = { 0.5, -0.0, 1e300 }, [1.5] = 'float key', [-2] = 'negative key',
        sparse = sparse, grown = grown, holes = holes, deleted = deleted, many = many, empty = {} }`
    try {
      this.load(L, source, '=[evlua] table reader check')
      if (this.mod._lua_pcallk(L, 0, 1, 0, 0, 0) !== LUA_OK) return undefined
      const viaApi = this.#tableToJs(L, 1, 0)
      const direct = reader.read(this.mod._lua_topointer(L, 1))
      return isDeepStrictEqual(viaApi, direct) ? reader : undefined
    } catch {
      return undefined
    } finally {
      this.mod._lua_settop(L, 0)
    }
  }

  /** The JSON writer, if it writes what JSON.stringify writes for the same table. */
  #checkJsonWriter (): JsonWriter | undefined {
    const writer = new JsonWriter()
    return this.#writesAsJs(JSON_CHECK, (t) => writer.write(this.bytes.heap(), t)) ? writer : undefined
  }

  /** The C writer, if this build has it and it writes what JSON.stringify writes, floats included. */
  #checkNativeJson (): NativeJsonWriter | undefined {
    const { _evlua_json, _evlua_json_out } = this.mod
    if (!_evlua_json || !_evlua_json_out) return undefined
    const writer = new NativeJsonWriter({ _evlua_json, _evlua_json_out }, this.bytes)
    const write = (t: number): string | Buffer | typeof UNSUPPORTED => writer.write(t)
    return this.#writesAsJs(JSON_CHECK, write) && this.#writesAsJs(JSON_FLOAT_CHECK, write) ? writer : undefined
  }

  /** Whether write gives, for the table the Lua source returns, JSON.stringify's text of it. */
  #writesAsJs (source: string, write: (t: number) => string | Buffer | typeof UNSUPPORTED): boolean {
    const L = this.L
    try {
      this.load(L, source, '=[evlua] json writer check')
      if (this.mod._lua_pcallk(L, 0, 1, 0, 0, 0) !== LUA_OK) return false
      const written = write(this.mod._lua_topointer(L, 1))
      const expected = JSON.stringify(this.toJs(L, 1), (_k, v) => typeof v === 'bigint' ? (JSON as unknown as { rawJSON: (s: string) => unknown }).rawJSON(v.toString()) : v)
      return written === expected
    } catch {
      return false
    } finally {
      this.mod._lua_settop(L, 0)
    }
  }

  /**
   * The table at idx as JSON text written from wasm memory (a Buffer only when its bytes are not
   * UTF-8); undefined when the slow path must do it.
   */
  tableJson (L: number, idx: number): string | Buffer | undefined {
    const t = this.mod._lua_topointer(L, idx)
    if (this.#nativeJson) {
      const out = this.#nativeJson.write(t)
      if (out !== UNSUPPORTED) return out
    }
    if (!this.#json) return undefined
    const out = this.#json.write(this.bytes.heap(), t)
    return out === UNSUPPORTED ? undefined : out
  }

  #countMatches (): boolean {
    const L = this.L
    try {
      this.load(L, "return collectgarbage('count') * 1024", '=[evlua] memory check')
      if (this.mod._lua_pcallk(L, 0, 1, 0, 0, 0) !== LUA_OK) return false
      const counted = Number(this.toJs(L, -1))
      return Math.abs(counted - this.memoryUsed()) < 4096
    } finally {
      this.mod._lua_settop(L, 0)
    }
  }

  /** Bytes Lua holds now, garbage not yet collected included. */
  memoryUsed (): number {
    if (this.#traced) return this.memory.used
    const heap = this.bytes.heap()
    return heap.readInt32LE(this.#global + 8) + heap.readInt32LE(this.#global + 12)
  }

  /** Whether the cap is enforced by the allocator itself (else the scheduler's hook watches it). */
  get tracedAllocations (): boolean { return this.#traced }

  /** A full garbage collection on the main state (no task may be running). */
  collectGarbage (): void {
    const L = this.L
    this.load(L, "collectgarbage('collect')", '=[evlua] gc')
    this.mod._lua_pcallk(L, 0, 0, 0, 0, 0)
    this.mod._lua_settop(L, 0)
  }

  #allocate (_ud: number, ptr: number, oldSize: number, newSize: number): number {
    const stats = this.memory
    if (newSize === 0) {
      if (ptr) {
        stats.used -= oldSize
        this.mod._free(ptr)
      }
      return 0
    }
    const delta = ptr ? newSize - oldSize : newSize
    if (delta > 0 && this.capping && stats.used + delta > stats.max) return 0
    const out = this.mod._realloc(ptr, newSize)
    if (out) stats.used += delta
    return out
  }

  #pointer (p: number): number {
    this.#pointers.push(p)
    return p
  }

  /** Register a JS function; Lua reaches it by the returned id through jscall. */
  registerFunction (name: string, fn: JsFunction): number {
    this.#functions.push(fn)
    this.#functionNames.push(name)
    return this.#functions.length - 1
  }

  /** A C function pointer (for lua_pushcclosure) that calls fn with the raw state. */
  makeCFunction (fn: (L: number) => number): number {
    return this.#pointer(this.mod.addFunction(fn, 'ii'))
  }

  makeHook (fn: (L: number, ar: number) => void): number {
    return this.#pointer(this.mod.addFunction(fn, 'vii'))
  }

  /**
   * The C function Lua calls to reach JS function `id` (bootstrap's `wrap(id)`): a C closure over
   * the id, so a call crosses no Lua frame of ours (the coroutine's stack stays small).
   */
  readonly jsfunction = (L: number): number => {
    const mod = this.mod
    const id = mod._lua_tonumberx(L, 1, 0)
    mod._lua_settop(L, 0)
    mod._lua_pushnumber(L, id)
    mod._lua_pushcclosure(L, this.#callPtr, 1)
    return 1
  }

  /** Calls the JS function of the closure's id: returns its values, `nil, err`, or raises. */
  readonly #call = (L: number): number => {
    const mod = this.mod
    const fn = this.#functions[mod._lua_tonumberx(L, LUA_UPVALUE1, 0)]
    const n = mod._lua_gettop(L)
    const args = new Array(n)
    try {
      for (let i = 1; i <= n; i++) args[i - 1] = this.toJs(L, i)
    } catch (err) {
      rethrowLongjmp(err)
      mod._lua_settop(L, 0)
      return this.#fail(L, err)
    }
    mod._lua_settop(L, 0)
    let result: unknown
    try {
      result = fn.apply(this.context as CallContext, args)
    } catch (err) {
      return this.#fail(L, err)
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      const promise = result as PromiseLike<unknown>
      if (!mod._lua_isyieldable(L)) {
        // Lua raises its own error (yield across a C-call boundary, or outside a coroutine); the
        // promise goes on unheard.
        Promise.resolve(promise).catch(() => {})
        return mod._lua_yieldk(L, 0, 0, 0)
      }
      this.pending = { promise }
      mod._lua_pushlightuserdata(L, PENDING_POINTER)
      // Yields PENDING up to the scheduler; #resumed takes over when the task is resumed.
      return this.#yieldk(L, 1, 0, this.#resumedPtr)
    }
    try {
      return this.#pushValues(L, result)
    } catch (err) {
      rethrowLongjmp(err)
      mod._lua_settop(L, 0)
      return this.#fail(L, err)
    }
  }

  /** A waiting call's continuation: the stack holds what the scheduler resumed with (tag, values). */
  readonly #resumed = (L: number): number => {
    const mod = this.mod
    const n = mod._lua_gettop(L)
    const tag = mod._lua_tonumberx(L, 1, 0)
    if (tag === TAG_OK) return n - 1
    if (tag === TAG_FAIL) {
      mod._lua_pushnil(L)
      mod._lua_copy(L, -1, 1)
      mod._lua_settop(L, -2)
      return 2
    }
    return this.#raise(L)
  }

  /** Push a JS function's result as Lua values; returns how many. */
  #pushValues (L: number, result: unknown): number {
    if (result instanceof MultipleValues) {
      this.checkStack(L, result.values.length)
      for (const v of result.values) this.push(L, v)
      return result.values.length
    }
    if (result === undefined) return 0
    this.push(L, result)
    return 1
  }

  /** A JS function failed: `nil, message`, or a Lua error for a bad argument (LuaArgumentError). */
  #fail (L: number, err: unknown): number {
    this.bytes.pushString(L, errorMessage(err))
    if (err instanceof LuaArgumentError) return this.#raise(L)
    this.mod._lua_pushnil(L)
    this.mod._lua_rotate(L, -2, 1)
    return 2
  }

  /** Raise the message on top of the stack, at the position of the Lua code that made the call. */
  #raise (L: number): number {
    const mod = this.mod
    mod._luaL_where(L, 1)
    mod._lua_rotate(L, -2, 1)
    mod._lua_concat(L, 2)
    return mod._lua_error(L)
  }

  /** Push `OK, values...` (to resume a waiting call with); returns the number pushed. */
  pushResult (L: number, result: unknown): number {
    try {
      this.mod._lua_pushinteger(L, luaInteger(TAG_OK))
      if (result instanceof MultipleValues) {
        this.checkStack(L, result.values.length)
        for (const v of result.values) this.push(L, v)
        return 1 + result.values.length
      }
      if (result === undefined) return 1
      this.push(L, result)
      return 2
    } catch (err) {
      rethrowLongjmp(err)
      this.mod._lua_settop(L, 0)
      return this.pushFailure(L, err)
    }
  }

  /** Push `FAIL, message` (→ nil, err in Lua) or `RAISE, message` (→ an error), to resume a waiting call with. */
  pushFailure (L: number, err: unknown): number {
    this.mod._lua_pushinteger(L, luaInteger(err instanceof LuaArgumentError ? TAG_RAISE : TAG_FAIL))
    this.bytes.pushString(L, errorMessage(err))
    return 2
  }

  /** Push a JS value onto L as described in values.ts. */
  push (L: number, v: unknown, depth = 0): void {
    const mod = this.mod
    switch (typeof v) {
      case 'string': this.bytes.pushString(L, v); return
      case 'number':
        if (Number.isSafeInteger(v)) mod._lua_pushinteger(L, luaInteger(v))
        else mod._lua_pushnumber(L, v)
        return
      case 'boolean': mod._lua_pushboolean(L, v ? 1 : 0); return
      case 'bigint': mod._lua_pushinteger(L, BigInt.asIntN(64, v)); return
      case 'undefined': mod._lua_pushnil(L); return
      case 'symbol':
        if (v === LUA_NULL) mod._lua_pushlightuserdata(L, NULL_POINTER)
        else if (v === LUA_PENDING) mod._lua_pushlightuserdata(L, PENDING_POINTER)
        else mod._lua_pushnil(L)
        return
      case 'function': mod._lua_pushnil(L); return
    }
    if (v === null) { mod._lua_pushnil(L); return }
    if (v instanceof LuaPushable) { v.pushLua(this, L); return }
    if (v instanceof Uint8Array) { this.bytes.pushBytes(L, v); return }
    if (v instanceof LuaFunctionRef) { this.pushRef(L, v.ref); return }
    if (v instanceof Date) { this.bytes.pushString(L, v.toISOString()); return }
    if (depth > MAX_DEPTH) throw new Error('value too deeply nested for Lua')
    // The table, a key and a value: each level of nesting needs room of its own.
    this.checkStack(L, 3)
    if (Array.isArray(v)) {
      mod._lua_createtable(L, v.length, 0)
      for (let i = 0; i < v.length; i++) {
        this.push(L, v[i] === undefined ? LUA_NULL : v[i], depth + 1)
        mod._lua_rawseti(L, -2, luaInteger(i + 1))
      }
      return
    }
    if (v instanceof Map) {
      mod._lua_createtable(L, 0, v.size)
      for (const [k, val] of v) {
        this.push(L, k, depth + 1)
        this.push(L, val, depth + 1)
        mod._lua_rawset(L, -3)
      }
      return
    }
    const keys = Object.keys(v as object)
    mod._lua_createtable(L, 0, keys.length)
    for (const k of keys) {
      const val = (v as Record<string, unknown>)[k]
      if (val === undefined) continue
      this.bytes.pushString(L, k)
      this.push(L, val, depth + 1)
      mod._lua_rawset(L, -3)
    }
  }

  /**
   * Make room for n more values on L's stack. The API does not check (a C function is only sure of
   * 20 slots): pushing past the end would overwrite the heap.
   */
  checkStack (L: number, n: number): void {
    if (!this.mod._lua_checkstack(L, n)) throw new Error('Lua stack overflow (value too large or too deeply nested)')
  }

  /** The Lua value at idx as JS (see values.ts). */
  toJs (L: number, idx: number, depth = 0): any {
    const mod = this.mod
    switch (mod._lua_type(L, idx)) {
      case LUA_TNIL: return undefined
      case LUA_TBOOLEAN: return mod._lua_toboolean(L, idx) !== 0
      case LUA_TNUMBER: {
        const n = mod._lua_tonumberx(L, idx, 0)
        // An integer beyond 2^53 comes as a bigint; read as a float it would lose its low bits.
        if (!Number.isSafeInteger(n) && mod._lua_isinteger(L, idx)) return mod._lua_tointegerx(L, idx, 0)
        return n
      }
      case LUA_TSTRING: return this.bytes.readString(L, idx)
      case LUA_TLIGHTUSERDATA: return mod._lua_touserdata(L, idx) === NULL_POINTER ? LUA_NULL : undefined
      case LUA_TTABLE: {
        if (this.#tables) {
          const v = this.#tables.read(mod._lua_topointer(L, idx), depth)
          if (v !== UNSUPPORTED) return v
        }
        return this.#tableToJs(L, idx, depth)
      }
      case LUA_TFUNCTION: {
        this.checkStack(L, 1)
        mod._lua_pushvalue(L, idx)
        return new LuaFunctionRef(mod._luaL_ref(L, LUA_REGISTRYINDEX), this.unref)
      }
      default: return undefined
    }
  }

  #tableToJs (L: number, idx: number, depth: number): unknown {
    if (depth > MAX_DEPTH) throw new Error('table too deeply nested (or cyclic) to pass to JS')
    const mod = this.mod
    const abs = idx < 0 ? mod._lua_gettop(L) + idx + 1 : idx
    this.checkStack(L, 3)
    const out = new TableBuilder()
    mod._lua_pushnil(L)
    while (mod._lua_next(L, abs) !== 0) {
      const keyType = mod._lua_type(L, -2)
      if (keyType === LUA_TSTRING || keyType === LUA_TNUMBER) {
        const key = keyType === LUA_TSTRING ? this.bytes.readString(L, -2) : this.toJs(L, -2)
        out.add(key, this.toJs(L, -1, depth + 1), keyType === LUA_TSTRING)
      }
      mod._lua_settop(L, -2)
    }
    return out.finish()
  }

  readonly unref = (ref: number): void => {
    if (!this.#closed) this.mod._luaL_unref(this.L, LUA_REGISTRYINDEX, ref)
  }

  /** Pop the top of L into the registry; returns the ref. */
  ref (L: number): number {
    return this.mod._luaL_ref(L, LUA_REGISTRYINDEX)
  }

  /** The address of the value at registry ref (lua_topointer: a table's stays put while the ref holds it). */
  refPointer (ref: number): number {
    this.pushRef(this.L, ref)
    const p = this.mod._lua_topointer(this.L, -1)
    this.mod._lua_settop(this.L, -2)
    return p
  }

  pushRef (L: number, ref: number): void {
    this.mod._lua_rawgeti(L, LUA_REGISTRYINDEX, this.#refKeys[ref] ??= BigInt(ref))
  }

  /**
   * Push a string that recurs from request to request (a column name, a header name): the Lua
   * string is made once and kept in the registry, and later pushes fetch it (no copy, no hashing).
   * Up to MAX_NAMES names; later ones are pushed as plain strings.
   */
  pushName (L: number, s: string): void {
    const ref = this.#names.get(s) ?? (this.#names.size < MAX_NAMES ? this.nameRef(s) : undefined)
    if (ref !== undefined) this.pushRef(L, ref)
    else this.bytes.pushString(L, s)
  }

  /** The registry ref of a recurring string (as pushName keeps it), made now if need be (past MAX_NAMES too). */
  nameRef (s: string): number {
    let ref = this.#names.get(s)
    if (ref === undefined) {
      this.bytes.pushString(this.L, s)
      ref = this.ref(this.L)
      this.#names.set(s, ref)
    }
    return ref
  }

  /** Compile source onto L's stack as a function; throws LuaError naming chunk and line. */
  load (L: number, source: string | Uint8Array, chunkName: string): void {
    const buf = typeof source === 'string' ? Buffer.from(source, 'utf8') : source
    const mod = this.mod
    const ptr = mod._malloc(buf.byteLength + 1)
    let status: number
    try {
      this.bytes.heap().set(buf, ptr)
      status = this.bytes.withCString(chunkName, (name) =>
        this.bytes.withCString('t', (mode) => mod._luaL_loadbufferx(L, ptr, buf.byteLength, name, mode)))
    } finally {
      mod._free(ptr)
    }
    if (status !== LUA_OK) {
      const msg = String(this.toJs(L, -1))
      mod._lua_settop(L, -2)
      throw new LuaError(status === LUA_ERRSYNTAX ? msg : `cannot load ${chunkName}: ${msg}`)
    }
  }

  /** Load and call a chunk on the main state (no yields); returns its first result as a registry ref. */
  runMain (source: string, chunkName: string, args: unknown[] = []): number {
    const L = this.L
    const mod = this.mod
    this.load(L, source, chunkName)
    for (const a of args) this.push(L, a)
    const status = mod._lua_pcallk(L, args.length, 1, 0, 0, 0)
    if (status !== LUA_OK) {
      const msg = String(this.toJs(L, -1))
      mod._lua_settop(L, 0)
      throw new LuaError(msg)
    }
    return this.ref(L)
  }

  /**
   * The value at idx as Lua's tostring() makes it (a __tostring that fails throws its error). The
   * call is protected: an error there must not unwind through JS.
   */
  toText (L: number, idx: number): string | Buffer {
    const mod = this.mod
    if (mod._lua_type(L, idx) === LUA_TBOOLEAN) return mod._lua_toboolean(L, idx) !== 0 ? 'true' : 'false'
    const abs = idx < 0 ? mod._lua_gettop(L) + idx + 1 : idx
    this.#tostringRef ??= this.runMain('return tostring', '=[evlua] tostring')
    this.checkStack(L, 2)
    this.pushRef(L, this.#tostringRef)
    mod._lua_pushvalue(L, abs)
    const status = mod._lua_pcallk(L, 1, 1, 0, 0, 0)
    const out = status === LUA_OK ? this.bytes.readString(L, -1) : String(this.toJs(L, -1))
    mod._lua_settop(L, -2)
    if (status !== LUA_OK) throw new LuaError(out as string)
    return out
  }

  /** Traceback of thread T (used after T raised an error), without the message line. */
  traceback (T: number): string {
    const mod = this.mod
    mod._luaL_traceback(this.L, T, 0, 0)
    const s = String(this.toJs(this.L, -1))
    mod._lua_settop(this.L, 0)
    return s
  }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.mod._lua_close(this.L)
    for (const p of this.#pointers) this.mod.removeFunction(p)
  }

  get closed (): boolean { return this.#closed }
}

const WasmException = (WebAssembly as unknown as { Exception?: abstract new (...args: never[]) => unknown }).Exception

/**
 * Lua's longjmp (an error raised in Lua, e.g. by a push that makes a NaN table key) passes through
 * our JS frames on its way to the coroutine's resume: never swallow it. In our build it is a wasm
 * exception; in wasmoon's, a thrown number.
 */
export function rethrowLongjmp (err: unknown): void {
  if (typeof err === 'number' || (WasmException !== undefined && err instanceof WasmException)) throw err
}

export function errorMessage (err: unknown): string {
  if (err instanceof Error) return err.message || err.name
  if (typeof err === 'string') return err
  return String(err)
}
