import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { ConfigFlags } from '../config/index.ts'
import { EVLUA_ERR_CLI_USAGE } from '../errors.ts'

export const USAGE = `Usage: evluaserver [appdir] [options]

Serve the evlua application in appdir (default: the current directory).

Options:
  --port N      listen on port N (0 picks a free port; default: config server.port, 8080)
  --host H      listen on host H (default: config server.host, 127.0.0.1)
  --workers N   run N worker processes sharing the port (default: 1)
  --watch       restart when routes/, lib/ or config/ change (single process only)
  -h, --help    show this help

Once listening, the server prints its URL (http://HOST:PORT) on standard output.
Logs go to standard error. See docs/config.md for the configuration.`

export interface CliArgs {
  /** Absolute path of the application directory. */
  dir: string
  flags: ConfigFlags
  help: boolean
}

/** Parse evluaserver's arguments; a mistake throws EVLUA_ERR_CLI_USAGE. */
export function parseCliArgs (argv: string[], cwd = process.cwd()): CliArgs {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        workers: { type: 'string' },
        watch: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      }
    })
  } catch (err) {
    throw new EVLUA_ERR_CLI_USAGE((err as Error).message)
  }
  const { values, positionals } = parsed
  if (positionals.length > 1) {
    throw new EVLUA_ERR_CLI_USAGE(`expected at most one application directory, got ${positionals.length}: ${positionals.join(' ')}`)
  }
  const flags: ConfigFlags = {}
  if (values.port !== undefined) flags.port = values.port
  if (values.host !== undefined) flags.host = values.host
  if (values.workers !== undefined) flags.workers = values.workers
  if (values.watch !== undefined) flags.watch = values.watch
  return { dir: resolve(cwd, positionals[0] ?? '.'), flags, help: values.help === true }
}
