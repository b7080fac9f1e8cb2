/** The configuration's shape: types, defaults and what each key accepts. Documented in docs/config.md. */

export interface ServerConfig {
  port: number
  host: string
  workers: number
  watch: boolean
}

export interface LuaConfig {
  cpu_timeout_ms: number
  request_timeout_ms: number
  /** 0 means no cap. */
  memory_limit_mb: number
  /** Lua instructions between two CPU-budget checks. */
  hook_interval: number
}

export interface HttpConfig {
  /** Bytes. Files may also say "16mb" or "512kb"; loadConfig turns that into bytes. */
  body_limit: number
  header_size_limit: number
  connection_timeout_ms: number
  keep_alive_timeout_ms: number
  request_timeout_ms: number
}

export interface HttpsConfig {
  /** Absolute path of the PEM private key once loaded, or null. */
  key: string | null
  /** Absolute path of the PEM certificate once loaded, or null. */
  cert: string | null
}

export interface PostgresConfig { url: string | null, pool_max: number }
export interface RedisConfig { url: string | null }
/** `path` is absolute once loaded (`:memory:` and `file:` URIs are kept as they are). */
export interface SqliteConfig { path: string }
export interface SmtpConfig { url: string | null, from: string | null }
/** `dir` is absolute once loaded. */
export interface StaticConfig { dir: string }
export interface LogConfig { level: LogLevel }

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/** The resolved configuration of an application. */
export interface EvluaConfig {
  server: ServerConfig
  lua: LuaConfig
  http: HttpConfig
  https: HttpsConfig
  postgres: PostgresConfig
  redis: RedisConfig
  sqlite: SqliteConfig
  smtp: SmtpConfig
  static: StaticConfig
  log: LogConfig
}

/** What a config file or the plugin's `config` option may hold: any subset, sizes also as strings. */
export type EvluaConfigInput = {
  [S in keyof EvluaConfig]?: {
    [K in keyof EvluaConfig[S]]?: EvluaConfig[S][K] | (K extends 'body_limit' ? string : never)
  }
}

export type LeafSpec =
  | { type: 'integer', min: number, max?: number }
  | { type: 'size', min: number }
  | { type: 'boolean' }
  | { type: 'string', nullable: boolean, oneOf?: readonly string[] }

type Schema = { [S in keyof EvluaConfig]: { [K in keyof EvluaConfig[S]]: LeafSpec } }

const int = (min: number, max?: number): LeafSpec => ({ type: 'integer', min, max })
const str: LeafSpec = { type: 'string', nullable: false }
const strOrNull: LeafSpec = { type: 'string', nullable: true }
const bool: LeafSpec = { type: 'boolean' }

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export const schema: Schema = {
  server: { port: int(0, 65535), host: str, workers: int(1), watch: bool },
  lua: { cpu_timeout_ms: int(1), request_timeout_ms: int(1), memory_limit_mb: int(0), hook_interval: int(1) },
  http: {
    body_limit: { type: 'size', min: 1 },
    header_size_limit: int(1),
    connection_timeout_ms: int(0),
    keep_alive_timeout_ms: int(0),
    request_timeout_ms: int(0)
  },
  https: { key: strOrNull, cert: strOrNull },
  postgres: { url: strOrNull, pool_max: int(1) },
  redis: { url: strOrNull },
  sqlite: { path: str },
  smtp: { url: strOrNull, from: strOrNull },
  static: { dir: str },
  log: { level: { type: 'string', nullable: false, oneOf: LOG_LEVELS } }
}

function deepFreeze<T extends object> (value: T): Readonly<T> {
  for (const v of Object.values(value)) if (typeof v === 'object' && v !== null) deepFreeze(v)
  return Object.freeze(value)
}

/** The built-in defaults (relative paths are resolved against the application directory). */
export const defaultConfig: Readonly<EvluaConfig> = deepFreeze({
  server: { port: 8080, host: '127.0.0.1', workers: 1, watch: false },
  lua: { cpu_timeout_ms: 5000, request_timeout_ms: 30000, memory_limit_mb: 256, hook_interval: 10000 },
  http: {
    body_limit: 16 * 1024 * 1024,
    header_size_limit: 16384,
    connection_timeout_ms: 0,
    keep_alive_timeout_ms: 72000,
    request_timeout_ms: 0
  },
  https: { key: null, cert: null },
  postgres: { url: null, pool_max: 10 },
  redis: { url: null },
  sqlite: { path: 'data/app.sqlite' },
  smtp: { url: null, from: null },
  static: { dir: 'public' },
  log: { level: 'info' }
})
