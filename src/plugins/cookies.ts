import cookie from '@fastify/cookie'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { isLuaString, toText } from '../lua-bridge/values.ts'

/** Lua's cookie option names (snake_case, as in the rest of the Lua API) and @fastify/cookie's. */
const OPTIONS: Record<string, string> = {
  path: 'path',
  domain: 'domain',
  max_age: 'maxAge',
  expires: 'expires',
  http_only: 'httpOnly',
  secure: 'secure',
  same_site: 'sameSite',
  partitioned: 'partitioned',
  priority: 'priority'
}

/** @fastify/cookie's parser (request.cookies) and serializer (request:set_cookie). */
export interface CookieCodec {
  parse (header: string): Record<string, string | undefined>
  serialize (name: string, value: string, options: Record<string, unknown>): string
}

/**
 * The host app's @fastify/cookie functions when it registered the plugin, else those of our own
 * copy, registered in a context of its own: there its onSend hook (which would run on every reply
 * of every Lua route) serves no route.
 */
export async function cookieCodec (fastify: FastifyInstance): Promise<CookieCodec> {
  if (fastify.hasDecorator('parseCookie')) return { parse: fastify.parseCookie, serialize: fastify.serializeCookie }
  let codec: CookieCodec | undefined
  await fastify.register(async (own) => {
    await own.register(cookie, { hook: false })
    codec = { parse: own.parseCookie, serialize: own.serializeCookie }
  })
  return codec!
}

/** The Set-Cookie header value for `request:set_cookie(name, value, options)`, via @fastify/cookie. */
export function serializeCookie (codec: CookieCodec, name: unknown, value: unknown, options: unknown): string {
  const opts: Record<string, unknown> = {}
  if (options !== undefined && options !== null && typeof options === 'object') {
    for (const [key, v] of Object.entries(options)) {
      const name = OPTIONS[key]
      if (name === undefined) throw new Error(`unknown cookie option '${key}' (known: ${Object.keys(OPTIONS).join(', ')})`)
      opts[name] = isLuaString(v) ? toText(v) : v
    }
  }
  if (typeof opts.maxAge === 'number') opts.maxAge = Math.trunc(opts.maxAge)
  // expires: seconds since the epoch (as platform.now() gives), or an HTTP date string
  if (typeof opts.expires === 'number') opts.expires = new Date(opts.expires * 1000)
  else if (typeof opts.expires === 'string') opts.expires = new Date(opts.expires)
  return codec.serialize(toText(name as string), isLuaString(value) ? toText(value) : String(value), opts)
}

/** `evlua.cookies`: what request:set_cookie uses (request.cookies itself comes from @fastify/cookie's parser). */
async function cookiesPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.evlua.runtime.define({
    name: 'evlua.cookies',
    functions: {
      serialize: (name: unknown, value: unknown, options: unknown) => serializeCookie(fastify.evluaCookies, name, value, options)
    }
  })
}

export default fp(cookiesPlugin, { name: 'evlua-cookies', fastify: '5.x' })
