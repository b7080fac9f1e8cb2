import { isEvluaError } from '../errors.ts'

/** The text to show for a start-up error: the message alone when it says everything, else the stack. */
export function formatError (err: unknown): string {
  if (isEvluaError(err)) return err.message
  // system errors (EADDRINUSE, EACCES) name the syscall and address; their stack is Node's, not ours
  if (err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string') return err.message
  return err instanceof Error ? (err.stack ?? err.message) : String(err)
}

export function reportError (err: unknown): void {
  process.stderr.write(`evluaserver: ${formatError(err)}\n`)
}

const LEVELS = { error: 50, warn: 40, info: 30 } as const

/** A log line shaped like the workers' pino lines, for the processes that have no Fastify logger. */
export function logLine (level: keyof typeof LEVELS, msg: string): void {
  process.stderr.write(JSON.stringify({ level: LEVELS[level], time: Date.now(), pid: process.pid, msg }) + '\n')
}
