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
const MULTIPART = /^multipart\/form-data\s*(?:;|$)/i

/** The kind of body a request carries (passed to Lua with the request line). */
export function bodyKind (request: FastifyRequest): BodyKind {
  const buffered = request.evluaRawBody !== undefined
  if (request.evluaPayload === undefined && !buffered) return 'none'
  const type = request.headers['content-type'] ?? ''
  // a multipart body that was read for schema validation can only be raw bytes
  if (MULTIPART.test(type)) return buffered ? 'raw' : 'multipart'
  return URLENCODED.test(type) ? 'form' : 'raw'
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
  const { runtime } = fastify.evlua
  await registerMultipart(fastify)

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
      part_rest: (id: number) => { const i = input(id); return i.guard(() => i.multipart.rest()) },
      // the whole form in one call (no stream handlers): count, then names, values, file names, types
      read_form: (id: number) => {
        const i = input(id)
        return i.guard(async () => {
          const names: unknown[] = []
          const values: Buffer[] = []
          const fileNames: unknown[] = []
          const types: unknown[] = []
          for (let part = await i.multipart.nextPart(); part; part = await i.multipart.nextPart()) {
            const value = await i.multipart.rest()
            if (part.name === undefined) continue
            names.push(part.name)
            values.push(value)
            fileNames.push(part.fileName ?? false)
            types.push(part.contentType ?? false)
          }
          return multi(names.length, names, values, fileNames, types)
        })
      }
    }
  })
}

export default fp(formsPlugin, { name: 'evlua-forms', fastify: '5.x' })
