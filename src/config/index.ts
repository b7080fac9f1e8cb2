export { loadConfig, type ConfigFlags, type LoadConfigOptions } from './load.ts'
export { checkAppDir } from './app-dir.ts'
export { defaultConfig, type EvluaConfig, type EvluaConfigInput } from './schema.ts'
export type {
  ServerConfig, LuaConfig, HttpConfig, HttpsConfig, PostgresConfig, RedisConfig, SqliteConfig, SmtpConfig,
  StaticConfig, LogConfig, LogLevel
} from './schema.ts'
export { parseSize } from './size.ts'
