import type { LuaEngine } from './engine.ts'
import { LuaPushable } from './values.ts'

/**
 * Bytes gathered in wasm memory chunk by chunk, as they arrive (while each chunk is still in the
 * CPU's cache, and without keeping the JS chunks), then made into ONE Lua string by
 * lua_pushlstring: two copies in all, where joining the chunks in JS and pushing the result made
 * three, with a fresh JS allocation of the whole size each time. A JS function hands it to Lua by
 * returning it (`engine.push` calls `pushLua`, which frees the buffer); one never pushed must be
 * freed, or its wasm memory is lost.
 */
export class WasmBytes extends LuaPushable {
  readonly #engine: LuaEngine
  readonly #hint: number
  #ptr = 0
  #capacity = 0
  #length = 0

  /** `hint`: the size it will probably reach (an upper bound is fine: untouched pages cost nothing). */
  constructor (engine: LuaEngine, hint = 0) {
    super()
    this.#engine = engine
    this.#hint = hint
  }

  get length (): number { return this.#length }

  append (chunk: Uint8Array): void {
    const n = chunk.byteLength
    const need = this.#length + n
    if (need > this.#capacity) this.#grow(need)
    // malloc/realloc may have grown the memory: take the view now
    this.#engine.bytes.heap().set(chunk, this.#ptr + this.#length)
    this.#length = need
  }

  /** Push the bytes onto L as one Lua string, and free the buffer. */
  pushLua (engine: LuaEngine, L: number): void {
    try {
      engine.mod._lua_pushlstring(L, this.#ptr, this.#length)
    } finally {
      this.free()
    }
  }

  free (): void {
    if (this.#ptr !== 0) this.#engine.mod._free(this.#ptr)
    this.#ptr = 0
    this.#capacity = 0
    this.#length = 0
  }

  #grow (need: number): void {
    const mod = this.#engine.mod
    // the hint first, then doubling (realloc copies what is there, unless it can grow in place)
    let size = Math.max(need, this.#ptr === 0 ? this.#hint : this.#capacity * 2)
    let ptr = mod._realloc(this.#ptr, size)
    if (ptr === 0 && size > need) ptr = mod._realloc(this.#ptr, size = need)
    if (ptr === 0) throw new Error('out of wasm memory gathering a string for Lua')
    this.#ptr = ptr
    this.#capacity = size
  }
}
