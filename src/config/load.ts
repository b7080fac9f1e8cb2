import { readFile } from 'node:fs/promises'
import { isAbsolute, join, resolve } from 'node:path'
import { EVLUA_ERR_CONFIG_FILE, EVLUA_ERR_CONFIG_HTTPS } from '../errors.ts'
import { defaultConfig, type EvluaConfig, type EvluaConfigInput } from './schema.ts'
import { validateLayer, type ConfigSource } from './validate.ts'

/** Command-line flags that set config keys; text is parsed like environment variables. */
export interface ConfigFlags {
  port?: number | string
  host?: string
  workers?: number | string
  watch?: boolean
}

export interface LoadConfigOptions {
  /** The application directory (holds routes/, lib/, config/, public/). */
  dir: string
  env?: Record<string, string | undefined>
  flags?: ConfigFlags
  /** The plugin's `config` option: merged over the config/ files, under environment and flags. */
  overrides?: EvluaConfigInput | Record<string, unknown>
}

const ENV_KEYS: Record<string, [string, string]> = {
  PORT: ['server', 'port'],
  HOST: ['server', 'host'],
  DATABASE_URL: ['postgres', 'url'],
  REDIS_URL: ['redis', 'url'],
  SMTP_URL: ['smtp', 'url'],
  SQLITE_PATH: ['sqlite', 'path']
}

const FLAG_KEYS: Record<keyof ConfigFlags, [string, string]> = {
  port: ['server', 'port'],
  host: ['server', 'host'],
  workers: ['server', 'workers'],
  watch: ['server', 'watch']
}

interface Layer { value: unknown, source: ConfigSource }

async function fileLayer (dir: string, name: string): Promise<Layer | undefined> {
  const file = join(dir, 'config', name)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new EVLUA_ERR_CONFIG_FILE(file, (err as Error).message)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new EVLUA_ERR_CONFIG_FILE(file, `invalid JSON: ${(err as Error).message}`)
  }
  return { value, source: { where: `in config/${name}`, text: false } }
}

/** One layer per variable or flag, so an error names exactly the one that is wrong. */
function textLayers (values: Record<string, unknown>, keys: Record<string, [string, string]>, label: (name: string) => string): Layer[] {
  const layers: Layer[] = []
  for (const [name, [section, leaf]] of Object.entries(keys)) {
    const value = values[name]
    if (value === undefined || value === '') continue
    layers.push({ value: { [section]: { [leaf]: value } }, source: { where: label(name), text: true } })
  }
  return layers
}

function merge (target: EvluaConfig, layer: EvluaConfigInput): void {
  const into = target as unknown as Record<string, Record<string, unknown>>
  for (const [section, values] of Object.entries(layer)) Object.assign(into[section], values)
}

const isSqliteSpecial = (p: string): boolean => p === ':memory:' || p.startsWith('file:')

function resolvePaths (config: EvluaConfig, dir: string): void {
  const at = (p: string): string => isAbsolute(p) ? p : resolve(dir, p)
  if (config.https.key !== null) config.https.key = at(config.https.key)
  if (config.https.cert !== null) config.https.cert = at(config.https.cert)
  if (!isSqliteSpecial(config.sqlite.path)) config.sqlite.path = at(config.sqlite.path)
  config.static.dir = at(config.static.dir)
}

function checkHttps ({ key, cert }: EvluaConfig['https']): void {
  if (key !== null && cert === null) throw new EVLUA_ERR_CONFIG_HTTPS('key', 'cert')
  if (cert !== null && key === null) throw new EVLUA_ERR_CONFIG_HTTPS('cert', 'key')
}

/**
 * Load an application's configuration: built-in defaults → config/default.json →
 * config/<NODE_ENV>.json → `overrides` → environment variables → `flags`; each later source wins.
 * Every layer is validated on its own, so an error names the file, option, variable or flag at fault.
 * Relative paths (https.key, https.cert, sqlite.path, static.dir) are resolved against `dir`.
 *
 * @example
 * const config = await loadConfig({ dir: '/srv/myapp', flags: { port: '0' } })
 * config.lua.cpu_timeout_ms // 5000 unless a source says otherwise
 */
export async function loadConfig ({ dir, env = process.env, flags = {}, overrides }: LoadConfigOptions): Promise<EvluaConfig> {
  const nodeEnv = env.NODE_ENV || 'development'
  const files = await Promise.all([fileLayer(dir, 'default.json'), fileLayer(dir, `${nodeEnv}.json`)])
  const layers: Layer[] = [
    ...files.filter((f) => f !== undefined),
    ...(overrides !== undefined ? [{ value: overrides, source: { where: 'in the plugin\'s config option', text: false } }] : []),
    ...textLayers(env, ENV_KEYS, (name) => `from environment variable ${name}`),
    ...textLayers(flags as Record<string, unknown>, FLAG_KEYS, (name) => `from flag --${name}`)
  ]
  const config = structuredClone(defaultConfig) as EvluaConfig
  for (const { value, source } of layers) merge(config, validateLayer(value, source))
  checkHttps(config.https)
  resolvePaths(config, dir)
  return config
}
