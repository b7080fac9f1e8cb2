import type { Readable } from 'node:stream'
import { errorCodes, type FastifyInstance, type FastifyRequest } from 'fastify'

declare module 'fastify' {
  interface FastifyRequest {
    /** The raw body bytes, when they had to be read before the handler (a route with a body schema). */
    evluaRawBody: Buffer | undefined
    /** The unread body stream, when the body is left for Lua to read (the usual case). */
    evluaPayload: Readable | undefined
  }
}

const { FST_ERR_CTP_BODY_TOO_LARGE } = errorCodes

/** Bytes a request may still hand over; shared by every reader of one request body. */
export interface Budget { left: number }

/** Takes a body's chunks one by one as they arrive; a throw stops the reading with that error. */
export type ChunkSink = (chunk: Buffer) => void

/** Where a body's chunks come from, pulled one at a time. */
export interface ChunkSource {
  /** Whether all of the body has been read. */
  readonly done: boolean
  /** Whether any of the body has been read. */
  readonly started: boolean
  /** The next chunk, `undefined` at the end; synchronous when the data is already there. */
  next (): Buffer | undefined | Promise<Buffer | undefined>
  /** The rest of the body in one buffer. */
  readAll (): Promise<Buffer>
  /** The rest of the body, each chunk handed to `sink` as it arrives (nothing joined). */
  readInto (sink: ChunkSink): Promise<void>
  /** Stop reading and let the rest of the input flow away. */
  discard (): void
}

/**
 * Lua's `request.body`, forms and stream handlers read the body themselves, lazily: nothing is read
 * before the handler unless Fastify must validate it (a route with a `body` schema: then it is read
 * here, and JSON is parsed). Only this plugin's context changes: the host app's JS routes keep
 * their own parsers. A declared Content-Length over the route's body limit is a 413 before any of
 * the body is read, as in Fastify (multipart bodies too: @fastify/multipart's parser is not used).
 */
export function bodyParsers (fastify: FastifyInstance): void {
  fastify.decorateRequest('evluaRawBody', undefined)
  fastify.decorateRequest('evluaPayload', undefined)
  fastify.removeAllContentTypeParsers()
  // every body of every content type (multipart included) comes here, and only requests with a body
  fastify.addContentTypeParser('*', (request, payload, done) => {
    const declared = request.headers['content-length']
    if (declared !== undefined && Number(declared) > request.routeOptions.bodyLimit) {
      done(new FST_ERR_CTP_BODY_TOO_LARGE(), undefined)
      return
    }
    if (!request.routeOptions.schema?.body) {
      request.evluaPayload = payload
      done(null, undefined)
      return
    }
    const limit = { left: request.routeOptions.bodyLimit }
    new BodyStream(payload, limit).readAll().then((raw) => {
      request.evluaRawBody = raw
      return parseForValidation(request, raw)
    }).then((body) => { done(null, body) }, (err: Error) => { done(err, undefined) })
  })
}

function parseForValidation (request: FastifyRequest, raw: Buffer): unknown {
  const type = request.headers['content-type'] ?? ''
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) return raw
  if (raw.length === 0) return undefined
  try {
    return JSON.parse(raw.toString('utf8'))
  } catch (err) {
    throw Object.assign(err as Error, { statusCode: 400 })
  }
}

/** Chunks joined into one buffer (without a copy when there is only one). */
export function join (chunks: Buffer[]): Buffer {
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
}

/** A client that went away in the middle of its request body. */
function aborted (): Error {
  return Object.assign(new Error('the client closed the connection before the end of the request body'), { statusCode: 400 })
}

/**
 * Pulls a stream's chunks one at a time (paused mode, so nothing beyond what the kernel and the
 * stream's own buffer hold is in memory), counting them against the request's body limit: the
 * chunk that crosses the limit is never handed out, it fails with Fastify's 413 instead.
 */
export class BodyStream implements ChunkSource {
  readonly #stream: Readable
  readonly #budget: Budget
  #started = false
  #done = false
  #error: Error | undefined

  constructor (stream: Readable, budget: Budget) {
    this.#stream = stream
    this.#budget = budget
  }

  get done (): boolean { return this.#done }
  get started (): boolean { return this.#started }

  next (): Buffer | undefined | Promise<Buffer | undefined> {
    if (this.#error) throw this.#error
    if (this.#done) return undefined
    const stream = this.#stream
    this.#watch()
    const chunk = stream.read() as Buffer | null
    if (chunk !== null) return this.#count(chunk)
    if (stream.readableEnded) return this.#end()
    if (stream.destroyed) throw this.#fail(aborted())
    return new Promise((resolve, reject) => {
      const settle = (): void => {
        stream.off('readable', settle)
        stream.off('end', settle)
        stream.off('close', settle)
        stream.off('error', settle)
        try {
          resolve(this.next())
        } catch (err) {
          reject(err as Error)
        }
      }
      stream.on('readable', settle)
      stream.on('end', settle)
      stream.on('close', settle)
      stream.on('error', settle)
    })
  }

  /** The rest in one buffer. */
  readAll (): Promise<Buffer> {
    const chunks: Buffer[] = []
    return this.readInto((c) => { chunks.push(c) }).then(() => join(chunks))
  }

  /** The rest, chunk by chunk into sink: the stream flows (no per-chunk promise), the budget still counts. */
  readInto (sink: ChunkSink): Promise<void> {
    if (this.#error) return Promise.reject(this.#error)
    if (this.#done) return Promise.resolve()
    this.#watch()
    const stream = this.#stream
    for (let c = stream.read() as Buffer | null; c !== null; c = stream.read() as Buffer | null) {
      try {
        sink(this.#count(c))
      } catch (err) {
        return Promise.reject(this.#fail(err as Error))
      }
    }
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        stream.off('data', onData)
        stream.off('end', onEnd)
        stream.off('error', onError)
        stream.off('close', onClose)
      }
      const fail = (err: Error): void => { cleanup(); reject(this.#fail(err)) }
      const onData = (chunk: Buffer): void => {
        this.#budget.left -= chunk.length
        if (this.#budget.left < 0) {
          fail(new FST_ERR_CTP_BODY_TOO_LARGE())
          return
        }
        try {
          sink(chunk)
        } catch (err) {
          fail(err as Error)
        }
      }
      const onEnd = (): void => {
        cleanup()
        try {
          this.#end()
        } catch (err) {
          reject(err as Error)
          return
        }
        resolve()
      }
      const onError = (err: Error): void => { fail(Object.assign(err, { statusCode: 400 })) }
      const onClose = (): void => { if (!stream.readableEnded) fail(aborted()) }
      if (stream.readableEnded) { onEnd(); return }
      if (stream.destroyed) { fail(aborted()); return }
      stream.on('data', onData)
      stream.on('end', onEnd)
      stream.on('error', onError)
      stream.on('close', onClose)
      stream.resume()
    })
  }

  discard (): void {
    if (this.#done) return
    this.#done = true
    const stream = this.#stream
    if (!stream.destroyed && !stream.readableEnded) stream.resume()
  }

  /** Once reading starts: remember a stream error (and never leave one unhandled). */
  #watch (): void {
    if (this.#started) return
    this.#started = true
    this.#stream.on('error', (err) => { this.#error ??= Object.assign(err, { statusCode: 400 }) })
  }

  #count (chunk: Buffer): Buffer {
    this.#budget.left -= chunk.length
    if (this.#budget.left < 0) throw this.#fail(new FST_ERR_CTP_BODY_TOO_LARGE())
    return chunk
  }

  #end (): undefined {
    this.#done = true
    if ((this.#stream as Readable & { truncated?: boolean }).truncated) throw this.#fail(new FST_ERR_CTP_BODY_TOO_LARGE())
    return undefined
  }

  #fail (err: Error): Error {
    this.#error ??= err
    this.discard()
    return this.#error
  }
}

/** A body that was already read (a route with a body schema): one chunk, then the end. */
export class BufferSource implements ChunkSource {
  #buffer: Buffer | undefined
  #started = false

  constructor (buffer: Buffer) {
    this.#buffer = buffer.length > 0 ? buffer : undefined
  }

  get done (): boolean { return this.#buffer === undefined }
  get started (): boolean { return this.#started }

  next (): Buffer | undefined {
    this.#started = true
    const b = this.#buffer
    this.#buffer = undefined
    return b
  }

  async readAll (): Promise<Buffer> { return this.next() ?? Buffer.alloc(0) }

  async readInto (sink: ChunkSink): Promise<void> {
    const b = this.next()
    if (b) sink(b)
  }

  discard (): void { this.#buffer = undefined }
}
