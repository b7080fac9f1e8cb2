import type { Bytes } from './bytes.ts'
import { LUA_NULL } from './values.ts'

/**
 * Reads a Lua table straight from wasm memory, the way `lua_next` walks it (array part, then hash
 * nodes), without a call into wasm per key and value: a four-field table crosses in a fraction of
 * the time. It knows Lua 5.4's Table, Node and TString layouts for this (32-bit) build; the engine
 * checks it against the C API once at start-up and does without it if the two disagree. A table
 * holding anything but strings, numbers, booleans, platform.null and tables is left to the C API.
 */
export const UNSUPPORTED: unique symbol = Symbol('a value the table reader leaves to the C API')

const MAX_DEPTH = 64

// Type tags (lobject.h), with the collectable bit where Lua sets it in a TValue.
const VNIL = 0x00
const VEMPTY = 0x10
const VABSTKEY = 0x20
const VFALSE = 0x01
const VTRUE = 0x11
const VNUMINT = 0x03
const VNUMFLT = 0x13
const VSHRSTR = 0x44
const VLNGSTR = 0x54
const VTABLE = 0x45
const VLIGHTUSERDATA = 0x02

// Struct offsets (wasm32): Table, Node (24 bytes), TValue (16 bytes), TString.
const T_FLAGS = 6
const T_LSIZENODE = 7
const T_ALIMIT = 8
const T_ARRAY = 12
const T_NODE = 16
const NODE_SIZE = 24
const N_TT = 8
const N_KEY_TT = 9
const N_KEY_VAL = 16
const TVALUE_SIZE = 16
const TV_TT = 8
const S_SHRLEN = 7
const S_LNGLEN = 12
const S_CONTENTS = 16
const BITRAS = 0x80

export class TableReader {
  readonly #bytes: Bytes
  constructor (bytes: Bytes) {
    this.#bytes = bytes
  }

  /** The table at address t as JS (as engine.toJs makes it), or UNSUPPORTED. */
  read (t: number, depth = 0): unknown {
    if (depth > MAX_DEPTH) throw new Error('table too deeply nested (or cyclic) to pass to JS')
    const heap = this.#bytes.heap()
    const out = new TableBuilder()
    // the array part: keys 1..size
    const array = heap.readUInt32LE(t + T_ARRAY)
    const size = arraySize(heap.readUInt8(t + T_FLAGS), heap.readUInt32LE(t + T_ALIMIT))
    for (let i = 0; i < size; i++) {
      const v = array + i * TVALUE_SIZE
      const tt = heap.readUInt8(v + TV_TT)
      if (tt === VNIL || tt === VEMPTY || tt === VABSTKEY) continue
      const value = this.#value(heap, tt, v, depth)
      if (value === UNSUPPORTED) return UNSUPPORTED
      out.add(i + 1, value, false)
    }
    // the hash part
    const node = heap.readUInt32LE(t + T_NODE)
    const count = 1 << heap.readUInt8(t + T_LSIZENODE)
    for (let i = 0; i < count; i++) {
      const n = node + i * NODE_SIZE
      const tt = heap.readUInt8(n + N_TT)
      if (tt === VNIL || tt === VEMPTY || tt === VABSTKEY) continue
      const ktt = heap.readUInt8(n + N_KEY_TT)
      let key: unknown
      if (ktt === VSHRSTR || ktt === VLNGSTR) key = this.#string(heap, heap.readUInt32LE(n + N_KEY_VAL), ktt)
      else if (ktt === VNUMINT) key = integer(heap, n + N_KEY_VAL)
      else if (ktt === VNUMFLT) key = heap.readDoubleLE(n + N_KEY_VAL)
      else continue // keys of other types are left out, as toJs does
      const value = this.#value(heap, tt, n, depth)
      if (value === UNSUPPORTED) return UNSUPPORTED
      out.add(key, value, ktt === VSHRSTR || ktt === VLNGSTR)
    }
    return out.finish()
  }

  /** The value of the TValue (or node) at v, whose tag is tt. */
  #value (heap: Buffer, tt: number, v: number, depth: number): unknown {
    switch (tt) {
      case VFALSE: return false
      case VTRUE: return true
      case VNUMINT: return integer(heap, v)
      case VNUMFLT: return heap.readDoubleLE(v)
      case VSHRSTR: case VLNGSTR: return this.#string(heap, heap.readUInt32LE(v), tt)
      case VTABLE: return this.read(heap.readUInt32LE(v), depth + 1)
      case VLIGHTUSERDATA: return heap.readUInt32LE(v) === 0 ? LUA_NULL : UNSUPPORTED
    }
    return UNSUPPORTED
  }

  #string (heap: Buffer, s: number, tt: number): string | Buffer {
    const len = tt === VSHRSTR ? heap.readUInt8(s + S_SHRLEN) : heap.readUInt32LE(s + S_LNGLEN)
    const start = s + S_CONTENTS
    return this.#bytes.decode(heap, start, len)
  }
}

/**
 * A Lua table as JS, built key by key in lua_next's order: an object while every key is a string
 * (most tables); once a number key shows up, keys and values are kept in order, to make a list if
 * the keys are exactly 1..n.
 */
export class TableBuilder {
  readonly #obj: Record<string, unknown> = {}
  #keys: unknown[] | undefined
  #values: unknown[] | undefined

  add (key: unknown, value: unknown, isString: boolean): void {
    if (this.#keys === undefined && isString) {
      this.#obj[String(key)] = value
      return
    }
    if (this.#keys === undefined) {
      const obj = this.#obj
      this.#keys = Object.keys(obj)
      this.#values = this.#keys.map((k) => obj[k as string])
    }
    this.#keys.push(key)
    this.#values!.push(value)
  }

  finish (): unknown {
    const keys = this.#keys
    if (keys === undefined) return this.#obj
    const values = this.#values!
    const n = keys.length
    if (keys.every((k) => typeof k === 'number' && Number.isInteger(k) && k >= 1 && k <= n)) {
      const list = new Array(n)
      for (let i = 0; i < n; i++) list[(keys[i] as number) - 1] = values[i]
      return list
    }
    const out: Record<string, unknown> = {}
    for (let i = 0; i < n; i++) out[String(keys[i])] = values[i]
    return out
  }
}

/** What json-writer.ts needs of the layouts above. */
export const tableLayout = {
  T_FLAGS, T_LSIZENODE, T_ALIMIT, T_ARRAY, T_NODE, NODE_SIZE, N_TT, N_KEY_TT, N_KEY_VAL, TVALUE_SIZE, TV_TT,
  S_CONTENTS, VFALSE, VTRUE, VNUMINT, VNUMFLT, VSHRSTR, VLNGSTR, VTABLE, VLIGHTUSERDATA,
  isEmpty: (tt: number): boolean => tt === VNIL || tt === VEMPTY || tt === VABSTKEY,
  stringLength: (heap: Buffer, s: number, tt: number): number => tt === VSHRSTR ? heap.readUInt8(s + S_SHRLEN) : heap.readUInt32LE(s + S_LNGLEN),
  arraySize: (flags: number, alimit: number): number => arraySize(flags, alimit),
  integer: (heap: Buffer, p: number): number | bigint => integer(heap, p)
}

/** The array part's size (luaH_realasize): alimit, unless it is only a hint (then the next power of 2). */
function arraySize (flags: number, alimit: number): number {
  if ((flags & BITRAS) === 0 || (alimit & (alimit - 1)) === 0) return alimit
  let size = 1
  while (size < alimit) size *= 2
  return size
}

/** A lua_Integer: a number when exact, else a bigint (as toJs does). */
function integer (heap: Buffer, p: number): number | bigint {
  const lo = heap.readUInt32LE(p)
  const hi = heap.readInt32LE(p + 4)
  // within ±2^53 (and not -2^53 itself, which toJs gives as a bigint)
  if (hi >= -0x200000 && hi < 0x200000 && !(hi === -0x200000 && lo === 0)) return hi * 0x100000000 + lo
  return heap.readBigInt64LE(p)
}
