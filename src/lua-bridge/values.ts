/**
 * The values that cross between Lua and JS, and the conventions a JS function exposed to Lua follows.
 *
 * Lua → JS: nil → undefined, boolean, integer → number (bigint beyond 2^53), float → number,
 * string → string when it is valid UTF-8, else Buffer (so `toBytes(v)` always gives the exact bytes),
 * table → array (keys 1..n) or plain object, function → LuaFunctionRef, platform.null → LUA_NULL.
 *
 * JS → Lua: undefined/null → nil, LUA_NULL → platform.null, boolean, number (integers become Lua
 * integers), bigint, string (UTF-8), Uint8Array/Buffer (raw bytes), array → sequence, object → table,
 * LuaFunctionRef → the function, `multi(a, b, ...)` → several return values.
 */
import type { LuaEngine } from './engine.ts'

/** The JSON null / SQL NULL sentinel (`platform.null`, `json.null`). */
export const LUA_NULL: unique symbol = Symbol.for('evlua.null')
export type LuaNull = typeof LUA_NULL

/**
 * A value that pushes itself onto a Lua stack (query rows, prefetched request fields, bytes
 * gathered in wasm memory): engine.push hands it the engine and the thread.
 */
export abstract class LuaPushable {
  abstract pushLua (engine: LuaEngine, L: number): void
}

/**
 * A task's arguments that push themselves (a request's table, handler and body kind), in place of
 * an array of values: pushArgs returns how many it pushed. A thread starts with LUA_MINSTACK free
 * slots; more must be checked for.
 */
export abstract class LuaArguments {
  abstract pushArgs (engine: LuaEngine, L: number): number
}

/** Several return values for Lua: `return multi(rows, count)`. */
export class MultipleValues {
  readonly values: unknown[]
  constructor (values: unknown[]) { this.values = values }
}
export function multi (...values: unknown[]): MultipleValues { return new MultipleValues(values) }

/**
 * Thrown by a JS function to raise a Lua error at the caller (misuse: a wrong argument type).
 * Any other thrown error (or rejected promise) reaches Lua as `nil, message`.
 */
export class LuaArgumentError extends Error {}

/** Raise `bad argument #n to 'fn' (x expected, got y)` in Lua. */
export function badArgument (n: number, fn: string, expected: string, got: unknown): LuaArgumentError {
  return new LuaArgumentError(`bad argument #${n} to '${fn}' (${expected} expected, got ${luaTypeName(got)})`)
}

export function luaTypeName (v: unknown): string {
  if (v === undefined || v === null) return 'nil'
  if (v === LUA_NULL) return 'userdata'
  if (typeof v === 'string' || Buffer.isBuffer(v)) return 'string'
  if (typeof v === 'number' || typeof v === 'bigint') return 'number'
  if (typeof v === 'boolean') return 'boolean'
  if (v instanceof LuaFunctionRef) return 'function'
  return 'table'
}

/** A Lua function held from JS (anchored in the Lua registry until `release()`). */
export class LuaFunctionRef {
  readonly ref: number
  #release: (ref: number) => void
  #released = false
  constructor (ref: number, release: (ref: number) => void) {
    this.ref = ref
    this.#release = release
  }

  release (): void {
    if (this.#released) return
    this.#released = true
    this.#release(this.ref)
  }
}

/** The exact bytes of a value that came from Lua as a string. */
export function toBytes (v: string | Uint8Array): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}

/** A string argument from Lua as a JS string (bytes that are not UTF-8 read as latin1). */
export function toText (v: string | Uint8Array): string {
  return typeof v === 'string' ? v : toBytes(v).toString('latin1')
}

/** Whether a value from Lua is a Lua string. */
export function isLuaString (v: unknown): v is string | Buffer {
  return typeof v === 'string' || Buffer.isBuffer(v)
}

/**
 * A JS function callable from Lua. It receives the Lua arguments converted as above and the
 * calling context. It may return a value, `multi(...)`, or a promise of either; while the promise is
 * pending only the calling coroutine waits. A thrown error or a rejection becomes `nil, message`
 * in Lua; a thrown LuaArgumentError is raised in Lua as `error(message, 2)`.
 */
export type JsFunction = (this: CallContext, ...args: any[]) => unknown

/** What a JS function knows about the Lua task that called it. */
export interface CallContext {
  /** The task (request, spawned function, script) that made the call. */
  readonly task: TaskHandle
}

/** A running Lua task, as plugins see it. */
export interface TaskHandle {
  readonly id: number
  /** Per-task data plugins may keep (e.g. the HTTP exchange, connections to release). */
  readonly locals: Map<unknown, unknown>
  /** Called once when the task ends, however it ends (return, error, timeout). */
  onEnd (fn: () => void | Promise<void>): void
}
