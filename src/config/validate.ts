import { EVLUA_ERR_CONFIG_TYPE, EVLUA_ERR_CONFIG_UNKNOWN_KEY } from '../errors.ts'
import { schema, type EvluaConfigInput, type LeafSpec } from './schema.ts'
import { parseSize } from './size.ts'
import { nearestKey } from './suggest.ts'

/** Where a layer of configuration came from, as said in error messages. */
export interface ConfigSource {
  /** Completes "unknown config key "x" …": `in config/default.json`, `from environment variable PORT`. */
  where: string
  /** Values are text to parse (environment variables, command-line flags). */
  text: boolean
}

type Section = Record<string, LeafSpec>
const sections = schema as unknown as Record<string, Section>
const knownKeys: string[] = Object.entries(sections)
  .flatMap(([name, leaves]) => [name, ...Object.keys(leaves).map((leaf) => `${name}.${leaf}`)])

const has = (obj: object, key: string): boolean => Object.hasOwn(obj, key)

export function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function describe (value: unknown): string {
  if (value === undefined) return 'undefined'
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

function unknownKey (path: string, siblings: string[], source: ConfigSource): Error {
  const near = nearestKey(path, knownKeys)
  const hint = near !== undefined
    ? `did you mean "${near}"?`
    : `the known keys here are ${siblings.join(', ')} (see docs/config.md)`
  return new EVLUA_ERR_CONFIG_UNKNOWN_KEY(path, source.where, hint)
}

function expected (spec: LeafSpec): string {
  switch (spec.type) {
    case 'integer':
      return spec.max !== undefined ? `an integer from ${spec.min} to ${spec.max}` : `an integer of at least ${spec.min}`
    case 'size': return `a number of bytes (at least ${spec.min}) or a size such as "16mb"`
    case 'boolean': return 'true or false'
    case 'string':
      if (spec.oneOf !== undefined) return `one of ${spec.oneOf.map((v) => `"${v}"`).join(', ')}`
      return spec.nullable ? 'a non-empty string or null' : 'a non-empty string'
  }
}

function fromText (spec: LeafSpec, text: string): unknown {
  const t = text.trim()
  if (spec.type === 'integer' && /^-?\d+$/.test(t)) return Number(t)
  if (spec.type === 'boolean') {
    if (['true', '1', 'yes'].includes(t.toLowerCase())) return true
    if (['false', '0', 'no'].includes(t.toLowerCase())) return false
  }
  return text
}

/** The value as the config holds it, or undefined when it does not fit the spec. */
function coerce (spec: LeafSpec, value: unknown): unknown {
  switch (spec.type) {
    case 'integer':
      return Number.isSafeInteger(value) && (value as number) >= spec.min &&
        (spec.max === undefined || (value as number) <= spec.max)
        ? value
        : undefined
    case 'size': {
      const n = typeof value === 'string' ? parseSize(value) : value
      return Number.isSafeInteger(n) && (n as number) >= spec.min ? n : undefined
    }
    case 'boolean': return typeof value === 'boolean' ? value : undefined
    case 'string':
      if (value === null) return spec.nullable ? null : undefined
      if (typeof value !== 'string' || value === '') return undefined
      return spec.oneOf === undefined || spec.oneOf.includes(value) ? value : undefined
  }
}

/**
 * Check one layer of configuration (a file, the plugin option, one environment variable or flag) and
 * return it normalized: sizes in bytes, text from the environment or flags parsed.
 * Throws on the first unknown key or wrong type, naming the key and the source.
 */
export function validateLayer (input: unknown, source: ConfigSource): EvluaConfigInput {
  if (!isPlainObject(input)) throw new EVLUA_ERR_CONFIG_TYPE('(top level)', source.where, 'an object', describe(input))
  const out: Record<string, Record<string, unknown>> = {}
  for (const [name, value] of Object.entries(input)) {
    if (!has(sections, name)) throw unknownKey(name, Object.keys(sections), source)
    const section = sections[name]
    if (!isPlainObject(value)) throw new EVLUA_ERR_CONFIG_TYPE(name, source.where, 'an object', describe(value))
    out[name] = {}
    for (const [leaf, raw] of Object.entries(value)) {
      const path = `${name}.${leaf}`
      if (!has(section, leaf)) throw unknownKey(path, Object.keys(section).map((k) => `${name}.${k}`), source)
      const spec = section[leaf]
      const parsed = source.text && typeof raw === 'string' ? fromText(spec, raw) : raw
      const result = coerce(spec, parsed)
      if (result === undefined) throw new EVLUA_ERR_CONFIG_TYPE(path, source.where, expected(spec), describe(raw))
      out[name][leaf] = result
    }
  }
  return out as EvluaConfigInput
}
