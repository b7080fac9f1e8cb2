/*
 * evlua_newfrom: a new table with the keys of a template table in place and the template's
 * metatable, filled with the n values on top of the stack (popped, the new table pushed in their
 * place): the i-th value goes under the template's i-th listed key (its array part lists its keys
 * in order); a nil leaves its key empty. The caller keeps the template alive (a registry ref) and
 * passes its address (lua_topointer), and leaves one free stack slot above the values.
 * request.ts makes each request table so, and tables whose keys recur (path parameters, a query,
 * a headers_value view; src/lua-bridge/key-templates.ts): filling a key that is already in place
 * is a store, where a key that is not costs an insertion (hashing, finding a free node, perhaps a
 * resize), and a store from Lua code a trip through luaV_finishset.
 *
 * The hash part is copied as it is: keys and their chain links (offsets between nodes) stay
 * valid in a hash part of the same size. An empty value leaves its key where it is until the
 * collector traverses the table and marks it dead; Lua then treats the node as free, as for any
 * key set to nil. The first use of a template replaces each listed key by the index of its node
 * (the template is never changed otherwise, so its nodes stay where they are): later copies
 * fill by index, without a lookup.
 */
#include "lua.h"
#include "lapi.h"
#include "lobject.h"
#include "lstate.h"
#include "ltable.h"
#include "lmem.h"
#include "lgc.h"
#include "ldo.h"

/* The node index of the template's i-th listed key (a string or a table), or -1. */
static int listed_node (Table *from, unsigned i) {
  TValue *key = &from->array[i];
  if (ttisinteger(key)) return (int)ivalue(key);
  if (ttisnil(key)) return -1;
  const TValue *slot = luaH_get(from, key);
  if (isabstkey(slot)) return -1;
  int at = (int)(cast(const Node *, slot) - from->node);
  setivalue(key, at);
  return at;
}

void evlua_newfrom (lua_State *L, Table *from, int n) {
  ptrdiff_t first = savestack(L, L->top - n);
  Table *t = luaH_new(L);
  sethvalue2s(L, L->top, t);  /* anchored: allocating its nodes may collect */
  api_incr_top(L);
  if (!isdummy(from)) {
    int size = sizenode(from);
    Node *nodes = luaM_newvector(L, size, Node);  /* out of memory: Lua's error, as lua_createtable's */
    const Node *src = from->node;
    for (int i = 0; i < size; i++) {  /* the keys and chain links; the values empty */
      nodes[i].u.key_tt = src[i].u.key_tt;
      nodes[i].u.next = src[i].u.next;
      nodes[i].u.key_val = src[i].u.key_val;
      setempty(gval(&nodes[i]));
    }
    t->node = nodes;
    t->lsizenode = from->lsizenode;
    t->lastfree = nodes + (from->lastfree - from->node);
    unsigned listed = luaH_realasize(from);
    StkId values = restorestack(L, first);
    for (int i = 0; i < n && (unsigned)i < listed; i++) {
      TValue *v = s2v(values + i);
      if (ttisnil(v)) continue;
      int at = listed_node(from, (unsigned)i);
      if (at >= 0) setobj2t(L, gval(&nodes[at]), v);
    }
  }
  if (from->metatable != NULL) {
    t->metatable = from->metatable;
    luaC_checkfinalizer(L, obj2gco(t), from->metatable);
  }
  /* an emergency collection while allocating the nodes may have marked t already: then the
     collector must look at it again, as after any store into a black table */
  if (isblack(obj2gco(t))) luaC_barrierback_(L, obj2gco(t));
  StkId at = restorestack(L, first);
  setobjs2s(L, at, L->top - 1);
  L->top = at + 1;
  luaC_checkGC(L);
}
