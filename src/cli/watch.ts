import type { FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import type { CliArgs } from './args.ts'
import { formatError, logLine } from './report.ts'
import { buildServer, listen } from './server.ts'
import { onShutdownSignal } from './signals.ts'
import { watchAppFiles } from './watch-files.ts'

/**
 * `--watch`: serve in one process and restart it (config and Lua reloaded) when routes/, lib/ or
 * config/ change. The port stays the one bound first. A restart that fails (a Lua syntax error)
 * is logged and the server waits for the next change instead of exiting.
 */
export async function runWatch ({ dir, flags }: CliArgs): Promise<void> {
  const start = async (port?: number): Promise<{ app: FastifyInstance, url: string }> => {
    const { app, config } = await buildServer({ dir, flags: port === undefined ? flags : { ...flags, port } })
    try {
      return { app, url: await listen(app, config) }
    } catch (err) {
      await app.close().catch(() => {})
      throw err
    }
  }

  const first = await start()
  let current: FastifyInstance | undefined = first.app
  const port = (first.app.server.address() as AddressInfo).port
  process.stdout.write(`${first.url}\n`)

  let running: Promise<void> = Promise.resolve()
  const restart = async (paths: string[]): Promise<void> => {
    logLine('info', `restarting: ${paths.join(', ')} changed`)
    await current?.close().catch((err: unknown) => logLine('error', `closing the old app failed: ${formatError(err)}`))
    current = undefined
    try {
      current = (await start(port)).app
      logLine('info', 'restarted')
    } catch (err) {
      logLine('error', `restart failed, waiting for the next change: ${formatError(err)}`)
    }
  }
  // restarts run one after another: a change during a restart queues the next one
  const watcher = watchAppFiles(dir, (paths) => { running = running.then(() => restart(paths)) })

  onShutdownSignal(async () => {
    watcher.close()
    await running
    await current?.close()
    return 0
  })
}
