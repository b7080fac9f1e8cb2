import type { FastifyInstance } from 'fastify'
import type { ServerResponse } from 'node:http'

/**
 * Once the app is closing, end each in-flight request's connection with its response.
 * Node's server.close() only closes the connections idle at that moment; a keep-alive connection
 * whose request finishes later would hold close() for http.keep_alive_timeout_ms.
 */
export function closeConnectionsAfterResponses (app: FastifyInstance): void {
  const inFlight = new Set<ServerResponse>()
  app.server.on('request', (_req, res: ServerResponse) => {
    inFlight.add(res)
    res.once('close', () => inFlight.delete(res))
  })
  app.addHook('preClose', (done) => {
    for (const res of inFlight) {
      if (!res.headersSent) res.setHeader('connection', 'close')
      else res.once('finish', () => setImmediate(() => app.server.closeIdleConnections()))
    }
    done()
  })
}
