import { PassThrough } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'

/** One HTTP exchange as the Lua request object sees it: Fastify's request and reply, never handed to Lua. */
export interface Exchange {
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  /** The response body stream once Lua has started streaming (send_data / finish_headers). */
  stream: PassThrough | undefined
  /** Multipart or other parsed POST data, once processed. */
  post: unknown
}

/** Exchanges in flight, by the id Lua holds. Lua never gets a JS object, only this number. */
export class Exchanges {
  readonly #byId = new Map<number, Exchange>()
  #next = 1

  open (request: FastifyRequest, reply: FastifyReply): number {
    const id = this.#next++
    this.#byId.set(id, { request, reply, stream: undefined, post: undefined })
    return id
  }

  get (id: number): Exchange {
    const ex = this.#byId.get(id)
    if (!ex) throw new Error('the request has already ended')
    return ex
  }

  close (id: number): void {
    this.#byId.delete(id)
  }
}

const SINGLE = new Set(['content-type', 'content-length', 'location', 'etag', 'last-modified'])

/** Apply a flat [name, value, name, value...] list to a reply (repeated names append, e.g. Set-Cookie). */
export function applyHeaders (reply: FastifyReply, list: unknown): void {
  if (!Array.isArray(list)) return
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = String(list[i])
    const value = String(list[i + 1])
    const existing = reply.getHeader(name)
    if (existing === undefined || SINGLE.has(name.toLowerCase())) reply.header(name, value)
    else reply.header(name, ([] as unknown[]).concat(existing, value))
  }
}
