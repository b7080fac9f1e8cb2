/**
 * What the benchmark runners share about processes: pinning to cores (taskset), and the CPU time a
 * process has used. Pinned, the server under test has core 0 to itself and the load generator (and
 * any database server) core 1: ratios then compare the servers' CPU cost, not the scheduler's luck.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'

/** Whether processes can be pinned here (taskset present, two cores or more). */
export function canPin (): boolean {
  if (cpus().length < 2) return false
  try { execFileSync('taskset', ['-V'], { stdio: 'ignore' }); return true } catch { return false }
}

/** Pin a running process (all its threads) to one core. */
export function pinProcess (pid: number, core: number): void {
  execFileSync('taskset', ['-a', '-cp', String(core), String(pid)], { stdio: 'ignore' })
}

/** Pin every running process with this exact name (e.g. postgres, redis-server) to one core. */
export function pinByName (name: string, core: number): void {
  let pids: string[] = []
  try { pids = execFileSync('pgrep', ['-x', name], { encoding: 'utf8' }).split('\n').filter(Boolean) } catch {}
  for (const pid of pids) {
    try { pinProcess(Number(pid), core) } catch {}
  }
}

/** Spawn a command, on `core` when given (taskset execs it: the child's pid is the command's). */
export function spawnOn (core: number | undefined, argv: string[], options: Parameters<typeof spawn>[2]): ChildProcess {
  return core === undefined
    ? spawn(argv[0], argv.slice(1), options)
    : spawn('taskset', ['-c', String(core), ...argv], options)
}

/** CPU seconds (user + system) used so far by a process. */
export function cpuSeconds (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN
  }
}
