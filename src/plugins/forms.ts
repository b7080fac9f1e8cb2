import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { WasmBytes } from '../lua-bridge/chunks.ts'
import type { LuaEngine } from '../lua-bridge/engine.ts'
import { luaSource } from '../lua-bridge/modules.ts'
import { multi, type CallContext } from '../lua-bridge/values.ts'
import { BodyStream, BufferSource, join, type Budget, type ChunkSink, type ChunkSource } from './body.ts'
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

  /** At most how many bytes of body are still to come (from Content-Length; 0 when not declared). */
  readonly remaining = (): number => {
    const limit = this.#request.routeOptions.bodyLimit
    const declared = Math.min(Number(this.#request.headers['content-length']), limit)
    return declared > 0 ? Math.max(0, declared - (limit - this.#budget.left)) : 0
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

/** Up to this size a value is gathered in JS and pushed as usual; past it, in wasm memory. */
const JS_MAX = 64 * 1024

/**
 * Reads whole values for Lua. A large one is gathered in wasm memory as its chunks arrive and
 * becomes a Lua string in one more copy when it is pushed (lua-bridge/chunks.ts), where joining the
 * chunks in JS and pushing the result made three copies and a fresh allocation of the whole size
 * for V8 to collect. A buffer never pushed (its task ended first) is freed when the task ends.
 */
class LuaValues {
  readonly #engine: LuaEngine
  #buffers: WasmBytes[] | undefined
  #ended = false

  constructor (engine: LuaEngine, context: CallContext | undefined) {
    this.#engine = engine
    if (context) context.task.onEnd(() => { this.#ended = true; this.#free() })
    else this.#ended = true
  }

  /**
   * One value, read by `read` (which hands each chunk to the sink it is given): a Buffer when
   * small, else the bytes in wasm memory. `remaining()`: at most how many bytes may follow.
   */
  async read (read: (sink: ChunkSink) => Promise<void>, remaining: () => number): Promise<Buffer | WasmBytes> {
    const chunks: Buffer[] = []
    let size = 0
    let wasm: WasmBytes | undefined
    const sink = (chunk: Buffer): void => {
      if (wasm) { wasm.append(chunk); return }
      chunks.push(chunk)
      size += chunk.length
      if (size <= JS_MAX || this.#ended || this.#engine.closed) return
      wasm = new WasmBytes(this.#engine, size + remaining())
      for (const c of chunks) wasm.append(c)
      chunks.length = 0
    }
    try {
      await read(sink)
    } catch (err) {
      wasm?.free()
      throw err
    }
    if (!wasm) return join(chunks)
    if (this.#ended || this.#engine.closed) {
      // the task is over: nobody will read it
      wasm.free()
      return Buffer.alloc(0)
    }
    ;(this.#buffers ??= []).push(wasm)
    return wasm
  }

  #free (): void {
    const buffers = this.#buffers
    this.#buffers = undefined
    if (buffers) for (const b of buffers) b.free()
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
      read_all (this: CallContext, id: number) {
        const i = input(id)
        const values = new LuaValues(runtime.engine, this)
        return i.guard(() => values.read((sink) => i.raw.readInto(sink), i.remaining))
      },
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
      part_rest (this: CallContext, id: number) {
        const i = input(id)
        const values = new LuaValues(runtime.engine, this)
        return i.guard(() => values.read((sink) => i.multipart.restInto(sink), i.remaining))
      },
      // the whole form in one call (no stream handlers): count, then names, values, file names, types
      read_form (this: CallContext, id: number) {
        const i = input(id)
        const lua = new LuaValues(runtime.engine, this)
        return i.guard(async () => {
          const names: unknown[] = []
          const values: unknown[] = []
          const fileNames: unknown[] = []
          const types: unknown[] = []
          for (let part = await i.multipart.nextPart(); part; part = await i.multipart.nextPart()) {
            const value = await lua.read((sink) => i.multipart.restInto(sink), i.remaining)
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
