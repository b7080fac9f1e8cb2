import { PassThrough } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { SlotTable } from '../lua-bridge/slots.ts'

/** One HTTP exchange as the Lua request object sees it: Fastify's request and reply, never handed to Lua. */
export interface Exchange {
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  /** The Lua route serving it. */
  readonly route: number
  /** The response body stream once Lua has started streaming (send_data / finish_headers). */
  stream: PassThrough | undefined
  /** The request body as Lua reads it, once it starts reading (see forms.ts). */
  input: ExchangeInput | undefined
}

/** A request body being read for Lua. */
export interface ExchangeInput {
  /** The failure that should decide the response (413 too large, 400 malformed), if reading failed. */
  readonly error: Error | undefined
  /** The exchange is over: let any unread input flow away. */
  close (): void
}

/** Exchanges in flight, by the id Lua holds. Lua never gets a JS object, only this number. */
export class Exchanges {
  readonly #byId = new SlotTable<Exchange>()

  open (request: FastifyRequest, reply: FastifyReply, route: number): number {
    return this.#byId.add({ request, reply, route, stream: undefined, input: undefined })
  }

  get (id: number): Exchange {
    const ex = this.#byId.get(id)
    if (!ex) throw new Error('the request has already ended')
    return ex
  }

  has (id: number): boolean {
    return this.#byId.get(id) !== undefined
  }

  close (id: number): void {
    const ex = this.#byId.get(id)
    if (!ex) return
    this.#byId.delete(id)
    ex.input?.close()
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
    // Fastify's reply.header appends a repeated Set-Cookie by itself.
    if (existing === undefined || SINGLE.has(name.toLowerCase()) || name.toLowerCase() === 'set-cookie') reply.header(name, value)
    else reply.header(name, ([] as unknown[]).concat(existing, value))
  }
}
