import { performance } from 'node:perf_hooks'
import {
  LUA_ERRMEM, LUA_MASKCOUNT, LUA_OK, LUA_TLIGHTUSERDATA, LUA_YIELD
} from './lua-api.ts'
import { errorMessage, type LuaEngine } from './engine.ts'
import { LuaArguments, type CallContext, type TaskHandle } from './values.ts'
import { SlotTable } from './slots.ts'

const PENDING_POINTER = 1
const THREAD_POOL_MAX = 4096
/** Stack slots Lua guarantees to a C function (and so to an idle thread). */
const LUA_MINSTACK = 20

export type AbortReason = 'cpu' | 'timeout' | 'memory' | 'killed'

/** A Lua error raised by a task, with the traceback of where it happened. */
export class LuaRuntimeError extends Error {
  readonly traceback: string
  readonly outOfMemory: boolean
  constructor (message: string, traceback: string, outOfMemory = false) {
    super(message)
    this.traceback = traceback
    this.outOfMemory = outOfMemory
  }
}

/** A task stopped from outside: CPU budget spent, wall-clock timeout, or killed. */
export class TaskAbortedError extends Error {
  readonly reason: AbortReason
  constructor (reason: AbortReason, message: string) {
    super(message)
    this.reason = reason
  }
}

export interface RunOptions {
  /** CPU budget in ms across all the task's slices; 0 = none. */
  cpuTimeoutMs?: number
  /** Wall-clock budget in ms, waiting included; 0 = none. */
  wallTimeoutMs?: number
  /**
   * Called once with the task when it ends (at once, inside start(), when it never waits): the
   * cheapest way to hear of the outcome. It must not throw.
   */
  onSettle?: (task: StartedTask) => void
  /** Reads the task's n results off thread L (default: each with engine.toJs). */
  readResults?: (engine: LuaEngine, L: number, n: number) => unknown[]
}

/** A task just started: its id, and its outcome now (`settled`) or later (`done`, `onSettle`). */
export interface StartedTask {
  readonly id: number
  /** What the starter attached to the task (given to start()). */
  readonly tag: unknown
  /** Whether the task already ended: read `results` or `error`. */
  readonly settled: boolean
  readonly results: unknown[] | undefined
  readonly error: Error | undefined
  /** Resolves with the task's results, or rejects with its error. */
  readonly done: Promise<unknown[]>
}

interface LuaThread {
  L: number
  ref: number
  /** The hook fires at every instruction (a task being stopped): restore before reuse. */
  tight?: boolean
}

class Task implements TaskHandle, CallContext, StartedTask {
  /** Given by the scheduler's table of live tasks. */
  id = 0
  readonly tag: unknown
  #locals: Map<unknown, unknown> | undefined
  readonly thread: LuaThread
  readonly cpuBudget: number
  /** performance.now() time past which a waiting task is stopped; 0 = none. */
  readonly deadline: number
  readonly onSettle: ((task: StartedTask) => void) | undefined
  readonly readResults: RunOptions['readResults']
  cpu = 0
  sliceStart = 0
  abort: AbortReason | undefined
  /** The hook found Lua over its memory cap: the scheduler collects garbage and looks again. */
  memoryCheck = false
  ended = false
  endFns: Array<() => void | Promise<void>> | undefined
  /** Set once someone waits on `done` for a task that has not ended. */
  resolve: ((results: unknown[]) => void) | undefined
  reject: ((err: Error) => void) | undefined
  results: unknown[] | undefined
  error: Error | undefined
  #done: Promise<unknown[]> | undefined

  /** Suspended on a wait that the deadline sweep watches. */
  waiting = false

  constructor (thread: LuaThread, options: RunOptions, tag: unknown, now: number) {
    this.tag = tag
    this.thread = thread
    this.cpuBudget = options.cpuTimeoutMs ?? 0
    this.deadline = options.wallTimeoutMs ? now + options.wallTimeoutMs : 0
    this.onSettle = options.onSettle
    this.readResults = options.readResults
  }

  /** The task is its own call context: what JS functions see as `this.task`. */
  get task (): Task { return this }

  get settled (): boolean { return this.ended }

  get locals (): Map<unknown, unknown> {
    return (this.#locals ??= new Map())
  }

  onEnd (fn: () => void | Promise<void>): void {
    (this.endFns ??= []).push(fn)
  }

  get done (): Promise<unknown[]> {
    if (this.#done) return this.#done
    if (this.ended) {
      this.#done = this.error ? Promise.reject(this.error) : Promise.resolve(this.results ?? [])
    } else {
      this.#done = new Promise<unknown[]>((resolve, reject) => {
        this.resolve = resolve
        this.reject = reject
      })
    }
    return this.#done
  }
}

export interface SchedulerOptions {
  /** Counts between CPU-budget checks: loop back-edges and function entries on our build (count-hook.patch), instructions on wasmoon's. */
  hookInterval?: number
  /**
   * A task that has run this long (ms) without waiting is suspended at the next check and resumed
   * after the tasks that are ready, so one CPU-bound handler cannot hold the whole process until its
   * budget is spent. 0 = never.
   */
  sliceMs?: number
  /** Called when a JS exception escaped through Lua (the engine must be recycled). */
  onCorrupted?: (err: unknown) => void
}

/**
 * Runs Lua functions as tasks, each in a pooled coroutine anchored in the registry. A task that
 * calls a JS function returning a promise yields to here; we await it and resume the task with
 * `value` or `nil, err`. Enforces each task's CPU budget (count hook) and wall-clock deadline.
 */
export class Scheduler {
  readonly engine: LuaEngine
  readonly #free: LuaThread[] = []
  /** Tasks suspended with a deadline (flagged `waiting`), for the sweep. */
  #waiting = 0
  readonly #nresPtr: number
  readonly #onCorrupted: (err: unknown) => void
  readonly #sliceMs: number
  readonly #hookPtr: number
  readonly #hookInterval: number
  #current: Task | undefined
  #sweep: NodeJS.Timeout | undefined
  #sweepMs = 0
  readonly #tasks = new SlotTable<Task>()
  #idleWaiters: Array<() => void> = []

  constructor (engine: LuaEngine, options: SchedulerOptions = {}) {
    this.engine = engine
    this.#nresPtr = engine.mod._malloc(8)
    this.#onCorrupted = options.onCorrupted ?? (() => {})
    this.#sliceMs = options.sliceMs ?? 20
    this.#hookPtr = engine.makeHook(this.#hook)
    this.#hookInterval = options.hookInterval ?? 10000
    engine.mod._lua_sethook(engine.L, this.#hookPtr, LUA_MASKCOUNT, this.#hookInterval)
  }

  /** Tasks not yet ended. */
  get active (): number { return this.#tasks.size }

  /** Resolves once no task is running or waiting. */
  idle (): Promise<void> {
    if (this.#tasks.size === 0) return Promise.resolve()
    return new Promise((resolve) => { this.#idleWaiters.push(resolve) })
  }

  /** Run the function in registry slot fnRef with args; resolves with its results. */
  run (fnRef: number, args: unknown[], options: RunOptions = {}): Promise<unknown[]> {
    return this.start(fnRef, args, options).done
  }

  /**
   * Like run, but also gives the task's id (to kill it, or to wait for it from Lua), and the
   * outcome at once when the task ended without waiting (no promise is made then).
   */
  start (fnRef: number, args: unknown[] | LuaArguments, options: RunOptions = {}, tag?: unknown): StartedTask {
    const engine = this.engine
    const thread = this.#acquire()
    // One reading of the clock serves the deadline and the first slice's start.
    const now = performance.now()
    const task = new Task(thread, options, tag, now)
    task.id = this.#tasks.add(task)
    let nargs = 0
    try {
      if (args instanceof LuaArguments) {
        engine.pushRef(thread.L, fnRef)
        nargs = args.pushArgs(engine, thread.L)
      } else {
        // Trailing undefined arguments arrive as nil anyway: they need not be pushed.
        nargs = args.length
        while (nargs > 0 && args[nargs - 1] === undefined) nargs--
        // An idle thread has LUA_MINSTACK free slots: the usual few arguments need no check.
        if (nargs >= LUA_MINSTACK) engine.checkStack(thread.L, nargs + 1)
        engine.pushRef(thread.L, fnRef)
        for (let i = 0; i < nargs; i++) engine.push(thread.L, args[i])
      }
    } catch (err) {
      engine.mod._lua_settop(thread.L, 0)
      this.#end(task, err as Error)
      return task
    }
    this.#resume(task, nargs, now)
    return task
  }

  /** Stop a task from outside (e.g. its client went away). */
  kill (taskId: number, reason: AbortReason = 'killed', message = 'task was stopped'): void {
    const task = this.#tasks.get(taskId)
    if (!task || task.ended) return
    if (task === this.#current) { task.abort = reason; return }
    this.#abort(task, reason, message)
  }

  #acquire (): LuaThread {
    const free = this.#free.pop()
    if (free) return free
    const { mod, L } = this.engine
    const T = mod._lua_newthread(L)
    return { L: T, ref: this.engine.ref(L) }
  }

  #release (thread: LuaThread, clean: boolean): void {
    const mod = this.engine.mod
    if (thread.tight) {
      thread.tight = false
      mod._lua_sethook(thread.L, this.#hookPtr, LUA_MASKCOUNT, this.#hookInterval)
    }
    if (!clean && mod._lua_resetthread(thread.L) !== LUA_OK) {
      this.engine.unref(thread.ref)
      return
    }
    // The last task's values linger above the top, where the next task's registers will be: until
    // it writes them, the collector would count them as live (a memory check could then fail on
    // the previous task's garbage). Overwrite the first slots (those always exist) with nil.
    mod._lua_settop(thread.L, LUA_MINSTACK)
    mod._lua_settop(thread.L, 0)
    if (this.#free.length < THREAD_POOL_MAX) this.#free.push(thread)
    else this.engine.unref(thread.ref)
  }

  #resume (task: Task, nargs: number, start = performance.now()): void {
    const engine = this.engine
    const mod = engine.mod
    const T = task.thread.L
    // A task may start another from inside one of its JS calls (platform.spawn): the outer task is
    // still running and gets its state back when the inner one yields or ends.
    const outer = this.#current
    const outerContext = engine.context
    const outerCapping = engine.capping
    this.#current = task
    engine.context = task
    task.sliceStart = start
    let status: number
    engine.capping = true
    try {
      status = mod._lua_resume(T, 0, nargs, this.#nresPtr)
    } catch (err) {
      engine.capping = outerCapping
      this.#current = outer
      engine.context = outerContext
      engine.corrupted = true
      this.#end(task, new Error(`Lua engine failed: ${errorMessage(err)}`))
      this.#onCorrupted(err)
      return
    }
    engine.capping = outerCapping
    this.#current = outer
    engine.context = outerContext
    // The clock is read again only for whom the time matters: a task that goes on (its CPU so far)
    // and an outer task (the inner task's time is not its CPU). A clock reading costs ~45 ns.
    let end = 0
    if (status === LUA_YIELD || outer) {
      end = performance.now()
      task.cpu += end - task.sliceStart
      if (outer) outer.sliceStart += end - start
    }
    const nres = engine.bytes.u32(this.#nresPtr)

    if (status === LUA_OK) {
      if (task.abort) {
        // It caught the error that was to stop it (pcall, coroutine.resume) and returned: still stopped.
        this.#release(task.thread, true)
        this.#end(task, new TaskAbortedError(task.abort, abortMessage(task.abort)))
        return
      }
      let results: unknown[]
      try {
        if (task.readResults) {
          results = task.readResults(engine, T, nres)
        } else {
          results = new Array(nres)
          for (let i = 0; i < nres; i++) results[i] = engine.toJs(T, i + 1)
        }
      } catch (err) {
        this.#release(task.thread, false)
        this.#end(task, err as Error)
        return
      }
      this.#release(task.thread, true)
      this.#end(task, undefined, results)
      return
    }
    if (status === LUA_YIELD) {
      if (task.memoryCheck) {
        // Over the cap, perhaps only with garbage: collect, then stop the task or let it go on.
        task.memoryCheck = false
        engine.collectGarbage()
        if (engine.memoryUsed() > engine.memory.max) this.#abort(task, 'memory', abortMessage('memory'))
        else this.#resume(task, 0)
        return
      }
      if (task.abort) {
        this.#abort(task, task.abort, abortMessage(task.abort))
        return
      }
      const waiting = nres >= 1 && mod._lua_type(T, -1) === LUA_TLIGHTUSERDATA &&
        mod._lua_touserdata(T, -1) === PENDING_POINTER
      mod._lua_settop(T, -nres - 1)
      if (waiting) {
        const pending = engine.pending
        engine.pending = undefined
        if (!pending) {
          this.#abort(task, 'killed', 'internal error: a wait without a pending call')
          return
        }
        this.#wait(task, end)
        pending.promise.then(
          (value) => { if (this.#unwait(task)) this.#resume(task, engine.pushResult(T, value)) },
          (err) => { if (this.#unwait(task)) this.#resume(task, engine.pushFailure(T, err)) }
        )
      } else {
        // A bare coroutine.yield(), or the hook ended the task's time slice: let other tasks run,
        // then carry on.
        this.#wait(task, end)
        setImmediate(() => { if (this.#unwait(task)) this.#resume(task, 0) })
      }
      return
    }
    const message = luaErrorMessage(engine, T)
    const traceback = engine.traceback(T)
    this.#release(task.thread, false)
    if (task.abort) {
      this.#end(task, new TaskAbortedError(task.abort, abortMessage(task.abort)))
      return
    }
    this.#end(task, new LuaRuntimeError(message, traceback, status === LUA_ERRMEM))
  }

  #wait (task: Task, now: number): void {
    if (!task.deadline) return
    task.waiting = true
    this.#waiting++
    this.#startSweep(task.deadline - now)
  }

  #stopWaiting (task: Task): void {
    if (!task.waiting) return
    task.waiting = false
    this.#waiting--
  }

  /** Whether a settled wait should resume its task (false once the task was stopped). */
  #unwait (task: Task): boolean {
    if (task.ended) return false
    this.#stopWaiting(task)
    return true
  }

  #startSweep (remainingMs: number): void {
    const ms = Math.max(5, Math.min(250, Math.floor(remainingMs / 4)))
    if (this.#sweep && this.#sweepMs <= ms) return
    if (this.#sweep) clearInterval(this.#sweep)
    this.#sweepMs = ms
    this.#sweep = setInterval(() => {
      const now = performance.now()
      for (const task of this.#tasks.values()) {
        if (task.waiting && task.deadline <= now) this.#abort(task, 'timeout', abortMessage('timeout'))
      }
      if (this.#waiting === 0 && this.#sweep) {
        clearInterval(this.#sweep)
        this.#sweep = undefined
      }
    }, ms)
    this.#sweep.unref()
  }

  #abort (task: Task, reason: AbortReason, message: string): void {
    if (task.ended) return
    this.#stopWaiting(task)
    if (reason === 'memory') {
      // Out of memory is a Lua error like Lua's own: a 500 with the traceback of where it ran out.
      const traceback = this.engine.traceback(task.thread.L)
      this.#release(task.thread, false)
      this.#end(task, new LuaRuntimeError(message, traceback, true))
      return
    }
    try {
      this.#release(task.thread, false)
    } catch {
      // the engine itself failed (closing after corruption): the thread goes with it
    }
    this.#end(task, new TaskAbortedError(reason, message))
  }

  #end (task: Task, err: Error | undefined, results?: unknown[]): void {
    task.ended = true
    this.#tasks.delete(task.id)
    if (this.#tasks.size === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters
      this.#idleWaiters = []
      queueMicrotask(() => { for (const w of waiters) w() })
    }
    this.#stopWaiting(task)
    if (task.endFns) {
      for (const fn of task.endFns) {
        try {
          const r = fn()
          if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(() => {})
        } catch {}
      }
    }
    if (err) task.error = err
    else task.results = results ?? []
    task.onSettle?.(task)
    if (err) task.reject?.(err)
    else task.resolve?.(task.results!)
  }

  readonly #hook = (L: number): void => {
    const task = this.#current
    if (!task) return
    const mod = this.engine.mod
    const engine = this.engine
    if (engine.memory.max > 0 && !task.abort && !engine.tracedAllocations) {
      const used = engine.memoryUsed()
      if (used > engine.memory.max) {
        if (L === task.thread.L && mod._lua_isyieldable(L)) {
          task.memoryCheck = true
          mod._lua_yieldk(L, 0, 0, 0)
          return
        }
        // Inside a C call: garbage cannot be told apart here, so only stop a task far over the cap.
        if (used > 2 * engine.memory.max) task.abort = 'memory'
      }
    }
    const slice = performance.now() - task.sliceStart
    if (!task.abort && (task.cpuBudget === 0 || slice + task.cpu <= task.cpuBudget)) {
      // Within budget: end the slice if it ran long and this is a point where the task can yield.
      if (this.#sliceMs > 0 && slice > this.#sliceMs && L === task.thread.L && mod._lua_isyieldable(L)) {
        mod._lua_yieldk(L, 0, 0, 0)
      }
      return
    }
    task.abort ??= 'cpu'
    if (L === task.thread.L && mod._lua_isyieldable(L)) {
      mod._lua_yieldk(L, 0, 0, 0)
      return
    }
    // Not at a point where the task can yield (inside a user coroutine or a C call): raise instead.
    // From now on the hook fires at every instruction of the task's thread (and of coroutines it
    // creates), so a pcall that catches this cannot loop back into the C call before the hook gets
    // a chance further out, where the task can yield.
    if (!task.thread.tight) {
      task.thread.tight = true
      mod._lua_sethook(task.thread.L, this.#hookPtr, LUA_MASKCOUNT, 1)
    }
    this.engine.bytes.pushString(L, abortMessage(task.abort))
    mod._lua_error(L)
  }

  close (): void {
    if (this.#sweep) clearInterval(this.#sweep)
    for (const task of this.#tasks.values()) this.#abort(task, 'killed', 'engine closed')
  }
}

function abortMessage (reason: AbortReason): string {
  if (reason === 'cpu') return 'cpu time limit exceeded'
  if (reason === 'timeout') return 'request time limit exceeded'
  if (reason === 'memory') return 'not enough memory'
  return 'task was stopped'
}

function luaErrorMessage (engine: LuaEngine, T: number): string {
  const v = engine.toJs(T, -1)
  if (typeof v === 'string') return v
  if (Buffer.isBuffer(v)) return v.toString('latin1')
  if (v === undefined) return 'nil'
  try { return JSON.stringify(v) } catch { return String(v) }
}
