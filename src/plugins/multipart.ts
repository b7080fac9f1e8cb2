import type { FastifyInstance, FastifyRequest } from 'fastify'
import multipart, { type MultipartFile } from '@fastify/multipart'
import { BodyStream, type Budget, type ChunkSink } from './body.ts'

/** One part's header as Lua's post_metadata sees it. */
export interface PartHeader {
  name: string | undefined
  fileName: string | undefined
  contentType: string | undefined
}

/**
 * `multipart/form-data` through @fastify/multipart's parts iterator. Every part (text fields
 * included) comes as a byte stream, so values reach Lua byte-exact and can be streamed. The body
 * limit is enforced by our readers (a file one byte over it is already a 413), so busboy's own limits
 * sit just above it (passed with each parts() call, so a host app's own registration works too).
 *
 * Only the request decorators are taken: the plugin function is applied to a narrow view of our
 * instance that drops its content-type parser (our lazy '*' parser leaves every body unread anyway,
 * see body.ts) and its two hooks, which only clean up the temp files of `saveRequestFiles()`, which
 * evlua never calls, and would cost every Lua request an async onRequest and onResponse hook. Any
 * other use of the instance a future version makes fails loudly at start-up. When the host app has
 * registered @fastify/multipart itself, its decorators are inherited and nothing is added.
 */
export async function registerMultipart (fastify: FastifyInstance): Promise<void> {
  if (fastify.hasRequestDecorator('parts')) return
  const host = {
    initialConfig: fastify.initialConfig,
    addHook: () => host,
    addContentTypeParser: () => host,
    decorate: fastify.decorate.bind(fastify),
    decorateRequest: fastify.decorateRequest.bind(fastify),
    hasRequestDecorator: fastify.hasRequestDecorator.bind(fastify)
  }
  const plugin = (multipart as unknown as { default: (f: unknown, o: unknown, done: (err?: Error) => void) => void }).default
  await new Promise<void>((resolve, reject) => { plugin(host, {}, (err) => { if (err) reject(err); else resolve() }) })
}

/** busboy's options for one body: every part a stream, limits just above the body limit. */
function partsOptions (bodyLimit: number): Record<string, unknown> {
  return {
    isPartAFile: () => true,
    limits: { fileSize: bodyLimit + 1, fieldSize: bodyLimit + 1, parts: 1000 }
  }
}

/**
 * A multipart body read part by part, each part chunk by chunk, as Lua asks for them: the parts
 * iterator of @fastify/multipart, with the current part's stream pulled through a BodyStream that
 * counts every part against the one body budget.
 */
export class MultipartInput {
  readonly #request: FastifyRequest
  readonly #budget: Budget
  #parts: AsyncIterator<MultipartFile> | undefined
  #current: BodyStream | undefined
  #done = false

  constructor (request: FastifyRequest, budget: Budget) {
    this.#request = request
    this.#budget = budget
  }

  get started (): boolean { return this.#parts !== undefined }
  get done (): boolean { return this.#done }

  /** The next part's header (its data is read with chunk() / restInto()), or undefined at the end. */
  async nextPart (): Promise<PartHeader | undefined> {
    if (this.#done) return undefined
    const current = this.#current
    if (current && !current.done) await this.#skip(current)
    this.#parts ??= this.#start()
    let step: IteratorResult<MultipartFile>
    try {
      step = await this.#parts.next()
    } catch (err) {
      throw withStatus(err as Error, 400)
    }
    if (step.done) {
      this.#done = true
      this.#current = undefined
      return undefined
    }
    const part = step.value
    this.#current = new BodyStream(part.file, this.#budget)
    return {
      name: part.fieldname,
      fileName: part.filename,
      // busboy says text/plain when a part has no Content-Type; a text field has none
      contentType: part.filename === undefined && part.mimetype === 'text/plain' ? undefined : part.mimetype
    }
  }

  /** The current part's next chunk, or undefined at its end. */
  chunk (): Buffer | undefined | Promise<Buffer | undefined> {
    return this.#current?.next()
  }

  /** The rest of the current part, each chunk into sink as it arrives. */
  restInto (sink: ChunkSink): Promise<void> {
    return this.#current ? this.#current.readInto(sink) : Promise.resolve()
  }

  /** Let the rest of the request body flow away unparsed. */
  discard (): void {
    if (!this.started || this.#done) return
    this.#done = true
    const raw = this.#request.raw
    raw.unpipe()
    if (!raw.destroyed && !raw.readableEnded) raw.resume()
  }

  #start (): AsyncIterator<MultipartFile> {
    const request = this.#request
    // the multipart content-type parser that would set this flag is not used (see registerMultipart)
    if (!request.isMultipart()) request.isMultipart = () => true
    return request.parts(partsOptions(request.routeOptions.bodyLimit))[Symbol.asyncIterator]() as AsyncIterator<MultipartFile>
  }

  async #skip (current: BodyStream): Promise<void> {
    while (await current.next() !== undefined);
  }
}

function withStatus (err: Error, statusCode: number): Error {
  const e = err as Error & { statusCode?: number }
  if (typeof e.statusCode !== 'number') e.statusCode = statusCode
  return e
}
