import { readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { JsFunction } from './values.ts'
import { multi } from './values.ts'

/** Where the Lua halves of the built-in modules live. */
export const LUA_SOURCE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'lua')

/** Read one of our own Lua files from src/lua. */
export function luaSource (file: string): string {
  return readFileSync(join(LUA_SOURCE_DIR, file), 'utf8')
}

export interface LuaModuleDefinition {
  /** The name `require` finds it by. */
  name: string
  /** JS functions; Lua sees each as a plain function returning `value` or `nil, err`. */
  functions?: Record<string, JsFunction>
  /**
   * The Lua half, run once on first require with `(fns, name)` where fns holds the wrapped
   * functions; it returns the module. Without it the module is the table of functions.
   */
  source?: string
  /** Name shown in tracebacks for the Lua half. */
  chunkName?: string
  /** Also make the module a global of this name once loaded at start-up. */
  global?: string
}

/** The modules plugins have registered, and the app's own files that `require` reads from disk. */
export class ModuleRegistry {
  readonly #defined = new Map<string, LuaModuleDefinition>()
  readonly #disabled = new Map<string, string>()
  readonly #searchDirs: string[]
  readonly #appDir: string

  constructor (appDir: string, searchPatterns = ['lib/?.lua', 'lib/?/init.lua', 'routes/?.lua', 'routes/?/init.lua']) {
    this.#appDir = appDir
    this.#searchDirs = searchPatterns
  }

  define (def: LuaModuleDefinition): void {
    this.#defined.set(def.name, def)
    this.#disabled.delete(def.name)
  }

  /** Make `require(name)` fail with a hint on how to enable the plugin that provides it. */
  disable (name: string, hint: string): void {
    if (!this.#defined.has(name)) this.#disabled.set(name, hint)
  }

  get (name: string): LuaModuleDefinition | undefined {
    return this.#defined.get(name)
  }

  definitions (): Iterable<LuaModuleDefinition> {
    return this.#defined.values()
  }

  /** What `require` learns about a non-file module: builtin (source, chunk, fn ids) or disabled. */
  find (name: string, functionIds: (def: LuaModuleDefinition) => Record<string, number>): unknown {
    const def = this.#defined.get(name)
    if (def) return multi('builtin', def.source, def.chunkName ?? `[evlua] ${name}`, functionIds(def))
    const hint = this.#disabled.get(name)
    if (hint) return multi('disabled', `module '${name}' is not enabled: ${hint}`)
    return undefined
  }

  /** Find a module file on the real disk: source and a chunk name relative to the app dir. */
  findFile (name: string): unknown {
    if (typeof name !== 'string' || name.includes('..') || name.includes('\0') || name.startsWith('/')) {
      return multi(undefined, undefined, `\n\tno file for module '${name}' (invalid name)`)
    }
    const path = name.replaceAll('.', '/')
    const tried: string[] = []
    for (const pattern of this.#searchDirs) {
      const rel = pattern.replace('?', path)
      const file = join(this.#appDir, rel)
      let source: Buffer
      try {
        source = readFileSync(file)
      } catch {
        tried.push(`\n\tno file '${rel}'`)
        continue
      }
      return multi(source, relative(this.#appDir, file).split(sep).join('/'))
    }
    return multi(undefined, undefined, tried.join(''))
  }
}
