import type { FastifyInstance } from 'fastify'

/**
 * Lua's `request.body` is the raw bytes, so every body is read as a Buffer. JSON is also parsed,
 * for Fastify's schema validation; a body that is not valid JSON is still a 400, as in Fastify.
 * Only this plugin's context is changed: the host app's JS routes keep their own parsers.
 */
export function bodyParsers (fastify: FastifyInstance): void {
  fastify.decorateRequest('evluaRawBody', undefined)
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const raw = body as Buffer
    request.evluaRawBody = raw
    if (raw.length === 0) { done(null, undefined); return }
    try {
      done(null, JSON.parse(raw.toString('utf8')))
    } catch (err) {
      const e = err as Error & { statusCode?: number }
      e.statusCode = 400
      done(e, undefined)
    }
  })
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    request.evluaRawBody = body as Buffer
    done(null, body)
  })
}
