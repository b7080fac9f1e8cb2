#!/usr/bin/env bash
# Builds lua.cjs + lua.wasm: Lua 5.4 compiled to WebAssembly with native wasm exceptions for
# setjmp/longjmp, and one small patch (below). wasmoon's build compiles Lua's longjmp (every error and every coroutine yield) as
# a thrown JS exception caught by JS trampolines around each protected call; with wasm exceptions
# both stay inside wasm (PERFORMANCE.md). Everything else matches wasmoon's release build: -O3,
# default luaconf (64-bit integers as BigInt), growable memory and function table.
#
# Needs Debian's emscripten and the Lua 5.4 source package (both from Debian's archive):
#   apt-get install emscripten dpkg-dev   # plus a deb-src line for bookworm main
#   src/lua-wasm/build.sh                 # fetches the source with `apt-get source lua5.4`
# or LUA_SRC=/path/to/lua-5.4.x/src src/lua-wasm/build.sh
# EMCC_EXTRA adds flags (e.g. --profiling-funcs, to see Lua's C functions in a CPU profile) and
# OUT writes elsewhere (keep such builds out of src/lua-wasm).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ -z "${LUA_SRC:-}" ]; then
  (cd "$work" && apt-get source -qq lua5.4 >/dev/null)
  root="$(ls -d "$work"/lua5.4-*/)"
  # Debian's module paths name its multiarch folders: keep upstream's (the engine sets its own paths)
  patch -s -R -p1 -d "$root" < "$root/debian/patches/0002-lua-modules-paths.patch"
  LUA_SRC="$root/src"
fi

functions=(
  malloc free realloc
  luaL_newstate lua_newstate lua_close luaL_openlibs lua_newthread lua_resetthread
  lua_gettop lua_settop lua_checkstack lua_pushvalue lua_type lua_isinteger lua_tonumberx
  lua_tointegerx lua_toboolean lua_tolstring lua_touserdata lua_rawlen lua_topointer
  lua_pushnil lua_pushnumber lua_pushinteger lua_pushlstring lua_pushboolean
  lua_pushlightuserdata lua_pushcclosure lua_createtable lua_rawset lua_rawget lua_rawseti
  lua_rawgeti lua_next lua_resume lua_status lua_yieldk lua_isyieldable lua_error lua_pcallk
  lua_sethook luaL_ref luaL_unref luaL_loadbufferx luaL_traceback luaL_where lua_concat
  lua_rotate lua_copy luaL_tolstring lua_setmetatable
  evlua_json evlua_json_out evlua_yieldk evlua_returnyields evlua_newfrom
)
exported="$(printf "'_%s'," "${functions[@]}")"

# Our C beside Lua's: evlua_json.c (a table body as JSON text, read from Lua's own structures),
# evlua_alloc.c (Lua's allocator), evlua_table.c (a new table with a template's keys in place),
# evlua_tempret.c (emscripten's setTempRet0/getTempRet0 in wasm rather than imported from JS).
# Our changes to Lua, applied to a copy of the source:
# - count-hook.patch: the count hook (the CPU budget and time slices) counts loop back-edges and
#   function entries instead of instructions. Stock Lua turns on the interpreter's per-instruction
#   trap for any hook, and takes the slow path of every return: with only a count hook set, the
#   patched VM runs as with none, and still reaches the hook in every endless loop or recursion.
# - yield-return.patch: evlua_yieldk, a yield from a C function called by Lua code at the
#   coroutine's base level that returns instead of unwinding the C stack (a longjmp, which
#   WebAssembly makes an exception: its unwinding cost more than the rest of a yield and resume).
# - small-alloc.patch: luaL_newstate allocates through evlua_alloc.c, which keeps freed small
#   blocks on free lists by size (Lua frees most of what a request made soon after).
# - new-table.patch: sizing a new table (a constructor, lua_createtable) allocates its parts at
#   once, without the general resize's moving of old entries (there are none).
mkdir -p "$work/patched/src"
cp "$LUA_SRC"/*.c "$LUA_SRC"/*.h "$work/patched/src/"
patch -s -p1 -d "$work/patched" < "$here/count-hook.patch"
patch -s -p1 -d "$work/patched" < "$here/yield-return.patch"
patch -s -p1 -d "$work/patched" < "$here/small-alloc.patch"
patch -s -p1 -d "$work/patched" < "$here/new-table.patch"

sources=()
for f in "$work/patched/src"/*.c; do
  case "$(basename "$f")" in lua.c|luac.c) ;; *) sources+=("$f") ;; esac
done

NODE_PATH=/usr/share/nodejs emcc -O3 ${EMCC_EXTRA:-} -fwasm-exceptions -sSUPPORT_LONGJMP=wasm \
  -sWASM_BIGINT -sALLOW_MEMORY_GROWTH -sALLOW_TABLE_GROWTH -sTOTAL_STACK=1MB \
  -sMODULARIZE -sEXPORT_NAME=createLuaModule -sENVIRONMENT=node \
  -sINCOMING_MODULE_JS_API="['wasmBinary']" \
  -sEXPORTED_FUNCTIONS="[${exported%,}]" \
  -sEXPORTED_RUNTIME_METHODS="['addFunction','removeFunction']" \
  -sNODEJS_CATCH_EXIT=0 -sNODEJS_CATCH_REJECTION=0 \
  -I "$work/patched/src" -o "$work/lua.cjs" "${sources[@]}" "$here/evlua_json.c" "$here/evlua_alloc.c" "$here/evlua_table.c" "$here/evlua_tempret.c"

out="${OUT:-$here}"
mkdir -p "$out"
cp "$work/lua.cjs" "$work/lua.wasm" "$out/"
echo "built $out/lua.cjs and lua.wasm from $(basename "$(dirname "$LUA_SRC")")"
