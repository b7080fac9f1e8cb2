/*
 * evlua_newfrom: a new table with the keys of a template table (in the registry at ref) in place,
 * their values empty, and the template's metatable; pushed onto L. request.ts makes each request
 * table so (src/lua/request.lua's templates): filling a key that is already in place is a store,
 * where a key that is not costs an insertion (hashing, finding a free node, perhaps a resize).
 *
 * The hash part is copied as it is: keys and their chain links (offsets between nodes) stay
 * valid in a hash part of the same size. An empty value leaves its key where it is until the
 * collector traverses the table and marks it dead; Lua then treats the node as free, as for any
 * key set to nil.
 */
#include <string.h>

#include "lua.h"
#include "lauxlib.h"
#include "lobject.h"
#include "lstate.h"
#include "ltable.h"
#include "lmem.h"

void evlua_newfrom (lua_State *L, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);  /* the template, kept on the stack for the collector */
  const Table *from = (const Table *)lua_topointer(L, -1);
  lua_createtable(L, 0, 0);
  Table *t = (Table *)lua_topointer(L, -1);
  if (from != NULL && !isdummy(from)) {
    int size = sizenode(from);
    Node *nodes = luaM_newvector(L, size, Node);  /* on failure 't' stays an empty table */
    memcpy(nodes, from->node, (size_t)size * sizeof(Node));
    for (int i = 0; i < size; i++) setempty(gval(&nodes[i]));
    t->node = nodes;
    t->lsizenode = from->lsizenode;
    t->lastfree = nodes + (from->lastfree - from->node);
  }
  if (lua_getmetatable(L, -2)) lua_setmetatable(L, -2);
  lua_copy(L, -1, -2);
  lua_pop(L, 1);
}
