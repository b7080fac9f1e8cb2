// Streaming request bodies through real sockets: stream_post_param(s) and stream_request_body with
// Moonbridge's exact call sequence, process_request_body / defer_reading / consume_input, the lazy
// processing rules, and a 200 MB upload whose memory use stays flat.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { buildServer } from '../src/cli/server.ts'
import type { EvluaConfigInput } from '../src/index.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const APP = join(ROOT, 'test/fixtures/apps/http')

async function start (t: TestContext, config: EvluaConfigInput = {}): Promise<string> {
  const { app } = await buildServer({ dir: APP, config: { log: { level: 'silent' }, ...config } })
  t.after(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

interface Call { tag: string, n: number, len?: number, field?: string | null, meta?: Record<string, string | null> }

test('stream_post_param(s): meta with the first chunk, then chunks, then one call without arguments', async (t) => {
  const base = await start(t)
  const big = randomBytes(300_000)
  const fd = new FormData()
  fd.append('name', 'kept')
  fd.append('file', new Blob([big], { type: 'application/octet-stream' }), 'big.bin')
  fd.append('part_1', 'p1')
  fd.append('part_x', 'not matched by ^part_%d+$')
  fd.append('file', new Blob([]), 'empty.bin')
  fd.append('part_22', '')
  const res = await fetch(`${base}/stream/log`, { method: 'POST', body: fd })
  assert.equal(res.status, 200)
  const { calls, params, streamed_in_params: streamedInParams } = await res.json() as { calls: Call[], params: Record<string, string>, streamed_in_params: boolean }

  // the 300 kB file: first call (chunk, "file", meta), then (chunk) calls, then ()
  const fileCalls: Call[] = []
  while (calls.length > 0 && calls[0].tag === 'file') fileCalls.push(calls.shift()!)
  assert.deepEqual(fileCalls[0], {
    tag: 'file', n: 3, len: fileCalls[0].len, field: 'file',
    meta: { field_name: 'file', file_name: 'big.bin', content_type: 'application/octet-stream' }
  })
  assert.ok(fileCalls.length >= 3, 'a 300 kB file arrives in several chunks')
  for (const c of fileCalls.slice(1, -1)) {
    assert.equal(c.n, 1, 'later chunks come alone, without field name or metadata')
    assert.ok(c.len! > 0, 'later chunks are never empty')
  }
  assert.deepEqual(fileCalls.at(-1), { tag: 'file', n: 0 })
  assert.equal(fileCalls.slice(0, -1).reduce((sum, c) => sum + c.len!, 0), big.length)

  // a text field matched by the pattern, then the empty file, then an empty matched field
  assert.deepEqual(calls, [
    { tag: 'pattern', n: 3, len: 2, field: 'part_1', meta: { field_name: 'part_1', file_name: null, content_type: null } },
    { tag: 'pattern', n: 0 },
    { tag: 'file', n: 3, len: 0, field: 'file', meta: { field_name: 'file', file_name: 'empty.bin', content_type: 'application/octet-stream' } },
    { tag: 'file', n: 0 },
    { tag: 'pattern', n: 3, len: 0, field: 'part_22', meta: { field_name: 'part_22', file_name: null, content_type: null } },
    { tag: 'pattern', n: 0 }
  ])
  // streamed fields are not kept in post_params; the others are
  assert.deepEqual(params, { name: 'kept', part_x: 'not matched by ^part_%d+$' })
  assert.equal(streamedInParams, false)
})

test('stream_post_param: a 5 MB file reassembled from its chunks is byte-exact', async (t) => {
  const base = await start(t)
  const data = randomBytes(5 * 1024 * 1024)
  const fd = new FormData()
  fd.append('file', new Blob([data]), 'five.bin')
  const res = await fetch(`${base}/stream/collect`, { method: 'POST', body: fd })
  const back = Buffer.from(await res.arrayBuffer())
  assert.equal(sha256(back), sha256(data))
  assert.ok(Number(res.headers.get('x-calls')) > 2)
})

test('stream_post_params on an urlencoded body: each matched field is one chunk, then the end call', async (t) => {
  const base = await start(t)
  const res = await fetch(`${base}/stream/log`, { method: 'POST', body: new URLSearchParams([['part_1', 'a b'], ['name', 'n'], ['part_2', '']]) })
  const { calls, params } = await res.json() as { calls: Call[], params: Record<string, string> }
  assert.deepEqual(calls, [
    { tag: 'pattern', n: 3, len: 3, field: 'part_1', meta: { field_name: 'part_1', file_name: null, content_type: null } },
    { tag: 'pattern', n: 0 },
    { tag: 'pattern', n: 3, len: 0, field: 'part_2', meta: { field_name: 'part_2', file_name: null, content_type: null } },
    { tag: 'pattern', n: 0 }
  ])
  assert.deepEqual(params, { name: 'n' })
})

test('stream_request_body: every chunk of the raw body, no call without arguments; body is gone after', async (t) => {
  const base = await start(t)
  const data = randomBytes(3 * 1024 * 1024)
  const res = await fetch(`${base}/stream/raw`, { method: 'POST', body: data, headers: { 'content-type': 'application/octet-stream' } })
  assert.equal(res.status, 200)
  assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(data))
  assert.ok(Number(res.headers.get('x-chunks')) > 1)
  assert.equal(res.headers.get('x-nil-calls'), '0')
  assert.match(res.headers.get('x-body-after')!, /^error: .*already been streamed/)
})

test('stream_request_body of a multipart body gives its raw bytes', async (t) => {
  const base = await start(t)
  const fd = new FormData()
  fd.append('file', new Blob([randomBytes(70_000)]), 'x.bin')
  const sent = Buffer.from(await new Response(fd).arrayBuffer())
  const boundary = sent.subarray(2, sent.indexOf('\r\n')).toString()
  const res = await fetch(`${base}/stream/raw`, { method: 'POST', body: sent, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } })
  assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(sent))
})

test('reading post_params processes the body: registering a stream handler afterwards is an error', async (t) => {
  const base = await start(t)
  const fd = new FormData()
  fd.append('name', 'x')
  const got = await (await fetch(`${base}/stream/late`, { method: 'POST', body: fd })).json()
  assert.equal(got.name, 'x')
  assert.equal(got.ok, false)
  assert.match(got.err, /cannot register a POST field stream handler: the request body has already been processed/)
  assert.equal(got.ok2, false)

  const afterBody = await (await fetch(`${base}/stream/late?first=body`, { method: 'POST', body: fd })).json()
  assert.equal(afterBody.ok, false)
  assert.match(afterBody.err, /cannot register a POST field stream handler: the request body has already been read/)
})

test('when the stream handlers run: process_request_body, send_status, handler return, defer_reading', async (t) => {
  const base = await start(t)
  const file = randomBytes(50_000)
  const form = (): FormData => {
    const fd = new FormData()
    fd.append('file', new Blob([file]), 'f.bin')
    return fd
  }
  const explicit = await (await fetch(`${base}/stream/order?when=process`, { method: 'POST', body: form() })).json()
  assert.deepEqual(explicit.log, ['meta', 'end', 'after process'])

  const onStatus = await fetch(`${base}/stream/order?when=status`, { method: 'POST', body: form() })
  assert.equal(await onStatus.text(), 'meta,end,after status', 'send_status processes the body first')

  const deferred = await fetch(`${base}/stream/order?when=deferred`, { method: 'POST', body: form() })
  assert.equal(await deferred.text(), 'after status', 'defer_reading: send_status leaves the body alone')

  const returned = await fetch(`${base}/stream/order`, { method: 'POST', body: form() })
  assert.equal(await returned.text(), 'returned before processing')
  const probe = await (await fetch(`${base}/limits/probe`)).json()
  assert.equal(probe.bytes, file.length, 'handlers still registered when the handler returns get their data')
})

test('defer_reading: the client reads the first answer before it has sent its body', async (t) => {
  const base = await start(t)
  const req = http.request(`${base}/stream/defer`, {
    method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': '100000' }
  })
  t.after(() => req.destroy())
  req.write(randomBytes(1000))
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  res.setEncoding('utf8')
  const [first] = await once(res, 'data') as [string]
  assert.equal(first, 'early\n', 'answered while 99 kB of the body are still unsent')
  let rest = ''
  res.on('data', (c: string) => { rest += c })
  req.end(randomBytes(99_000))
  await once(res, 'end')
  assert.equal(rest, 'total 100000\n')
})

test('consume_input: form stream handlers run, the rest is read and dropped', async (t) => {
  const base = await start(t)
  const fd = new FormData()
  fd.append('name', 'kept')
  fd.append('file', new Blob([randomBytes(12_345)]), 'c.bin')
  const got = await (await fetch(`${base}/stream/consume`, { method: 'POST', body: fd })).json()
  assert.deepEqual(got, { seen: 12_345, body_readable: false, params: { name: 'kept' } })
  const raw = await (await fetch(`${base}/stream/consume`, { method: 'POST', body: randomBytes(5000), headers: { 'content-type': 'application/octet-stream' } })).json()
  assert.deepEqual(raw, { seen: 0, body_readable: false, params: {} })
})

test('a body read in part, or not at all, leaves the keep-alive connection usable', async (t) => {
  const base = await start(t)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => agent.destroy())
  const post = (path: string, body: Buffer, type = 'application/octet-stream'): Promise<{ text: string, reused: boolean }> =>
    new Promise((resolve, reject) => {
      const req = http.request(`${base}${path}`, { method: 'POST', agent, headers: { 'content-type': type, 'content-length': body.length } }, (res) => {
        let text = ''
        res.setEncoding('utf8').on('data', (c: string) => { text += c }).on('end', () => resolve({ text, reused: req.reusedSocket }))
      })
      req.on('error', reject)
      req.end(body)
    })
  const first = await post('/stream/partial', randomBytes(2 * 1024 * 1024))
  assert.match(first.text, /^read \d+$/)
  const second = await post('/stream/ignore', randomBytes(1024 * 1024))
  assert.equal(second.text, 'ignored')
  const fd = new FormData()
  fd.append('file', new Blob([randomBytes(1024 * 1024)]), 'x')
  const multipart = Buffer.from(await new Response(fd).arrayBuffer())
  const boundary = multipart.subarray(2, multipart.indexOf('\r\n')).toString()
  const third = await post('/stream/partial', multipart, `multipart/form-data; boundary=${boundary}`)
  assert.match(third.text, /^read \d+$/)
  const fourth = await post('/form/echo', Buffer.from('a=1'), 'application/x-www-form-urlencoded')
  assert.equal(JSON.parse(fourth.text).params.a, '1')
  assert.ok(second.reused && third.reused && fourth.reused, 'the same connection served every request')
})

test('a 200 MB upload streamed through a Lua callback: memory stays flat (peak RSS measured)', { skip: !existsSync('/proc/self/status') && 'needs /proc (Linux) to read the peak RSS' }, async (t) => {
  // the server runs in a child process so its peak RSS (VmHWM) is its own
  const script = `
    import { buildServer } from ${JSON.stringify(join(ROOT, 'src/cli/server.ts'))}
    const { app } = await buildServer({ dir: ${JSON.stringify(APP)}, config: { log: { level: 'warn' }, http: { body_limit: 300 * 1024 * 1024 } } })
    await app.listen({ port: 0, host: '127.0.0.1' })
    process.stdout.write('http://127.0.0.1:' + app.server.address().port + '\\n')`
  const child = spawn(join(ROOT, 'node_modules/.bin/node'), ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = once(child, 'exit')
  t.after(async () => { child.kill('SIGKILL'); await exited })
  const [line] = await once(child.stdout, 'data') as [Buffer]
  const url = String(line).trim()
  const memory = (field: 'VmRSS' | 'VmHWM'): number => {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024
  }
  await fetch(`${url}/stream/count`, { method: 'POST', body: 'warm up' })
  const baseline = memory('VmRSS')

  const size = 200 * 1024 * 1024
  const block = randomBytes(64 * 1024)
  const boundary = 'big-upload-boundary'
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`)
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  async function * body (): AsyncGenerator<Buffer> {
    yield head
    for (let sent = 0; sent < size; sent += block.length) yield block
    yield tail
  }
  const result = await new Promise<{ status: number, json: { bytes: number, chunks: number, max_chunk: number } }>((resolve, reject) => {
    const req = http.request(`${url}/stream/count`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + size + tail.length }
    }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (c: string) => { text += c }).on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }))
    })
    req.on('error', reject)
    Readable.from(body()).pipe(req)
  })
  assert.equal(result.status, 200)
  assert.equal(result.json.bytes, size)
  assert.ok(result.json.max_chunk <= 256 * 1024, `chunks stay small (largest ${result.json.max_chunk} bytes)`)
  const growth = memory('VmHWM') - baseline
  t.diagnostic(`200 MB upload: peak RSS ${(growth / 1048576).toFixed(1)} MB above the ${(baseline / 1048576).toFixed(1)} MB baseline, ${result.json.chunks} chunks`)
  assert.ok(growth < 120 * 1024 * 1024, `peak RSS grew by ${(growth / 1048576).toFixed(1)} MB for a 200 MB upload`)
})

test('a client that goes away mid-body: the read fails, the server keeps serving', async (t) => {
  const base = await start(t)
  const boundary = 'abort-boundary'
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n`)
  for (const [path, type, first] of [
    ['/stream/count', `multipart/form-data; boundary=${boundary}`, head],
    ['/form/echo', `multipart/form-data; boundary=${boundary}`, head],
    ['/limits/body', 'application/octet-stream', Buffer.alloc(0)],
    ['/stream/raw', 'application/octet-stream', Buffer.alloc(0)]
  ] as Array<[string, string, Buffer]>) {
    const req = http.request(`${base}${path}`, { method: 'POST', headers: { 'content-type': type, 'content-length': 1024 * 1024 } })
    req.on('error', () => {})
    req.write(Buffer.concat([first, randomBytes(100_000)]))
    // the handler is waiting for more of the body once the server has read what was sent
    await new Promise((resolve) => setTimeout(resolve, 50))
    const closed = new Promise((resolve) => req.on('close', resolve))
    req.destroy()
    await closed
  }
  const after = await fetch(`${base}/api`)
  assert.equal(await after.text(), 'api route')
})
