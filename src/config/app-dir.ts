import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { EVLUA_ERR_APP_DIR } from '../errors.ts'

/** Throw EVLUA_ERR_APP_DIR unless `dir` holds a routes/ directory. */
export async function checkAppDir (dir: string): Promise<void> {
  const routes = await stat(join(dir, 'routes')).catch(() => undefined)
  if (routes === undefined || !routes.isDirectory()) throw new EVLUA_ERR_APP_DIR(dir)
}
