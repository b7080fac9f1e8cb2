// Types of the emscripten glue made by build.sh (only what src/lua-bridge/lua-api.ts uses).
interface EmscriptenModule {
  asm: Record<string, unknown>
  [key: string]: unknown
}
declare function createLuaModule (options: { wasmBinary: Uint8Array }): Promise<EmscriptenModule>
export = createLuaModule
