import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { luaSource } from '../lua-bridge/modules.ts'
import { multi } from '../lua-bridge/values.ts'
import { BodyStream, BufferSource, type Budget, type ChunkSource } from './body.ts'
import type { ExchangeInput, Exchanges } from './exchange.ts'
import { MultipartInput, registerMultipart } from './multipart.ts'

/** What Lua's request body holds, as forms.lua decides how to process it. */
export type BodyKind = 'none' | 'raw' | 'form' | 'multipart'

const URLENCODED = /^application\/x-www-form-urlencoded\s*(?:;|$)/i

/** The kind of body a request carries (passed to Lua with the request line). */
export function bodyKind (request: FastifyRequest): BodyKind {
  if (request.isMultipart?.()) return 'multipart'
  if (request.evluaPayload === undefined && request.evluaRawBody === undefined) return 'none'
  return URLENCODED.test(request.headers['content-type'] ?? '') ? 'form' : 'raw'
}

/** One request body as Lua reads it: raw chunks, or multipart parts. */
class RequestInput implements ExchangeInput {
  readonly #request: FastifyRequest
  readonly #budget: Budget
  #raw: ChunkSource | undefined
  #multipart: MultipartInput | undefined
  error: Error | undefined

  constructor (request: FastifyRequest) {
    this.#request = request
    this.#budget = { left: request.routeOptions.bodyLimit }
  }

  get raw (): ChunkSource {
    if (this.#raw) return this.#raw
    const r = this.#request
    if (r.evluaRawBody !== undefined) this.#raw = new BufferSource(r.evluaRawBody)
    else this.#raw = new BodyStream(r.evluaPayload ?? r.raw, this.#budget)
    return this.#raw
  }

  get multipart (): MultipartInput {
    this.#multipart ??= new MultipartInput(this.#request, this.#budget)
    return this.#multipart
  }

  /** Run a read; a failure is remembered (it decides the response) and reaches Lua as nil, err. */
  guard<T> (read: () => T | Promise<T>): T | Promise<T> {
    let out: T | Promise<T>
    try {
      out = read()
    } catch (err) {
      throw this.#remember(err as Error)
    }
    if (out instanceof Promise) return out.catch((err: Error) => { throw this.#remember(err) })
    return out
  }

  #remember (err: Error): Error {
    this.error ??= err
    return err
  }

  close (): void {
    if (this.#raw?.started) this.#raw.discard()
    this.#multipart?.discard()
  }
}

export interface FormsOptions { exchanges: Exchanges }

/**
 * The JS half of request body processing (forms.lua is the Lua half): Lua pulls the raw body or the
 * multipart parts chunk by chunk; each call that has to wait suspends only the calling coroutine.
 */
async function formsPlugin (fastify: FastifyInstance, { exchanges }: FormsOptions): Promise<void> {
  const { runtime, config } = fastify.evlua
  if (!process.env.EVLUA_NO_MP) await registerMultipart(fastify, config.http.body_limit)

  const input = (id: number): RequestInput => {
    const ex = exchanges.get(id)
    if (!ex.input) ex.input = new RequestInput(ex.request)
    return ex.input as RequestInput
  }

  runtime.define({
    name: 'evlua.forms',
    chunkName: '[evlua] forms.lua',
    source: luaSource('forms.lua'),
    functions: {
      read_all: (id: number) => { const i = input(id); return i.guard(() => i.raw.readAll()) },
      next_chunk: (id: number) => { const i = input(id); return i.guard(() => i.raw.next()) },
      drain: (id: number) => {
        const i = input(id)
        return i.guard(async () => {
          const source = i.raw
          while (await source.next() !== undefined);
          return true
        })
      },
      next_part: (id: number) => {
        const i = input(id)
        return i.guard(async () => {
          const part = await i.multipart.nextPart()
          return part ? multi(true, part.name, part.fileName, part.contentType) : undefined
        })
      },
      part_chunk: (id: number) => { const i = input(id); return i.guard(() => i.multipart.chunk()) },
      part_rest: (id: number) => { const i = input(id); return i.guard(() => i.multipart.rest()) }
    }
  })
}

export default fp(formsPlugin, { name: 'evlua-forms', fastify: '5.x' })
