import { isUtf8 } from 'node:buffer'
import { UNSUPPORTED, tableLayout as L } from './table-reader.ts'
import { charCode } from './strings.ts'

/**
 * A Lua table written as JSON text straight from wasm memory into bytes: no JS value for each key
 * and string, no intermediate object, no JSON.stringify. It writes what JSON.stringify would
 * write for the same table as engine.toJs gives it (strings escaped the same way, their bytes copied
 * as they are), and leaves to that slower path (UNSUPPORTED) what it does not handle the same way
 * for sure: lists with entries outside the array part, keys that are numbers or look like array
 * indexes, floats that are not finite, values other than strings, numbers, booleans,
 * platform.null and such tables.
 */
const MAX_DEPTH = 64
const START = 4096
const KEEP = 64 * 1024
const ESCAPES: Record<number, string> = { 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0c: '\\f', 0x0d: '\\r', 0x22: '\\"', 0x5c: '\\\\' }

/**
 * JSON text written as bytes at [start, start + len) of buf, as a JS value: a string when the
 * bytes are UTF-8 (latin1 is the quick way for ASCII, whose bytes are its characters), else a copy
 * of the exact bytes. high: the OR of the bytes, or any value with bit 7 set when unknown.
 */
export function jsonText (buf: Buffer, start: number, len: number, high: number): string | Buffer {
  if ((high & 0x80) === 0) return buf.toString('latin1', start, start + len)
  const bytes = buf.subarray(start, start + len)
  return isUtf8(bytes) ? bytes.toString('utf8') : Buffer.from(bytes)
}

export class JsonWriter {
  #out = Buffer.allocUnsafe(START)
  #len = 0
  /** The OR of the string bytes copied as they are: bit 7 set when the text is not all ASCII. */
  #high = 0

  /**
   * The JSON text of the table at address t: a string when its bytes are UTF-8 (nearly always), a
   * Buffer of the exact bytes when a Lua string in it is not; or UNSUPPORTED.
   *
   * A string, not a Buffer, because Node sends a string body and the response head in one write,
   * while a Buffer body goes out through writev: measured over HTTP on the json scenario, 47 → 35 µs
   * of server CPU per request (the client is woken up fewer times per response).
   */
  write (heap: Buffer, t: number): string | Buffer | typeof UNSUPPORTED {
    this.#len = 0
    this.#high = 0
    const out = this.#table(heap, t, 0) ? this.#text() : UNSUPPORTED
    // one big body must not keep a big scratch buffer for good
    if (this.#out.length > KEEP) this.#out = Buffer.allocUnsafe(START)
    return out
  }

  #text (): string | Buffer {
    return jsonText(this.#out, 0, this.#len, this.#high)
  }

  #table (heap: Buffer, t: number, depth: number): boolean {
    if (depth > MAX_DEPTH) return false
    const array = heap.readUInt32LE(t + L.T_ARRAY)
    const size = L.arraySize(heap.readUInt8(t + L.T_FLAGS), heap.readUInt32LE(t + L.T_ALIMIT))
    const node = heap.readUInt32LE(t + L.T_NODE)
    const count = 1 << heap.readUInt8(t + L.T_LSIZENODE)
    // A list: entries 1..n in the array part, nothing after them, an empty hash part.
    let n = 0
    while (n < size && !L.isEmpty(heap.readUInt8(array + n * L.TVALUE_SIZE + L.TV_TT))) n++
    for (let i = n; i < size; i++) if (!L.isEmpty(heap.readUInt8(array + i * L.TVALUE_SIZE + L.TV_TT))) return false
    let hashed = 0
    for (let i = 0; i < count; i++) if (!L.isEmpty(heap.readUInt8(node + i * L.NODE_SIZE + L.N_TT))) hashed++
    if (n > 0) {
      if (hashed > 0) return false
      this.#byte(0x5b)
      for (let i = 0; i < n; i++) {
        if (i > 0) this.#byte(0x2c)
        const v = array + i * L.TVALUE_SIZE
        if (!this.#value(heap, heap.readUInt8(v + L.TV_TT), v, depth)) return false
      }
      this.#byte(0x5d)
      return true
    }
    this.#byte(0x7b)
    let first = true
    for (let i = 0; i < count; i++) {
      const nd = node + i * L.NODE_SIZE
      const tt = heap.readUInt8(nd + L.N_TT)
      if (L.isEmpty(tt)) continue
      const ktt = heap.readUInt8(nd + L.N_KEY_TT)
      if (ktt !== L.VSHRSTR && ktt !== L.VLNGSTR) return false
      const key = heap.readUInt32LE(nd + L.N_KEY_VAL)
      const klen = L.stringLength(heap, key, ktt)
      // a key JS would move to the front of an object ("1", "42"): leave it to the slow path
      if (klen > 0 && heap[key + L.S_CONTENTS] >= 0x30 && heap[key + L.S_CONTENTS] <= 0x39) return false
      if (!first) this.#byte(0x2c)
      first = false
      this.#string(heap, key + L.S_CONTENTS, klen)
      this.#byte(0x3a)
      if (!this.#value(heap, tt, nd, depth)) return false
    }
    this.#byte(0x7d)
    return true
  }

  #value (heap: Buffer, tt: number, v: number, depth: number): boolean {
    switch (tt) {
      case L.VFALSE: this.#ascii('false'); return true
      case L.VTRUE: this.#ascii('true'); return true
      case L.VNUMINT: this.#ascii(String(L.integer(heap, v))); return true
      case L.VNUMFLT: {
        const x = heap.readDoubleLE(v)
        if (!Number.isFinite(x)) return false
        this.#ascii(String(x))
        return true
      }
      case L.VSHRSTR: case L.VLNGSTR: {
        const s = heap.readUInt32LE(v)
        this.#string(heap, s + L.S_CONTENTS, L.stringLength(heap, s, tt))
        return true
      }
      case L.VTABLE: return this.#table(heap, heap.readUInt32LE(v), depth + 1)
      case L.VLIGHTUSERDATA:
        if (heap.readUInt32LE(v) !== 0) return false
        this.#ascii('null')
        return true
    }
    return false
  }

  /** A JSON string of the len bytes at p: escapes as JSON.stringify writes them, other bytes as they are. */
  #string (heap: Buffer, p: number, len: number): void {
    this.#room(len * 6 + 2)
    const out = this.#out
    let o = this.#len
    let high = 0
    out[o++] = 0x22
    for (let i = p, end = p + len; i < end; i++) {
      const b = heap[i]
      if (b >= 0x20 && b !== 0x22 && b !== 0x5c) { out[o++] = b; high |= b; continue }
      const e = ESCAPES[b] ?? '\\u00' + b.toString(16).padStart(2, '0')
      for (let j = 0; j < e.length; j++) out[o++] = charCode(e, j)
    }
    out[o++] = 0x22
    this.#len = o
    this.#high |= high
  }

  #ascii (s: string): void {
    this.#room(s.length)
    for (let i = 0; i < s.length; i++) this.#out[this.#len++] = charCode(s, i)
  }

  #byte (b: number): void {
    this.#room(1)
    this.#out[this.#len++] = b
  }

  #room (n: number): void {
    if (this.#len + n <= this.#out.length) return
    const bigger = Buffer.allocUnsafe(Math.max(this.#out.length * 2, this.#len + n))
    this.#out.copy(bigger, 0, 0, this.#len)
    this.#out = bigger
  }
}
