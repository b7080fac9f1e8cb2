import type { Bytes } from './bytes.ts'
import { jsonText } from './json-writer.ts'
import type { LuaModule } from './lua-api.ts'
import { UNSUPPORTED } from './table-reader.ts'

/**
 * A table body as JSON text written in C (src/lua-wasm/evlua_json.c, in our Lua build only): the
 * same text as JsonWriter, at about a third of its cost. It gives up (UNSUPPORTED) on the few
 * values it leaves to JsonWriter (floats JS prints in another form, among them).
 */
export class NativeJsonWriter {
  readonly #encode: (t: number) => number
  readonly #bytes: Bytes
  /** Where the C side keeps { char *buf; uint32_t high }. */
  readonly #out: number

  constructor (mod: Required<Pick<LuaModule, '_evlua_json' | '_evlua_json_out'>>, bytes: Bytes) {
    this.#encode = mod._evlua_json
    this.#bytes = bytes
    this.#out = mod._evlua_json_out()
  }

  /** The JSON text of the table at address t, or UNSUPPORTED. */
  write (t: number): string | Buffer | typeof UNSUPPORTED {
    const n = this.#encode(t)
    if (n < 0) return UNSUPPORTED
    const bytes = this.#bytes
    return jsonText(bytes.heap(), bytes.u32(this.#out), n, bytes.u32(this.#out + 4))
  }
}
