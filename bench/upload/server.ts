/**
 * The two servers of the upload benchmark, one per process:
 *   node bench/upload/server.ts lua    Fastify + evlua serving bench/upload/app (routes/upload.lua)
 *   node bench/upload/server.ts twin   plain Fastify + @fastify/multipart doing the same work in JS
 * Each listens on 127.0.0.1, a free port, and prints its URL as the only stdout line.
 */
import Fastify from 'fastify'
import multipart from '@fastify/multipart'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import evlua from '../../src/index.ts'

const which = process.argv[2]
const app = Fastify({ logger: false })
if (which === 'lua') {
  await app.register(evlua, { dir: fileURLToPath(new URL('./app', import.meta.url)) })
} else if (which === 'twin') {
  await app.register(multipart, { limits: { fileSize: 16 * 1024 * 1024 } })
  app.post('/upload', async (request) => {
    let name: unknown
    let fileName: string | undefined
    let size = 0
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        size = (await part.toBuffer()).length
        fileName = part.filename
      } else if (part.fieldname === 'name') {
        name = part.value
      }
    }
    return { name, file_name: fileName, size }
  })
} else {
  process.stderr.write('usage: node bench/upload/server.ts lua|twin\n')
  process.exit(2)
}
await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}\n`)

const stop = (): void => { app.close().then(() => process.exit(0), () => process.exit(1)) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
