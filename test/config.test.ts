import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { defaultConfig, loadConfig, parseSize } from '../src/config/index.ts'
import { errorCodes } from '../src/errors.ts'

/** A real application directory holding the given config/ files. */
async function appDir (t: TestContext, files: Record<string, unknown> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'evlua-config-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'config'))
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(dir, 'config', name), typeof content === 'string' ? content : JSON.stringify(content))
  }
  return dir
}

test('no config files: the built-in defaults, paths resolved against the app dir', async (t) => {
  const dir = await appDir(t)
  const config = await loadConfig({ dir, env: {} })
  assert.deepEqual(config, {
    ...defaultConfig,
    sqlite: { path: join(dir, 'data/app.sqlite') },
    static: { dir: join(dir, 'public') }
  })
  assert.deepEqual(defaultConfig.server, { port: 8080, host: '127.0.0.1', workers: 1, watch: false })
  assert.deepEqual(defaultConfig.lua, { cpu_timeout_ms: 5000, request_timeout_ms: 30000, memory_limit_mb: 256, hook_interval: 10000 })
  assert.equal(defaultConfig.http.body_limit, 16 * 1024 * 1024)
})

test('a missing config/ directory is fine', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'evlua-config-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  assert.equal((await loadConfig({ dir, env: {} })).server.port, 8080)
})

test('each source wins over the ones before it', async (t) => {
  const dir = await appDir(t, {
    'default.json': { server: { port: 1001, host: 'file.default', workers: 2 }, lua: { cpu_timeout_ms: 11, hook_interval: 7 } },
    'development.json': { server: { port: 1002, host: 'file.development' }, lua: { cpu_timeout_ms: 12 } }
  })
  const overrides = { server: { port: 1003, host: 'option' } }
  const env = { PORT: '1004', HOST: 'env' }

  const files = await loadConfig({ dir, env: {} })
  assert.deepEqual(files.server, { port: 1002, host: 'file.development', workers: 2, watch: false })
  assert.deepEqual(files.lua, { cpu_timeout_ms: 12, request_timeout_ms: 30000, memory_limit_mb: 256, hook_interval: 7 })

  const withOption = await loadConfig({ dir, env: {}, overrides })
  assert.deepEqual(withOption.server, { port: 1003, host: 'option', workers: 2, watch: false })
  assert.equal(withOption.lua.cpu_timeout_ms, 12)

  const withEnv = await loadConfig({ dir, env, overrides })
  assert.deepEqual(withEnv.server, { port: 1004, host: 'env', workers: 2, watch: false })

  const withFlags = await loadConfig({ dir, env, overrides, flags: { port: '0', workers: '3', watch: true } })
  assert.deepEqual(withFlags.server, { port: 0, host: 'env', workers: 3, watch: true })
  const hostFlag = await loadConfig({ dir, env, overrides, flags: { host: '::1' } })
  assert.equal(hostFlag.server.host, '::1')
})

test('NODE_ENV chooses the second file; development by default', async (t) => {
  const dir = await appDir(t, {
    'default.json': { log: { level: 'warn' }, postgres: { pool_max: 3 } },
    'development.json': { log: { level: 'debug' } },
    'production.json': { log: { level: 'error' }, lua: { memory_limit_mb: 0 } }
  })
  assert.equal((await loadConfig({ dir, env: {} })).log.level, 'debug')
  assert.equal((await loadConfig({ dir, env: { NODE_ENV: 'development' } })).log.level, 'debug')
  const prod = await loadConfig({ dir, env: { NODE_ENV: 'production' } })
  assert.equal(prod.log.level, 'error')
  assert.equal(prod.lua.memory_limit_mb, 0)
  assert.equal(prod.postgres.pool_max, 3, 'default.json still applies')
  assert.equal((await loadConfig({ dir, env: { NODE_ENV: 'staging' } })).log.level, 'warn', 'missing file is fine')
})

test('environment variables set their keys; numbers are parsed; empty ones are ignored', async (t) => {
  const dir = await appDir(t)
  const config = await loadConfig({
    dir,
    env: {
      PORT: ' 3000 ',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://u@db/app',
      REDIS_URL: 'redis://cache:6379',
      SMTP_URL: 'smtp://mail:25',
      SQLITE_PATH: 'var/db.sqlite'
    }
  })
  assert.deepEqual(config.server, { port: 3000, host: '0.0.0.0', workers: 1, watch: false })
  assert.equal(config.postgres.url, 'postgres://u@db/app')
  assert.equal(config.redis.url, 'redis://cache:6379')
  assert.equal(config.smtp.url, 'smtp://mail:25')
  assert.equal(config.sqlite.path, join(dir, 'var/db.sqlite'))
  assert.equal((await loadConfig({ dir, env: { PORT: '' } })).server.port, 8080)
})

test('the plugin option may hold strings for sizes and is not mutated', async (t) => {
  const dir = await appDir(t)
  const overrides = { http: { body_limit: '1mb' }, sqlite: { path: ':memory:' } }
  const config = await loadConfig({ dir, env: {}, overrides })
  assert.equal(config.http.body_limit, 1024 * 1024)
  assert.equal(config.sqlite.path, ':memory:')
  assert.deepEqual(overrides, { http: { body_limit: '1mb' }, sqlite: { path: ':memory:' } })
})

test('a loaded config passed back as the plugin option loads to the same config', async (t) => {
  const dir = await appDir(t, { 'default.json': { https: { key: 'tls/key.pem', cert: 'tls/cert.pem' } } })
  const first = await loadConfig({ dir, env: { PORT: '0' } })
  assert.deepEqual(await loadConfig({ dir, env: {}, overrides: first }), first)
})

test('each load returns a fresh object', async (t) => {
  const dir = await appDir(t)
  const a = await loadConfig({ dir, env: {} })
  a.lua.cpu_timeout_ms = 1
  assert.equal((await loadConfig({ dir, env: {} })).lua.cpu_timeout_ms, 5000)
  assert.ok(Object.isFrozen(defaultConfig.lua))
})

test('unknown key: names the dotted key, the nearest known key and the file', async (t) => {
  const dir = await appDir(t, { 'default.json': { lua: { cpu_timeout: 100 } } })
  await assert.rejects(loadConfig({ dir, env: {} }), {
    code: 'EVLUA_ERR_CONFIG_UNKNOWN_KEY',
    message: 'unknown config key "lua.cpu_timeout" in config/default.json: did you mean "lua.cpu_timeout_ms"?'
  })
  assert.ok(errorCodes.EVLUA_ERR_CONFIG_UNKNOWN_KEY)
})

test('unknown key in the NODE_ENV file and in the plugin option say so', async (t) => {
  const dir = await appDir(t, { 'production.json': { server: { prot: 80 } } })
  await assert.rejects(loadConfig({ dir, env: { NODE_ENV: 'production' } }), {
    message: 'unknown config key "server.prot" in config/production.json: did you mean "server.port"?'
  })
  await assert.rejects(loadConfig({ dir, env: {}, overrides: { lua: { memory_limit: 1 } } }), {
    message: 'unknown config key "lua.memory_limit" in the plugin\'s config option: did you mean "lua.memory_limit_mb"?'
  })
})

test('unknown key: a key under the wrong section or at the top finds its section', async (t) => {
  const dir = await appDir(t)
  await assert.rejects(loadConfig({ dir, env: {}, overrides: { server: { body_limit: 10 } } }), {
    message: /unknown config key "server\.body_limit" .*did you mean "http\.body_limit"\?/
  })
  await assert.rejects(loadConfig({ dir, env: {}, overrides: { port: 10 } }), {
    message: /unknown config key "port" .*did you mean "server\.port"\?/
  })
})

test('unknown key with no close match lists the known keys there', async (t) => {
  const dir = await appDir(t, { 'default.json': { https: { certificate: 'x.pem' } } })
  await assert.rejects(loadConfig({ dir, env: {} }), {
    message: 'unknown config key "https.certificate" in config/default.json: ' +
      'the known keys here are https.key, https.cert (see docs/config.md)'
  })
  await assert.rejects(loadConfig({ dir: await appDir(t, { 'default.json': { frobnicate: {} } }), env: {} }), {
    message: /unknown config key "frobnicate" in config\/default\.json: the known keys here are server, lua, http,/
  })
})

test('wrong types name the key, what was expected, the value and the source', async (t) => {
  const dir = await appDir(t, { 'default.json': { server: { port: '8080' } } })
  await assert.rejects(loadConfig({ dir, env: {} }), {
    code: 'EVLUA_ERR_CONFIG_TYPE',
    message: 'config key "server.port" in config/default.json must be an integer from 0 to 65535, got "8080"'
  })
  const empty = await appDir(t)
  const rejects = (options: object, message: string | RegExp): Promise<void> =>
    assert.rejects(loadConfig({ dir: empty, env: {}, ...options }), { code: 'EVLUA_ERR_CONFIG_TYPE', message })
  await rejects({ env: { PORT: 'eighty' } },
    'config key "server.port" from environment variable PORT must be an integer from 0 to 65535, got "eighty"')
  await rejects({ env: { PORT: '70000' } }, /"server\.port" from environment variable PORT .* got "70000"$/)
  await rejects({ flags: { workers: '0' } },
    'config key "server.workers" from flag --workers must be an integer of at least 1, got "0"')
  await rejects({ flags: { port: '1.5' } }, /"server\.port" from flag --port/)
  await rejects({ overrides: { lua: 5 } }, 'config key "lua" in the plugin\'s config option must be an object, got 5')
  await rejects({ overrides: { lua: { cpu_timeout_ms: 1.5 } } }, /"lua\.cpu_timeout_ms" .* must be an integer of at least 1, got 1\.5$/)
  await rejects({ overrides: { server: { watch: 'yes' } } }, /"server\.watch" .* must be true or false, got "yes"$/)
  await rejects({ overrides: { log: { level: 'loud' } } }, /"log\.level" .* must be one of "fatal", "error", .* got "loud"$/)
  await rejects({ overrides: { postgres: { url: 5 } } }, /"postgres\.url" .* must be a non-empty string or null, got 5$/)
  await rejects({ overrides: { static: { dir: null } } }, /"static\.dir" .* must be a non-empty string, got null$/)
})

test('http.body_limit takes bytes or a size string', async (t) => {
  const dir = await appDir(t)
  const limit = async (body_limit: unknown): Promise<number> =>
    (await loadConfig({ dir, env: {}, overrides: { http: { body_limit } } })).http.body_limit
  assert.equal(await limit(4096), 4096)
  assert.equal(await limit('16mb'), 16777216)
  assert.equal(await limit('512kb'), 524288)
  assert.equal(await limit('512 KB'), 524288)
  assert.equal(await limit('1.5m'), 1572864)
  assert.equal(await limit('1GiB'), 1024 ** 3)
  assert.equal(await limit('100'), 100)
  await assert.rejects(limit('lots'), {
    message: 'config key "http.body_limit" in the plugin\'s config option must be a number of bytes (at least 1) or a size such as "16mb", got "lots"'
  })
  await assert.rejects(limit(0), { code: 'EVLUA_ERR_CONFIG_TYPE' })
  await assert.rejects(limit('5 parsecs'), { code: 'EVLUA_ERR_CONFIG_TYPE' })
})

test('parseSize', () => {
  assert.equal(parseSize('2k'), 2048)
  assert.equal(parseSize('3 MiB'), 3 * 1024 * 1024)
  assert.equal(parseSize('7b'), 7)
  assert.equal(parseSize(''), undefined)
  assert.equal(parseSize('-1kb'), undefined)
  assert.equal(parseSize('1tb'), undefined)
})

test('https: both PEM paths resolved against the app dir, or neither', async (t) => {
  const dir = await appDir(t, { 'default.json': { https: { key: 'tls/key.pem', cert: '/etc/tls/cert.pem' } } })
  assert.deepEqual((await loadConfig({ dir, env: {} })).https, { key: join(dir, 'tls/key.pem'), cert: '/etc/tls/cert.pem' })

  const keyOnly = await appDir(t, { 'default.json': { https: { key: 'key.pem' } } })
  await assert.rejects(loadConfig({ dir: keyOnly, env: {} }), {
    code: 'EVLUA_ERR_CONFIG_HTTPS',
    message: 'https.key is set but https.cert is not: set both PEM file paths to serve HTTPS, or neither'
  })
  await assert.rejects(loadConfig({ dir: keyOnly, env: {}, overrides: { https: { key: null, cert: 'c.pem' } } }), {
    message: /^https\.cert is set but https\.key is not/
  })
})

test('a config file that is not JSON, or not an object, names the file', async (t) => {
  const dir = await appDir(t, { 'default.json': '{ "server": { "port": 80, } }' })
  await assert.rejects(loadConfig({ dir, env: {} }), {
    code: 'EVLUA_ERR_CONFIG_FILE',
    message: new RegExp(`^cannot load config file ${join(dir, 'config', 'default.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid JSON: `)
  })
  const array = await appDir(t, { 'development.json': '[1, 2]' })
  await assert.rejects(loadConfig({ dir: array, env: {} }), {
    message: 'config key "(top level)" in config/development.json must be an object, got [1,2]'
  })
})
