import { LuaEngine, LUA_PENDING } from './engine.ts'
import { ModuleRegistry, luaSource, type LuaModuleDefinition } from './modules.ts'
import { Scheduler, type RunOptions, type StartedTask } from './scheduler.ts'
import { LUA_NULL, type JsFunction, type LuaArguments, type TaskHandle } from './values.ts'

export interface RuntimeOptions {
  /** The application directory: `require` reads lib/ and routes/ under it. */
  appDir: string
  /** Lua heap cap in bytes; 0 = none. */
  memoryLimit?: number
  /** Lua instructions between CPU checks. */
  hookInterval?: number
  /** Default budgets for tasks. */
  cpuTimeoutMs?: number
  wallTimeoutMs?: number
  /** Told when the engine had to be replaced. */
  onRecycle?: (err: unknown) => void
}

type BootStep = (runtime: LuaRuntime) => void

/**
 * The Lua side of one process: an engine, its scheduler, the module registry, and the boot steps
 * (bootstrap, module globals, route loading) that rebuild a fresh engine if one is ever corrupted.
 */
export class LuaRuntime {
  readonly modules: ModuleRegistry
  readonly options: RuntimeOptions
  engine!: LuaEngine
  scheduler!: Scheduler
  #internal = 0
  #internalFns = new Map<string, number>()
  #functionIds = new WeakMap<LuaModuleDefinition, Record<string, number>>()
  #bootSteps: BootStep[] = []
  #closed = false
  #generation = 0

  static async create (options: RuntimeOptions): Promise<LuaRuntime> {
    const rt = new LuaRuntime(options)
    await rt.#boot()
    return rt
  }

  private constructor (options: RuntimeOptions) {
    this.options = options
    this.modules = new ModuleRegistry(options.appDir)
  }

  /** Bumped each time the engine is replaced: Lua refs from an older generation are void. */
  get generation (): number { return this.#generation }

  async #boot (freshModule = false): Promise<void> {
    const engine = await LuaEngine.create({ memoryLimit: this.options.memoryLimit ?? 0, freshModule })
    this.engine = engine
    this.#generation++
    this.#functionIds = new WeakMap()
    this.#internalFns.clear()
    this.scheduler = new Scheduler(engine, {
      hookInterval: this.options.hookInterval,
      onCorrupted: (err) => { void this.recycle(err) }
    })
    const core = {
      find_module: engine.registerFunction('find_module', (name: string) =>
        this.modules.find(name, (def) => this.#idsFor(def))),
      find_file: engine.registerFunction('find_file', (name: string) => this.modules.findFile(name))
    }
    const L = engine.L
    const jsfunction = engine.makeCFunction(engine.jsfunction)
    engine.load(L, luaSource('bootstrap.lua'), '=[evlua] bootstrap.lua')
    engine.mod._lua_pushcclosure(L, jsfunction, 0)
    engine.push(L, LUA_NULL)
    engine.push(L, LUA_PENDING)
    engine.push(L, core)
    if (engine.mod._lua_pcallk(L, 4, 1, 0, 0, 0) !== 0) {
      const msg = String(engine.toJs(L, -1))
      engine.mod._lua_settop(L, 0)
      throw new Error(`bootstrap failed: ${msg}`)
    }
    this.#internal = engine.ref(L)
    for (const step of this.#bootSteps) step(this)
  }

  /**
   * Replace the engine with a fresh one (on a new wasm instance) and replay the boot steps. Tasks
   * still running on the old engine are stopped. Called when a JS exception escaped through Lua.
   */
  async recycle (reason: unknown): Promise<void> {
    if (this.#closed) return
    this.options.onRecycle?.(reason)
    const old = this.engine
    const oldScheduler = this.scheduler
    try {
      await this.#boot(true)
    } catch (err) {
      this.options.onRecycle?.(err)
      return
    }
    oldScheduler.close()
    try { old.close() } catch {}
  }

  #idsFor (def: LuaModuleDefinition): Record<string, number> {
    let ids = this.#functionIds.get(def)
    if (!ids) {
      ids = {}
      for (const [name, fn] of Object.entries(def.functions ?? {})) {
        ids[name] = this.engine.registerFunction(`${def.name}.${name}`, fn)
      }
      this.#functionIds.set(def, ids)
    }
    return ids
  }

  /** Register a Lua module (see LuaModuleDefinition). */
  define (def: LuaModuleDefinition): void {
    this.modules.define(def)
  }

  /**
   * Add a step run now and again on every fresh engine (define globals, load routes...).
   * Steps run on the main state: they must not yield.
   */
  onBoot (step: BootStep): void {
    this.#bootSteps.push(step)
    step(this)
  }

  /** A registry ref to a function of bootstrap's internal table. */
  internal (name: string): number {
    let ref = this.#internalFns.get(name)
    if (ref === undefined) {
      ref = this.field(this.#internal, name)
      this.#internalFns.set(name, ref)
    }
    return ref
  }

  /** A registry ref to field `name` of the table in registry slot tableRef. */
  field (tableRef: number, name: string): number {
    const { engine } = this
    engine.pushRef(engine.L, tableRef)
    engine.bytes.pushString(engine.L, name)
    engine.mod._lua_rawget(engine.L, -2)
    const ref = engine.ref(engine.L)
    engine.mod._lua_settop(engine.L, 0)
    return ref
  }

  /** Register a JS function and get a registry ref to the Lua function that calls it. */
  wrapFunction (name: string, fn: JsFunction): number {
    const id = this.engine.registerFunction(name, fn)
    return this.callMain(this.internal('wrap'), [id])
  }

  /** Call a function on the main state (no yields allowed); returns a ref to its first result. */
  callMain (fnRef: number, args: unknown[]): number {
    const { engine } = this
    const L = engine.L
    engine.pushRef(L, fnRef)
    for (const a of args) engine.push(L, a)
    if (engine.mod._lua_pcallk(L, args.length, 1, 0, 0, 0) !== 0) {
      const msg = String(engine.toJs(L, -1))
      engine.mod._lua_settop(L, 0)
      throw new Error(msg)
    }
    return engine.ref(L)
  }

  /** Call a function on the main state (no yields); returns its first n results as JS values. */
  callMainMulti (fnRef: number, args: unknown[], n: number): unknown[] {
    const { engine } = this
    const L = engine.L
    engine.pushRef(L, fnRef)
    for (const a of args) engine.push(L, a)
    if (engine.mod._lua_pcallk(L, args.length, n, 0, 0, 0) !== 0) {
      const msg = String(engine.toJs(L, -1))
      engine.mod._lua_settop(L, 0)
      throw new Error(msg)
    }
    const out: unknown[] = []
    try {
      for (let i = 1; i <= n; i++) out.push(engine.toJs(L, i))
    } finally {
      engine.mod._lua_settop(L, 0)
    }
    return out
  }

  /** Run a Lua function (registry ref) as a task. */
  run (fnRef: number, args: unknown[], options?: RunOptions): Promise<unknown[]> {
    return this.start(fnRef, args, options).done
  }

  /**
   * Run a Lua function as a task; gives its id at once. Budgets the options leave out are the
   * runtime's; tag is attached to the task for options.onSettle.
   */
  start (fnRef: number, args: unknown[] | LuaArguments, options?: RunOptions, tag?: unknown): StartedTask {
    const complete = options !== undefined && options.cpuTimeoutMs !== undefined && options.wallTimeoutMs !== undefined
    return this.scheduler.start(fnRef, args, complete ? options : {
      ...options,
      cpuTimeoutMs: options?.cpuTimeoutMs ?? this.options.cpuTimeoutMs,
      wallTimeoutMs: options?.wallTimeoutMs ?? this.options.wallTimeoutMs
    }, tag)
  }

  /** Make `require(moduleName)` a global called name (on every engine). */
  setGlobal (name: string, moduleName: string): void {
    this.engine.unref(this.callMain(this.internal('set_global'), [name, moduleName]))
  }

  /** Refuse new globals from now on (after the app has loaded). */
  lockGlobals (): void {
    this.engine.unref(this.callMain(this.internal('lock_globals'), []))
  }

  /** The task whose Lua code is calling into JS right now. */
  get currentTask (): TaskHandle | undefined {
    return this.engine.context?.task
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.scheduler.close()
    this.engine.close()
  }
}
