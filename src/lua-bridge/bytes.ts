import { isUtf8 } from 'node:buffer'
import type { LuaModule } from './lua-api.ts'
import { charCode } from './strings.ts'

const SCRATCH_SIZE = 64 * 1024

/**
 * Byte-exact strings between JS and Lua. wasmoon converts through C strings (NUL truncates,
 * non-UTF-8 is mangled); we copy bytes with explicit lengths through a scratch buffer instead.
 */
/** Strings up to this length are tried as ASCII first. */
const SHORT = 32

export class Bytes {
  readonly #mod: LuaModule
  #heap: Buffer
  #words: Uint32Array
  readonly #lenPtr: number
  readonly #scratch: number

  constructor (mod: LuaModule) {
    this.#mod = mod
    this.#lenPtr = mod._malloc(8)
    this.#scratch = mod._malloc(SCRATCH_SIZE)
    this.#heap = Buffer.from(mod.HEAPU8.buffer)
    this.#words = new Uint32Array(mod.HEAPU8.buffer)
  }

  /** The wasm memory as a Buffer; re-read after anything that may grow memory. */
  heap (): Buffer {
    // Growing wasm memory detaches the old ArrayBuffer: the view's length drops to 0. (The view's
    // length is read in ~1 ns; the buffer's byteLength, a wasm memory's, costs ~13.)
    if (this.#heap.length === 0) this.#heap = Buffer.from(this.#mod.HEAPU8.buffer)
    return this.#heap
  }

  /** The 32-bit word at ptr (4-aligned) of wasm memory: a lookup, where Buffer#readUInt32LE checks and combines bytes. */
  u32 (ptr: number): number {
    if (this.#words.length === 0) this.#words = new Uint32Array(this.#mod.HEAPU8.buffer)
    return this.#words[ptr >>> 2]
  }

  /** Push a JS string (as UTF-8) onto L. */
  pushString (L: number, s: string): void {
    const n = s.length
    if (n <= SHORT) {
      // Short ASCII (names, keys, small values): a plain copy beats Buffer#write's setup.
      const heap = this.heap()
      const p = this.#scratch
      let i = 0
      for (; i < n; i++) {
        const c = charCode(s, i)
        if (c > 0x7f) break
        heap[p + i] = c
      }
      if (i === n) {
        this.#mod._lua_pushlstring(L, p, n)
        return
      }
    }
    const max = n * 3
    if (max <= SCRATCH_SIZE) {
      const n = this.heap().write(s, this.#scratch, 'utf8')
      this.#mod._lua_pushlstring(L, this.#scratch, n)
      return
    }
    this.pushBytes(L, Buffer.from(s, 'utf8'))
  }

  /** Push raw bytes onto L. */
  pushBytes (L: number, b: Uint8Array): void {
    const n = b.byteLength
    if (n <= SCRATCH_SIZE) {
      this.heap().set(b, this.#scratch)
      this.#mod._lua_pushlstring(L, this.#scratch, n)
      return
    }
    const ptr = this.#mod._malloc(n)
    if (ptr === 0) throw new Error('out of wasm memory copying a string into Lua')
    try {
      this.heap().set(b, ptr)
      this.#mod._lua_pushlstring(L, ptr, n)
    } finally {
      this.#mod._free(ptr)
    }
  }

  /** The string at idx (which must be a string or number): a JS string if UTF-8, else a Buffer. */
  readString (L: number, idx: number): string | Buffer {
    const ptr = this.#mod._lua_tolstring(L, idx, this.#lenPtr)
    const heap = this.heap()
    return this.decode(heap, ptr, this.u32(this.#lenPtr))
  }

  /** The len bytes at ptr of heap: a JS string if UTF-8, else a Buffer (a copy). */
  decode (heap: Buffer, ptr: number, len: number): string | Buffer {
    if (len === 0) return ''
    // One pass for the usual case: decode, and only when a replacement character shows up look
    // closer (it is either in the text or stands for bytes that are not UTF-8).
    const text = heap.toString('utf8', ptr, ptr + len)
    if (!text.includes('\uFFFD')) return text
    const view = heap.subarray(ptr, ptr + len)
    return isUtf8(view) ? text : Buffer.from(view)
  }

  /** The exact bytes of the string at idx, copied. */
  readBytes (L: number, idx: number): Buffer {
    const ptr = this.#mod._lua_tolstring(L, idx, this.#lenPtr)
    const heap = this.heap()
    const len = this.u32(this.#lenPtr)
    return Buffer.from(heap.subarray(ptr, ptr + len))
  }

  /** Run fn with a NUL-terminated copy of s in wasm memory. */
  withCString<T> (s: string, fn: (ptr: number) => T): T {
    const b = Buffer.from(s + '\0', 'utf8')
    const ptr = this.#mod._malloc(b.length)
    try {
      this.heap().set(b, ptr)
      return fn(ptr)
    } finally {
      this.#mod._free(ptr)
    }
  }

  /** Read a NUL-terminated C string. */
  readCString (ptr: number): string {
    const heap = this.heap()
    const end = heap.indexOf(0, ptr)
    return heap.toString('utf8', ptr, end)
  }
}
