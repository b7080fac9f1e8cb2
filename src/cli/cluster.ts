import cluster, { type Worker } from 'node:cluster'
import { createServer } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { EvluaConfig } from '../config/index.ts'
import type { CliArgs } from './args.ts'
import { formatError, logLine } from './report.ts'
import { buildServer, listen } from './server.ts'
import { onShutdownSignal } from './signals.ts'
import { WORKER_PORT_ENV } from './worker-env.ts'

/** Messages between the primary and its workers. */
type Message =
  | { evlua: 'listening', url: string }
  | { evlua: 'failed', message: string }
  | { evlua: 'shutdown' }

/** A worker that dies this soon after its start is failing to start: wait before the next try. */
const EARLY_DEATH_MS = 1000

const isMessage = (m: unknown): m is Message => typeof m === 'object' && m !== null && 'evlua' in m

function freePort (host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen({ port: 0, host }, () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

/**
 * The primary process of `--workers N`: fork N workers sharing one port, print the URL once all
 * listen, replace a worker that dies, and on a signal shut them all down gracefully.
 */
export async function runPrimary (config: EvluaConfig): Promise<void> {
  const count = config.server.workers
  // workers given port 0 would each ask the primary for a port; pick one so the URL is known up front
  const port = config.server.port === 0 ? await freePort(config.server.host) : config.server.port
  const live = new Set<Worker>()
  const listening = new Set<Worker>()
  let started = false
  let stopping = false
  let exitCode = 0
  let allExited: (code: number) => void = () => {}
  const stopped = new Promise<number>((resolve) => { allExited = resolve })

  const finishIfDone = (): void => { if (stopping && live.size === 0) allExited(exitCode) }

  const stopAll = (code: number): void => {
    stopping = true
    exitCode = Math.max(exitCode, code)
    for (const worker of live) worker.send({ evlua: 'shutdown' } satisfies Message)
    finishIfDone()
  }

  const failStart = (message: string): void => {
    if (stopping) return
    process.stderr.write(`evluaserver: ${message}\n`)
    stopAll(1)
    stopped.then((code) => process.exit(code), () => {})
  }

  const fork = (): void => {
    if (stopping) return
    const worker = cluster.fork({ [WORKER_PORT_ENV]: String(port) })
    const forkedAt = Date.now()
    live.add(worker)
    worker.on('message', (msg: unknown) => {
      if (!isMessage(msg)) return
      if (msg.evlua === 'listening') {
        listening.add(worker)
        if (started) logLine('info', `worker ${worker.process.pid} is listening`)
        else if (listening.size === count) {
          started = true
          process.stdout.write(`${msg.url}\n`)
        }
      } else if (msg.evlua === 'failed') {
        if (started) logLine('error', `worker ${worker.process.pid} failed to start: ${msg.message}`)
        else failStart(msg.message)
      }
    })
    worker.on('exit', (code, signal) => {
      live.delete(worker)
      listening.delete(worker)
      if (stopping) {
        if (code !== 0) exitCode = 1
        finishIfDone()
        return
      }
      if (!started) {
        failStart(`a worker exited before listening (${signal ?? `exit code ${code}`})`)
        return
      }
      logLine('warn', `worker ${worker.process.pid} died (${signal ?? `exit code ${code}`}); starting another`)
      setTimeout(fork, Date.now() - forkedAt < EARLY_DEATH_MS ? EARLY_DEATH_MS : 0)
    })
  }

  onShutdownSignal(() => {
    stopAll(0)
    return stopped
  }, () => {
    for (const worker of live) worker.process.kill('SIGKILL')
  })
  for (let i = 0; i < count; i++) fork()
}

/**
 * A worker of `--workers N`: serve on the port the primary chose and report back.
 * Only the primary decides when to stop, so signals sent to the whole process group
 * (Ctrl-C, systemd) reach the workers once, through it.
 */
export async function runWorker ({ dir, flags }: CliArgs): Promise<void> {
  const send = (msg: Message, then: () => void = () => {}): void => { process.send?.(msg, undefined, {}, then) }
  process.on('SIGINT', () => {})
  process.on('SIGTERM', () => {})

  let app: FastifyInstance | undefined
  let stopRequested = false
  let closing = false
  const shutdown = (): void => {
    stopRequested = true
    if (app === undefined || closing) return
    closing = true
    app.close().then(() => process.exit(0), (err: unknown) => {
      logLine('error', `shutdown failed: ${formatError(err)}`)
      process.exit(1)
    })
  }
  process.on('message', (msg: unknown) => { if (isMessage(msg) && msg.evlua === 'shutdown') shutdown() })
  // the primary is gone (killed): nobody will tell this worker to stop
  process.on('disconnect', shutdown)

  try {
    const built = await buildServer({ dir, flags: { ...flags, port: process.env[WORKER_PORT_ENV] } })
    const url = await listen(built.app, built.config)
    app = built.app
    send({ evlua: 'listening', url })
  } catch (err) {
    send({ evlua: 'failed', message: formatError(err) }, () => process.exit(1))
    return
  }
  if (stopRequested) shutdown()
}
