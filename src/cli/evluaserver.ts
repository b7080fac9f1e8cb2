/**
 * evluaserver [appdir] [--port N] [--host H] [--workers N] [--watch]
 * Exit status: 0 after a graceful shutdown, 1 on a start-up error, 2 on a usage error.
 */
import { checkAppDir, loadConfig } from '../config/index.ts'
import { parseCliArgs, USAGE, type CliArgs } from './args.ts'
import { logLine, reportError } from './report.ts'
import { isEvluaWorker } from './worker-env.ts'

function parseOrExit (argv: string[]): CliArgs {
  try {
    return parseCliArgs(argv)
  } catch (err) {
    process.stderr.write(`evluaserver: ${(err as Error).message}\n\n${USAGE}\n`)
    process.exit(2)
  }
}

// The runners are imported only once the arguments and config are known to be good,
// so --help and configuration mistakes answer without loading Fastify and the Lua engine.
async function main (argv: string[]): Promise<void> {
  const args = parseOrExit(argv)
  if (args.help) {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  if (isEvluaWorker()) {
    await (await import('./cluster.ts')).runWorker(args)
    return
  }
  await checkAppDir(args.dir)
  const config = await loadConfig({ dir: args.dir, flags: args.flags })
  if (config.server.workers > 1) {
    if (config.server.watch) logLine('warn', 'server.watch is ignored with more than one worker')
    await (await import('./cluster.ts')).runPrimary(config)
  } else if (config.server.watch) {
    await (await import('./watch.ts')).runWatch(args)
  } else {
    await (await import('./single.ts')).runSingle(args)
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  reportError(err)
  process.exit(1)
})
