/*
 * evlua_json: a Lua table written as JSON text, in C, for a table body (src/lua-bridge/engine.ts).
 * It writes exactly what src/lua-bridge/json-writer.ts writes (JSON.stringify of the table as
 * engine.toJs gives it) and gives up (-1) wherever that is not certain, leaving the table to the
 * JS writer: lists with entries outside the array part, keys that are not strings or that start
 * with a digit (JS moves such keys to the front of an object), floats it cannot print as JS does,
 * values other than strings, numbers, booleans, platform.null (a NULL light userdata) and tables.
 *
 * The text is left in a buffer of ours; evlua_json_out() tells where, and whether any byte had its
 * high bit set (then JS checks it is UTF-8).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lobject.h"
#include "lstate.h"
#include "ltable.h"

#define MAX_DEPTH 64
#define START 4096
#define KEEP (64 * 1024)

static struct {
  char *buf;
  uint32_t high;
} out;
static size_t cap, len;

static int room (size_t n) {
  if (len + n <= cap) return 1;
  size_t bigger = cap * 2 > len + n ? cap * 2 : len + n;
  char *b = realloc(out.buf, bigger);
  if (!b) return 0;
  out.buf = b;
  cap = bigger;
  return 1;
}

static int put (const char *s, size_t n) {
  if (!room(n)) return 0;
  memcpy(out.buf + len, s, n);
  len += n;
  return 1;
}

static int put_byte (char c) {
  if (!room(1)) return 0;
  out.buf[len++] = c;
  return 1;
}

/* Bytes a JSON string takes as they are: all but the control characters, '"' and '\\'. */
static const unsigned char PLAIN[256] = {
  [0x20 ... 0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0xff] = 1,  /* '"' is 0x22, '\\' 0x5c */
};

/* A JSON string: escapes as JSON.stringify writes them, other bytes as they are. */
static int put_string (const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  if (!room(n * 6 + 2)) return 0;
  char *o = out.buf + len;
  unsigned high = 0;
  *o++ = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char b = (unsigned char)s[i];
    high |= b;
    if (PLAIN[b]) { *o++ = (char)b; continue; }
    *o++ = '\\';
    switch (b) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '\b': *o++ = 'b'; break;
      case '\t': *o++ = 't'; break;
      case '\n': *o++ = 'n'; break;
      case '\f': *o++ = 'f'; break;
      case '\r': *o++ = 'r'; break;
      default: *o++ = 'u'; *o++ = '0'; *o++ = '0'; *o++ = hex[b >> 4]; *o++ = hex[b & 15];
    }
  }
  *o++ = '"';
  len = (size_t)(o - out.buf);
  out.high |= high;
  return 1;
}

static int put_integer (lua_Integer i) {
  char digits[24];
  int n = 0;
  /* as unsigned, so that the most negative integer has a magnitude too */
  lua_Unsigned u = i < 0 ? (lua_Unsigned)0 - (lua_Unsigned)i : (lua_Unsigned)i;
  do { digits[n++] = (char)('0' + u % 10); u /= 10; } while (u);
  if (!room((size_t)n + 1)) return 0;
  if (i < 0) out.buf[len++] = '-';
  while (n) out.buf[len++] = digits[--n];
  return 1;
}

/*
 * A float as JS's String(x) prints it, for the floats whose shortest decimal has at most 6
 * digits after the point and fewer than 16 in all (prices, scores, 1.5, 0.1): the smallest k for
 * which some integer m gives m / 10^k == x, and m has fewer than 16 digits, makes the decimal
 * m·10^-k the shortest one that reads back as x, which is what JS prints. Other floats: 0 (JS does).
 */
static int put_float (double x) {
  if (!isfinite(x)) return 0;
  if (x == 0) return put_byte('0');  /* -0 too, as JS */
  double ax = fabs(x);
  if (ax >= 1e15 || ax < 1e-6) return 0;
  double p = 1;
  for (int k = 0; k <= 6; k++, p *= 10) {
    double m = nearbyint(ax * p);
    if (m >= 1e15) return 0;
    if (m / p != ax) continue;
    uint64_t whole = (uint64_t)m;
    uint64_t scale = (uint64_t)p;
    if (x < 0 && !put_byte('-')) return 0;
    if (!put_integer((lua_Integer)(whole / scale))) return 0;
    if (k == 0) return 1;
    char frac[8];
    uint64_t f = whole % scale;
    for (int d = k - 1; d >= 0; d--) { frac[d] = (char)('0' + f % 10); f /= 10; }
    return put_byte('.') && put(frac, (size_t)k);
  }
  return 0;
}

static int put_table (const Table *t, int depth);

static int put_value (const TValue *v, int depth) {
  switch (ttypetag(v)) {
    case LUA_VFALSE: return put("false", 5);
    case LUA_VTRUE: return put("true", 4);
    case LUA_VNUMINT: return put_integer(ivalue(v));
    case LUA_VNUMFLT: return put_float(fltvalue(v));
    case LUA_VSHRSTR: case LUA_VLNGSTR: return put_string(getstr(tsvalue(v)), tsslen(tsvalue(v)));
    case LUA_VTABLE: return put_table(hvalue(v), depth + 1);
    case LUA_VLIGHTUSERDATA: return pvalue(v) == NULL && put("null", 4);
    default: return 0;
  }
}

static int put_table (const Table *t, int depth) {
  if (depth > MAX_DEPTH) return 0;
  unsigned size = luaH_realasize(t);
  unsigned n = 0;
  while (n < size && !isempty(&t->array[n])) n++;
  for (unsigned i = n; i < size; i++) if (!isempty(&t->array[i])) return 0;
  int nodes = sizenode(t);
  int hashed = 0;
  for (int i = 0; i < nodes; i++) if (!isempty(gval(gnode(t, i)))) hashed++;
  if (n > 0) {
    if (hashed > 0) return 0;
    if (!put_byte('[')) return 0;
    for (unsigned i = 0; i < n; i++) {
      if (i > 0 && !put_byte(',')) return 0;
      if (!put_value(&t->array[i], depth)) return 0;
    }
    return put_byte(']');
  }
  if (!put_byte('{')) return 0;
  int first = 1;
  for (int i = 0; i < nodes; i++) {
    const Node *nd = gnode(t, i);
    if (isempty(gval(nd))) continue;
    if (!keyisshrstr(nd) && keytt(nd) != ctb(LUA_VLNGSTR)) return 0;
    const TString *key = keystrval(nd);
    const char *k = getstr(key);
    size_t klen = tsslen(key);
    if (klen > 0 && k[0] >= '0' && k[0] <= '9') return 0;
    if (!first && !put_byte(',')) return 0;
    first = 0;
    if (!put_string(k, klen) || !put_byte(':')) return 0;
    if (!put_value(gval(nd), depth)) return 0;
  }
  return put_byte('}');
}

/* The JSON text of the table at t (lua_topointer): its length, or -1 when the JS writer must do it. */
int evlua_json (const void *t) {
  if (cap > KEEP) { free(out.buf); out.buf = NULL; cap = 0; }
  if (!out.buf) {
    out.buf = malloc(START);
    if (!out.buf) return -1;
    cap = START;
  }
  len = 0;
  out.high = 0;
  return put_table((const Table *)t, 0) ? (int)len : -1;
}

/* Where evlua_json leaves its text: { char *buf; uint32_t high } (read after each call). */
void *evlua_json_out (void) {
  return &out;
}
