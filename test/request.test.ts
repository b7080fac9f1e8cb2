// The Moonbridge request object: its fields, and the response methods (send_status, send_header,
// send_data, finish_headers, flush, finish).
import assert from 'node:assert/strict'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { Socket, type AddressInfo } from 'node:net'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { luaApp } from './helpers/evlua.ts'
import { RouteReads } from '../src/plugins/prefetch.ts'

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

/** A request over a real socket with node:http (which keeps repeated header lines apart). */
function get (url: string, headers: Record<string, string | string[]> = {}): Promise<{ res: IncomingMessage, body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => { resolve({ res, body }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** The values of every line of a header in a raw header list. */
function rawValues (res: IncomingMessage, name: string): string[] {
  const out: string[] = []
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    if (res.rawHeaders[i].toLowerCase() === name) out.push(res.rawHeaders[i + 1])
  }
  return out
}

test('method, path (no leading slash, no query), query, params', async (t) => {
  const { app } = await luaApp(t, 'request')
  const plain = (await app.inject({ url: '/echo' })).json()
  assert.equal(plain.method, 'GET')
  assert.equal(plain.path, 'echo')
  assert.equal(plain.query, '')
  assert.deepEqual(plain.params, {})

  const withQuery = (await app.inject({ method: 'DELETE', url: '/echo?a=b&c=d' })).json()
  assert.equal(withQuery.method, 'DELETE')
  assert.equal(withQuery.path, 'echo')
  assert.equal(withQuery.query, '?a=b&c=d')

  const nested = (await app.inject({ url: '/echo/x/y.txt?z=1' })).json()
  assert.deepEqual(nested, { path: 'echo/x/y.txt', query: '?z=1', params: { rest: 'x/y.txt' } })
})

test('get_params (first value) and get_params_list (repeated keys), URL-decoded', async (t) => {
  const { app } = await luaApp(t, 'request')
  const r = (await app.inject({ url: '/echo?a=1&b=x%20y&a=2&c&d=&e=p+q&%C3%A9=%E2%82%AC' })).json()
  assert.deepEqual(r.get_params, { a: '1', b: 'x y', c: '', d: '', e: 'p q', é: '€' })
  assert.deepEqual(r.get_params_list, { a: ['1', '2'], b: ['x y'], c: [''], d: [''], e: ['p q'], é: ['€'] })
  const none = (await app.inject({ url: '/echo' })).json()
  assert.deepEqual(none.get_params, {})
  assert.deepEqual(none.get_params_list, {})
})

test('post_params and post_params_list for an urlencoded body', async (t) => {
  const { app } = await luaApp(t, 'request')
  const r = await app.inject({
    method: 'POST',
    url: '/post',
    payload: 'name=Bob+Smith&tag=a&tag=b%26c&empty=',
    headers: { 'content-type': 'application/x-www-form-urlencoded' }
  })
  assert.equal(r.statusCode, 200)
  assert.deepEqual(r.json(), {
    post_params: { name: 'Bob Smith', tag: 'a', empty: '' },
    post_params_list: { name: ['Bob Smith'], tag: ['a', 'b&c'], empty: [''] },
    body: 'name=Bob+Smith&tag=a&tag=b%26c&empty='
  })
})

test('body is the raw request body; request:json() decodes it', async (t) => {
  const { app } = await luaApp(t, 'request')
  const echoed = await app.inject({ method: 'POST', url: '/echo', payload: 'raw text\n', headers: { 'content-type': 'text/plain' } })
  assert.equal(echoed.json().body, 'raw text\n')
  const json = await app.inject({ method: 'POST', url: '/json', payload: { a: [1, 2.5, 'x'], b: true } })
  assert.equal(json.statusCode, 200)
  assert.deepEqual(json.json(), { got: { a: [1, 2.5, 'x'], b: true } })
  const bad = await app.inject({ method: 'POST', url: '/json', payload: '{bad', headers: { 'content-type': 'text/plain' } })
  assert.equal(bad.statusCode, 400)
  assert.equal(typeof bad.json().error, 'string')
  assert.equal((await app.inject({ url: '/echo' })).json().body, '')
})

test('cookies and remote_ip', async (t) => {
  const { app } = await luaApp(t, 'request')
  const r = (await app.inject({ url: '/echo', headers: { cookie: 'sid=abc%20d; theme=dark' } })).json()
  assert.deepEqual(r.cookies, { sid: 'abc d', theme: 'dark' })
  assert.equal(r.remote_ip, '127.0.0.1')
  assert.deepEqual((await app.inject({ url: '/echo' })).json().cookies, {})
})

test('headers, headers_value, headers_csv_string, headers_csv_table, headers_flags: case-insensitive', async (t) => {
  const { app } = await luaApp(t, 'request')
  const base = await listen(app)
  // Over a real socket: two X-Multi lines reach the server as two lines.
  const multi = JSON.parse((await get(`${base}/headers?name=X-MULTI&flag=B`, { 'x-multi': ['a, b', 'c'] })).body)
  assert.deepEqual(multi, {
    headers: ['a, b', 'c'],
    value: false,
    csv_string: 'a, b, c',
    csv_table: ['a', 'b', 'c'],
    flag: true,
    upper: true,
    missing: true
  })
  const single = JSON.parse((await get(`${base}/headers?name=x-one&flag=nope`, { 'X-One': 'Single' })).body)
  assert.deepEqual(single, {
    headers: ['Single'], value: 'Single', csv_string: 'Single', csv_table: ['Single'], flag: false, upper: true, missing: true
  })
  const remote = JSON.parse((await get(`${base}/echo`)).body)
  assert.equal(remote.remote_ip, '127.0.0.1')
})

test('get_params and headers_value: the same values when read from JS and when brought along with later requests', async (t) => {
  const { app } = await luaApp(t, 'request')
  const base = await listen(app)
  const asked: string[] = []
  const readHeader = RouteReads.prototype.readHeader
  RouteReads.prototype.readHeader = function (name) { asked.push(name); readHeader.call(this, name) }
  t.after(() => { RouteReads.prototype.readHeader = readHeader })
  const read = async (query: string, headers: Record<string, string | string[]>): Promise<unknown> =>
    JSON.parse((await get(`${base}/reads${query}`, headers)).body)
  const headers = { 'X-One': 'One', 'x-twice': ['1', '2'], 'x-other': 'o' }
  const names = ['connection', 'host', 'x-one', 'x-other', 'x-twice']
  const expected = { q: 'a', one: 'One', upper: 'One', twice: false, absent: true, list: ['a', 'b'], names }

  assert.deepEqual(await read('?q=a&q=b', headers), expected)
  // First request: each name read was asked of JS (X-ONE is x-one, already in the view).
  assert.deepEqual(asked, ['x-one', 'x-twice', 'x-absent'])
  asked.length = 0
  assert.deepEqual(await read('?q=a&q=b', headers), expected)
  assert.deepEqual(asked, ['x-absent'], 'the headers it had read came with the request; only the absent one is asked again')

  // Different values, a header now absent, a query Lua decodes itself (escaped bytes above 0x7f).
  assert.deepEqual(await read('?q=%C3%A9', { 'x-twice': 'once' }), {
    q: 'é', one: null, upper: null, twice: 'once', absent: true, list: ['é'], names: ['connection', 'host', 'x-twice']
  })
  assert.deepEqual(await read('', {}), { q: null, one: null, upper: null, absent: true, list: null, names: ['connection', 'host'] })
})

test('a request table holds just the fields it was given, whatever shape it was made in; the others are built on first read', async (t) => {
  const { app } = await luaApp(t, 'request')
  const read = async (url: string): Promise<unknown> => JSON.parse((await app.inject({ url })).body)
  const later = { keys: '_id,_phase,get_params,method,params,path', id: '7', q: 'x', path: 'shapes/7', ip: true, custom: 'mine', kind: 'none' }
  // The first request brings the path parameters only (a small table); later ones get_params and
  // path too (the eight-key shape, with headers_value and _kind left empty).
  assert.deepEqual(await read('/shapes/7?q=x'), { ...later, keys: '_id,_phase,method,params' })
  assert.deepEqual(await read('/shapes/7?q=x'), later)
  const { q: _, ...noQuery } = later
  assert.deepEqual(await read('/shapes/8'), { ...noQuery, id: '8', path: 'shapes/8' })
})

test('params and get_params: the same tables whatever key lists recur (made from templates) or not', async (t) => {
  const { app } = await luaApp(t, 'request')
  const listing = (entries: Array<[string, string]>): string => entries.map(([k, v]) => `${k}=${v}`).sort().join('&')
  const expected = (a: string, b: string, query: string): unknown => {
    const search = new URLSearchParams(query)
    const first = new Map<string, string>()
    const lists = new Map<string, string[]>()
    for (const [k, v] of search) {
      if (!first.has(k)) first.set(k, v)
      lists.set(k, [...(lists.get(k) ?? []), v])
    }
    const changedQuery = new Map(first).set('added', 'y')
    return {
      params: listing([['a', a], ['b', b]]),
      query: listing([...first]),
      lists: listing([...lists].map(([k, v]) => [k, `[${v.join(',')}]`])),
      changed: `${listing([['a', 'again'], ['b', b], ['extra', 'x']])}|${listing([...changedQuery])}`
    }
  }
  const long = 'k'.repeat(50)
  const many = Array.from({ length: 20 }, (_, i) => `p${i}=${i}`).join('&')
  const queries = [
    'q=1', 'q=2', 'x=1&q=2', 'q=2&x=1', 'q=a&q=b&r=c', '2=two&1=one&b=bee', 'e=', `${long}=long&q=3`,
    many, 'u=%C3%A9t%C3%A9&v=%E2%82%AC', 'one=1', 'two=2', 'three=3', 'q=again'
  ]
  // twice over: the first request of a route reads get_params through JS, later ones bring it along
  for (let round = 0; round < 2; round++) {
    for (const [i, query] of queries.entries()) {
      const res = await app.inject({ url: `/records/a${i}/b${round}?${query}` })
      assert.equal(res.statusCode, 200, res.body)
      assert.deepEqual(res.json(), expected(`a${i}`, `b${round}`, query), query)
    }
  }
})

test('send_status takes a number or a status line; then returning nothing sends it', async (t) => {
  const { app } = await luaApp(t, 'request')
  const n = await app.inject({ url: '/status?s=404' })
  assert.equal(n.statusCode, 404)
  assert.equal(n.headers['x-status'], '404')
  assert.equal(n.body, '')
  const line = await app.inject({ url: '/status?s=' + encodeURIComponent('404 Not Found') })
  assert.equal(line.statusCode, 404)
  assert.equal(line.headers['x-status'], '404 Not Found')
  assert.equal((await app.inject({ url: '/status?s=' + encodeURIComponent('201 Created') })).statusCode, 201)
})

test('send_header may repeat: two Set-Cookie headers arrive as two', async (t) => {
  const { app } = await luaApp(t, 'request')
  const injected = await app.inject({ url: '/cookies' })
  assert.deepEqual(injected.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly'])

  const base = await listen(app)
  const { res, body } = await get(`${base}/cookies`)
  assert.equal(body, 'cookies set')
  assert.deepEqual(rawValues(res, 'set-cookie'), ['a=1; Path=/', 'b=2; HttpOnly'])
  assert.deepEqual(rawValues(res, 'x-twice'), ['one', 'two'])
  const fetched = await fetch(`${base}/cookies`)
  assert.deepEqual(fetched.headers.getSetCookie(), ['a=1; Path=/', 'b=2; HttpOnly'])
  await fetched.text()
})

test('send_data streams: the client reads the first chunk before the handler has finished', async (t) => {
  const { app } = await luaApp(t, 'request')
  const base = await listen(app)
  const res = await fetch(`${base}/stream`)
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('content-type'), 'text/plain')
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let received = ''
  while (received.length < 'first chunk;'.length) {
    const { value, done } = await reader.read()
    assert.ok(!done, 'the response ended before the handler was released')
    received += decoder.decode(value, { stream: true })
  }
  // The handler is still waiting for the gate: only /release lets it go on.
  assert.equal(received, 'first chunk;')
  const release = await fetch(`${base}/release`, { method: 'POST' })
  assert.equal(release.status, 204)
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    received += decoder.decode(value, { stream: true })
  }
  assert.equal(received, 'first chunk; second chunk, released=true')
})

test('a streamed response given all at once leaves in one write (its end may take a second), not one per chunk', async (t) => {
  const { app } = await luaApp(t, 'request')
  const base = await listen(app)
  const port = (app.server.address() as AddressInfo).port
  type Write = (this: Socket, ...args: unknown[]) => unknown
  const proto = Socket.prototype as unknown as { _write: Write, _writev: Write }
  const { _write: write, _writev: writev } = proto
  let writes = 0
  // Only the server's side of the connection counts (the client's socket has it as remote port).
  proto._write = function (...args) { if (this.localPort === port) writes++; return write.apply(this, args) }
  proto._writev = function (...args) { if (this.localPort === port) writes++; return writev.apply(this, args) }
  try {
    const res = await fetch(`${base}/chunks`)
    assert.equal(res.headers.get('content-type'), 'text/plain')
    assert.equal(await res.text(), 'one;two;three')
  } finally {
    proto._write = write
    proto._writev = writev
  }
  // Node corks the socket for the rest of the tick at the first write: head and chunks leave together;
  // the end reaches the response through the stream a tick later.
  assert.ok(writes >= 1 && writes <= 2, `${writes} writes`)
})

test('send_data with several arguments, flush, finish; finish twice is fine; data after finish is refused', async (t) => {
  const { app } = await luaApp(t, 'request')
  const r = await app.inject({ url: '/finish' })
  assert.equal(r.statusCode, 200)
  assert.equal(r.body, 'a1truenil|b')
})

test('finish_headers sends status and headers with an empty body', async (t) => {
  const { app } = await luaApp(t, 'request')
  const r = await app.inject({ url: '/headersonly' })
  assert.equal(r.statusCode, 201)
  assert.equal(r.headers['x-only'], 'headers')
  assert.equal(r.headers['x-late'], undefined)
  assert.equal(r.body, '')
})

test('misuse of the response methods raises catchable errors', async (t) => {
  const { app } = await luaApp(t, 'request')
  const r = await app.inject({ url: '/misuse' })
  assert.equal(r.statusCode, 200)
  const [first, ...lines] = r.body.split('\n')
  assert.equal(first, 'started|json')
  assert.deepEqual(Object.fromEntries(lines.map((l) => l.split('='))), {
    bad_status: "bad argument #1 to 'send_status' (HTTP status expected, got nonsense)",
    bad_header: "bad argument #1 to 'send_header' (string expected, got number)",
    late_status: 'cannot send a status: headers already sent',
    late_header: 'cannot send a header: headers already sent'
  })
})

test('pairs over a header view lists every header once, by lowercase name, and nothing else', async (t) => {
  const { app } = await luaApp(t, 'request')
  const base = await listen(app)
  const { body } = await get(`${base}/headerpairs`, { 'X-One': 'Single', 'x-multi': ['a', 'b'] })
  const r = JSON.parse(body)
  assert.deepEqual(r.headers['x-one'], ['Single'])
  assert.deepEqual(r.headers['x-multi'], ['a', 'b'])
  assert.deepEqual(r.headers.host, [`127.0.0.1:${new URL(base).port}`])
  assert.equal(r.count, Object.keys(r.headers).length)
  assert.ok(Object.keys(r.headers).every((k) => k === k.toLowerCase()))
  assert.equal(r.value['x-one'], 'Single')
  assert.equal(r.value['x-multi'], false)
  assert.deepEqual(Object.keys(r.value).sort(), Object.keys(r.headers).sort())
})

test('get_params and get_params_list keep escaped bytes that are not UTF-8, each read first', async (t) => {
  const { app } = await luaApp(t, 'request')
  const url = '/rawquery?v=%FF%00a&v=%C3%A9&k%FE=1'
  assert.equal((await app.inject({ url })).body, '6b01[1]=31 76[1]=ff0061 76[2]=c3a9 first=ff0061'.replace('6b01', '6bfe'))
  const plain = await app.inject({ url: '/rawquery?v=x%20y&v=2' })
  assert.equal(plain.body, '76[1]=782079 76[2]=32 first=782079')
})
