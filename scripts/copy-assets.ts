// Puts what the compiled code loads at run time beside it in dist/: the Lua sources of the built-in
// modules and the Lua wasm build (src/lua-wasm).
import { cpSync } from 'node:fs'

const root = new URL('../', import.meta.url)
cpSync(new URL('src/lua/', root), new URL('dist/lua/', root), { recursive: true })
for (const file of ['lua.cjs', 'lua.d.cts', 'lua.wasm']) {
  cpSync(new URL(`src/lua-wasm/${file}`, root), new URL(`dist/lua-wasm/${file}`, root))
}
