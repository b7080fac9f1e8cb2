import type { CliArgs } from './args.ts'
import { buildServer, listen } from './server.ts'
import { onShutdownSignal } from './signals.ts'

/** One process: serve, print the URL, and on a signal let in-flight requests finish before exiting. */
export async function runSingle ({ dir, flags }: CliArgs): Promise<void> {
  const { app, config } = await buildServer({ dir, flags })
  const url = await listen(app, config)
  process.stdout.write(`${url}\n`)
  onShutdownSignal(async () => {
    await app.close()
    return 0
  })
}
