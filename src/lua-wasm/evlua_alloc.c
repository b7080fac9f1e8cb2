/*
 * Lua's allocator (luaL_newstate's, through small-alloc.patch): the small blocks most of a request's
 * objects are (tables, their nodes, short strings, closures, call frames) are kept, once freed, on a
 * free list per size class and handed out again from there, in a few instructions instead of
 * dlmalloc's and dlfree's bookkeeping. Lua tells the allocator a block's size when it frees or
 * resizes it, so the class of a block needs no header.
 *
 * A class keeps at most CACHE_BYTES of free blocks; beyond that they go back to dlmalloc, as do
 * all of them when dlmalloc runs out (before Lua is told the allocation failed).
 */
#include <stdlib.h>
#include <string.h>

#define GRAIN 8                          /* dlmalloc's alignment here: the classes keep it */
#define SMALL_MAX 256
#define CLASSES (SMALL_MAX / GRAIN + 1)  /* class c holds blocks of c * GRAIN bytes; 0 is unused */
#define CACHE_BYTES (256 * 1024)

typedef struct FreeBlock { struct FreeBlock *next; } FreeBlock;

static FreeBlock *free_blocks[CLASSES];
static size_t cached_bytes[CLASSES];

static unsigned class_of (size_t size) { return (unsigned)((size + GRAIN - 1) / GRAIN); }

/* Every cached block back to dlmalloc: what it needs to try again when it has run out. */
static void release_cache (void) {
  for (unsigned c = 1; c < CLASSES; c++) {
    FreeBlock *b = free_blocks[c];
    while (b) {
      FreeBlock *next = b->next;
      free(b);
      b = next;
    }
    free_blocks[c] = NULL;
    cached_bytes[c] = 0;
  }
}

static void *fresh (size_t size) {
  void *p = malloc(size);
  if (p == NULL) {
    release_cache();
    p = malloc(size);
  }
  return p;
}

static void *take (size_t size) {
  if (size > SMALL_MAX) return fresh(size);
  unsigned c = class_of(size);
  FreeBlock *b = free_blocks[c];
  if (b == NULL) return fresh((size_t)c * GRAIN);
  free_blocks[c] = b->next;
  cached_bytes[c] -= (size_t)c * GRAIN;
  return b;
}

static void give_back (void *p, size_t size) {
  if (size > SMALL_MAX) { free(p); return; }
  unsigned c = class_of(size);
  if (cached_bytes[c] >= CACHE_BYTES) { free(p); return; }
  FreeBlock *b = (FreeBlock *)p;
  b->next = free_blocks[c];
  free_blocks[c] = b;
  cached_bytes[c] += (size_t)c * GRAIN;
}

/* A lua_Alloc: with ptr NULL, osize is the kind of object to make, not a size. */
void *evlua_alloc (void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (ptr == NULL) return nsize == 0 ? NULL : take(nsize);
  if (nsize == 0) {
    give_back(ptr, osize);
    return NULL;
  }
  if (osize > SMALL_MAX && nsize > SMALL_MAX) {
    void *p = realloc(ptr, nsize);
    if (p == NULL) {
      release_cache();
      p = realloc(ptr, nsize);
    }
    return p;
  }
  if (osize <= SMALL_MAX && nsize <= SMALL_MAX && class_of(osize) == class_of(nsize)) return ptr;
  void *p = take(nsize);
  if (p == NULL) return NULL;  /* the old block stays as it was, as Lua expects */
  memcpy(p, ptr, osize < nsize ? osize : nsize);
  give_back(ptr, osize);
  return p;
}
