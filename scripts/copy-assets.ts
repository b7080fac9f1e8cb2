// Puts what the compiled code loads at run time beside it in dist/ (or the folder given): the Lua
// sources of the built-in modules and the Lua wasm build (src/lua-wasm).
import { cpSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))
const out = resolve(root, process.argv[2] ?? 'dist')
cpSync(resolve(root, 'src/lua'), resolve(out, 'lua'), { recursive: true })
for (const file of ['lua.cjs', 'lua.d.cts', 'lua.wasm']) {
  cpSync(resolve(root, 'src/lua-wasm', file), resolve(out, 'lua-wasm', file))
}
