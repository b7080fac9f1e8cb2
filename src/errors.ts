/**
 * Every evlua error code, declared once. Documented in docs/errors.md.
 * Throw them by name: `throw new EVLUA_ERR_CONFIG_FILE(file, reason)`.
 */
import createError from '@fastify/error'

export const EVLUA_ERR_CONFIG_UNKNOWN_KEY = createError<'EVLUA_ERR_CONFIG_UNKNOWN_KEY', 500, [key: string, where: string, hint: string]>(
  'EVLUA_ERR_CONFIG_UNKNOWN_KEY', 'unknown config key "%s" %s: %s', 500)

export const EVLUA_ERR_CONFIG_TYPE = createError<'EVLUA_ERR_CONFIG_TYPE', 500, [key: string, where: string, expected: string, got: string]>(
  'EVLUA_ERR_CONFIG_TYPE', 'config key "%s" %s must be %s, got %s', 500, TypeError)

export const EVLUA_ERR_CONFIG_FILE = createError<'EVLUA_ERR_CONFIG_FILE', 500, [file: string, reason: string]>(
  'EVLUA_ERR_CONFIG_FILE', 'cannot load config file %s: %s', 500)

export const EVLUA_ERR_CONFIG_HTTPS = createError<'EVLUA_ERR_CONFIG_HTTPS', 500, [set: string, missing: string]>(
  'EVLUA_ERR_CONFIG_HTTPS', 'https.%s is set but https.%s is not: set both PEM file paths to serve HTTPS, or neither', 500)

export const EVLUA_ERR_HTTPS_FILE = createError<'EVLUA_ERR_HTTPS_FILE', 500, [which: string, file: string, reason: string]>(
  'EVLUA_ERR_HTTPS_FILE', 'cannot read https.%s file %s: %s', 500)

export const EVLUA_ERR_APP_DIR = createError<'EVLUA_ERR_APP_DIR', 500, [dir: string]>(
  'EVLUA_ERR_APP_DIR', 'no routes/ directory in %s: pass the application directory (the one that holds routes/)', 500)

export const EVLUA_ERR_CLI_USAGE = createError<'EVLUA_ERR_CLI_USAGE', 500, [message: string]>(
  'EVLUA_ERR_CLI_USAGE', '%s', 500)

export const EVLUA_ERR_LUA_SYNTAX = createError<'EVLUA_ERR_LUA_SYNTAX', 500, [message: string]>(
  'EVLUA_ERR_LUA_SYNTAX', '%s', 500, SyntaxError)

export const EVLUA_ERR_LUA_LOAD = createError<'EVLUA_ERR_LUA_LOAD', 500, [file: string, reason: string]>(
  'EVLUA_ERR_LUA_LOAD', 'cannot load %s: %s', 500)

export const EVLUA_ERR_ROUTE_CONFLICT = createError<'EVLUA_ERR_ROUTE_CONFLICT', 500, [route: string, first: string, second: string]>(
  'EVLUA_ERR_ROUTE_CONFLICT', 'route %s is defined twice: by %s and by %s', 500)

export const EVLUA_ERR_ROUTE_MODULE = createError<'EVLUA_ERR_ROUTE_MODULE', 500, [file: string, got: string]>(
  'EVLUA_ERR_ROUTE_MODULE', 'route module %s must return a table of handlers or a function, got %s', 500, TypeError)

export const EVLUA_ERR_ENGINE = createError<'EVLUA_ERR_ENGINE', 500, [reason: string]>(
  'EVLUA_ERR_ENGINE', 'Lua engine error: %s', 500)

export const EVLUA_ERR_ROUTE_NAME = createError<'EVLUA_ERR_ROUTE_NAME', 500, [file: string, fix: string]>(
  'EVLUA_ERR_ROUTE_NAME', 'bad route file name %s: %s', 500)

export const EVLUA_ERR_LUA_RUNTIME = createError<'EVLUA_ERR_LUA_RUNTIME', 500, [message: string]>(
  'EVLUA_ERR_LUA_RUNTIME', '%s', 500)

export const EVLUA_ERR_LUA_CPU_TIMEOUT = createError<'EVLUA_ERR_LUA_CPU_TIMEOUT', 503, [ms: number]>(
  'EVLUA_ERR_LUA_CPU_TIMEOUT', 'the Lua handler ran on the CPU for more than %d ms (config lua.cpu_timeout_ms) and was stopped', 503)

export const EVLUA_ERR_LUA_REQUEST_TIMEOUT = createError<'EVLUA_ERR_LUA_REQUEST_TIMEOUT', 504, [ms: number]>(
  'EVLUA_ERR_LUA_REQUEST_TIMEOUT', 'the Lua handler did not finish within %d ms (config lua.request_timeout_ms) and was stopped', 504)

export const errorCodes = {
  EVLUA_ERR_CONFIG_UNKNOWN_KEY,
  EVLUA_ERR_CONFIG_TYPE,
  EVLUA_ERR_CONFIG_FILE,
  EVLUA_ERR_CONFIG_HTTPS,
  EVLUA_ERR_HTTPS_FILE,
  EVLUA_ERR_APP_DIR,
  EVLUA_ERR_CLI_USAGE,
  EVLUA_ERR_LUA_SYNTAX,
  EVLUA_ERR_LUA_LOAD,
  EVLUA_ERR_ROUTE_CONFLICT,
  EVLUA_ERR_ROUTE_MODULE,
  EVLUA_ERR_ENGINE,
  EVLUA_ERR_ROUTE_NAME,
  EVLUA_ERR_LUA_RUNTIME,
  EVLUA_ERR_LUA_CPU_TIMEOUT,
  EVLUA_ERR_LUA_REQUEST_TIMEOUT
}

/** True for an error evlua raised on purpose: its message is enough, the stack adds nothing. */
export function isEvluaError (err: unknown): err is Error & { code: string } {
  const code: unknown = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined
  return typeof code === 'string' && code.startsWith('EVLUA_ERR_')
}
