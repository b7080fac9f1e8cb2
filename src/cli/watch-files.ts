import { existsSync, watch, type FSWatcher } from 'node:fs'
import { join } from 'node:path'

/** The folders of an application whose changes call for a restart. */
export const WATCHED = ['routes', 'lib', 'config'] as const

// editor droppings: backups, swap and lock files, vim's write test
const NOISE = /(^|[\\/])(\.#[^\\/]*|4913)$|~$|\.sw[a-p]$/

export interface AppWatcher { close: () => void }

/**
 * Call `onChange` with the changed paths (relative to `dir`) once changes under routes/, lib/ or
 * config/ have been quiet for `debounceMs`. A folder created or re-created later is picked up.
 */
export function watchAppFiles (dir: string, onChange: (paths: string[]) => void, debounceMs = 150): AppWatcher {
  const changed = new Set<string>()
  let timer: NodeJS.Timeout | undefined
  const note = (path: string): void => {
    if (NOISE.test(path)) return
    changed.add(path)
    clearTimeout(timer)
    timer = setTimeout(() => {
      const paths = [...changed]
      changed.clear()
      onChange(paths)
    }, debounceMs)
  }

  const folders = new Map<string, FSWatcher>()
  const watchFolder = (name: string): void => {
    folders.get(name)?.close()
    folders.delete(name)
    const path = join(dir, name)
    if (!existsSync(path)) return
    const watcher = watch(path, { recursive: true }, (_event, file) => note(file ? join(name, file) : name))
    watcher.on('error', () => { watcher.close(); folders.delete(name) })
    folders.set(name, watcher)
  }
  for (const name of WATCHED) watchFolder(name)

  // the app dir itself, not recursively: only to see watched folders appear or be replaced
  const top = watch(dir, (event, file) => {
    const name = WATCHED.find((n) => n === file)
    if (event !== 'rename' || name === undefined) return
    watchFolder(name)
    note(name)
  })
  top.on('error', () => top.close())

  return {
    close () {
      clearTimeout(timer)
      top.close()
      for (const watcher of folders.values()) watcher.close()
      folders.clear()
    }
  }
}
