import { logLine } from './report.ts'

/**
 * On the first SIGTERM or SIGINT run `shutdown` and exit with the code it returns;
 * a second signal exits 1 at once (after `force`), for a shutdown that hangs.
 */
export function onShutdownSignal (shutdown: () => Promise<number>, force: () => void = () => {}): void {
  let stopping = false
  const handle = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logLine('warn', `${signal} received again: exiting now`)
      force()
      process.exit(1)
    }
    stopping = true
    logLine('info', `${signal} received: finishing in-flight requests (send it again to exit now)`)
    shutdown().then((code) => process.exit(code), (err: unknown) => {
      logLine('error', `shutdown failed: ${err instanceof Error ? err.stack : String(err)}`)
      process.exit(1)
    })
  }
  process.on('SIGTERM', handle)
  process.on('SIGINT', handle)
}
