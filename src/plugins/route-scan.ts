import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { EVLUA_ERR_ROUTE_CONFLICT, EVLUA_ERR_ROUTE_NAME } from '../errors.ts'

/** One route file and the URL the file router gives it. */
export interface RouteFile {
  /** Path relative to the app dir, with forward slashes (e.g. `routes/users/[id].lua`). */
  file: string
  /** Absolute path. */
  absolute: string
  /** Fastify URL (`/users/:id`, `/files/*`). */
  url: string
  /** Name of the catch-all parameter (`[...path]` → `path`), if any. */
  catchAll?: string
}

const PARAM = /^\[([A-Za-z_][A-Za-z0-9_]*)\]$/
const CATCH_ALL = /^\[\.\.\.([A-Za-z_][A-Za-z0-9_]*)\]$/

/** Scan `<appDir>/routes` into route files (pure: reads the directory, registers nothing). */
export function scanRoutes (appDir: string, routesDir = 'routes'): RouteFile[] {
  const out: RouteFile[] = []
  walk(join(appDir, routesDir), routesDir, [], out)
  const seen = new Map<string, string>()
  for (const r of out) {
    const key = r.url.replace(/:[^/]+/g, ':')
    const prior = seen.get(key)
    if (prior) throw new EVLUA_ERR_ROUTE_CONFLICT(r.url, prior, r.file)
    seen.set(key, r.file)
  }
  return out.sort((a, b) => a.url.localeCompare(b.url))
}

function walk (dir: string, rel: string, segments: string[], out: RouteFile[]): void {
  let names: string[]
  try {
    names = readdirSync(dir).sort()
  } catch {
    return
  }
  for (const name of names) {
    if (name.startsWith('_') || name.startsWith('.')) continue
    const absolute = join(dir, name)
    const relPath = `${rel}/${name}`
    if (statSync(absolute).isDirectory()) {
      const seg = segment(name, relPath)
      if (seg.catchAll) throw new EVLUA_ERR_ROUTE_NAME(relPath, 'a catch-all [...name] can only be a file name: rename the folder')
      walk(absolute, relPath, [...segments, seg.url], out)
      continue
    }
    if (!name.endsWith('.lua')) continue
    const base = name.slice(0, -4)
    if (base === 'index') {
      out.push({ file: relPath, absolute, url: '/' + segments.join('/') })
      continue
    }
    const seg = segment(base, relPath)
    out.push({ file: relPath, absolute, url: '/' + [...segments, seg.url].join('/'), catchAll: seg.catchAll })
  }
}

function segment (name: string, relPath: string): { url: string, catchAll?: string } {
  const catchAll = CATCH_ALL.exec(name)
  if (catchAll) return { url: '*', catchAll: catchAll[1] }
  const param = PARAM.exec(name)
  if (param) return { url: `:${param[1]}` }
  if (/[[\]:*?#]/.test(name)) {
    throw new EVLUA_ERR_ROUTE_NAME(relPath, 'use [name] for a parameter or [...name] for a catch-all (letters, digits and _ only); other names may not hold [ ] : * ? #')
  }
  return { url: name }
}
