import { LUA_NULL, LuaFunctionRef } from '../lua-bridge/values.ts'

/** A table returned as a response body that JSON cannot hold. */
export class JsonBodyError extends Error {}

const BYTES = Symbol('bytes that are not UTF-8')

/**
 * The JSON text of a table a handler returned, written as `json.encode` writes it, by the native
 * JSON.stringify (several times faster than encoding in Lua). Returns undefined when the table holds
 * strings that are not UTF-8: those are encoded by Lua's json.encode, which keeps the bytes exact.
 */
export function encodeTableBody (value: unknown): string | undefined {
  // The usual table (strings, finite numbers, booleans, nested tables) needs no replacer, which
  // would make JSON.stringify several times slower.
  if (isPlain(value, 0)) return JSON.stringify(value)
  let bytes = false
  const text = JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
    switch (typeof v) {
      case 'number':
        if (!Number.isFinite(v)) throw new JsonBodyError(`cannot encode ${luaNumber(v)} in JSON`)
        return v
      case 'bigint': return (JSON as unknown as { rawJSON: (s: string) => unknown }).rawJSON(v.toString())
      case 'symbol': return v === LUA_NULL ? null : undefined
      case 'object':
        if (v === null) return v
        if (v instanceof LuaFunctionRef) {
          v.release()
          throw new JsonBodyError('cannot encode a value of type function in JSON')
        }
        // JSON.stringify has already called Buffer's toJSON: look at the holder's own value.
        if (Buffer.isBuffer(this[key])) { bytes = true; return BYTES.description }
        return v
    }
    return v
  })
  return bytes ? undefined : text
}

/** Whether JSON.stringify alone writes value as json.encode would. */
function isPlain (value: unknown, depth: number): boolean {
  if (depth > 32) return false
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isPlainValue(value[i], depth)) return false
    return true
  }
  const o = value as Record<string, unknown>
  for (const k in o) if (!isPlainValue(o[k], depth)) return false
  return true
}

function isPlainValue (v: unknown, depth: number): boolean {
  switch (typeof v) {
    case 'string': case 'boolean': return true
    case 'number': return Number.isFinite(v)
    case 'object':
      if (v === null || Buffer.isBuffer(v) || v instanceof LuaFunctionRef) return false
      return isPlain(v, depth + 1)
  }
  return false
}

function luaNumber (n: number): string {
  if (Number.isNaN(n)) return n > 0 ? 'nan' : '-nan'
  return n > 0 ? 'inf' : '-inf'
}
