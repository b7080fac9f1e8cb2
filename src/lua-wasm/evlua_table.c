/*
 * evlua_newfrom: a new table with the keys of a template table (in the registry at ref) in place
 * and the template's metatable, filled with the n values on top of the stack (popped): the i-th
 * value goes under the template's i-th listed key (its array part lists its keys in order); a nil
 * leaves its key empty. request.ts makes each request table so (src/lua/request.lua's templates):
 * filling a key that is already in place is a store, where a key that is not costs an insertion
 * (hashing, finding a free node, perhaps a resize), and a store from Lua code a trip through
 * luaV_finishset.
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
#include "lgc.h"

void evlua_newfrom (lua_State *L, int ref, int n) {
  int base = lua_gettop(L) - n;  /* the values are base+1 .. base+n */
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);  /* the template, kept on the stack for the collector */
  const Table *from = (const Table *)lua_topointer(L, -1);
  lua_createtable(L, 0, 0);
  Table *t = (Table *)lua_topointer(L, -1);
  if (from != NULL && !isdummy(from)) {
    int size = sizenode(from);
    Node *nodes = luaM_newvector(L, size, Node);  /* out of memory: Lua's error, as lua_createtable's */
    memcpy(nodes, from->node, (size_t)size * sizeof(Node));
    for (int i = 0; i < size; i++) setempty(gval(&nodes[i]));
    t->node = nodes;
    t->lsizenode = from->lsizenode;
    t->lastfree = nodes + (from->lastfree - from->node);
    unsigned listed = luaH_realasize(from);
    for (int i = 0; i < n && (unsigned)i < listed; i++) {
      const TValue *key = &from->array[i];
      TValue *v = s2v(L->ci->func + base + 1 + i);
      if (ttisnil(v) || !ttisshrstring(key)) continue;
      const TValue *slot = luaH_getshortstr(t, tsvalue(key));
      if (isabstkey(slot)) continue;
      setobj2t(L, cast(TValue *, slot), v);
    }
    /* a collection step in lua_createtable may have marked t already: then the collector must
       look at it again, as after any store into a black table */
    if (isblack(obj2gco(t))) luaC_barrierback_(L, obj2gco(t));
  }
  if (lua_getmetatable(L, -2)) lua_setmetatable(L, -2);
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
}
