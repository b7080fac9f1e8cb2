import { once } from 'node:events'
import { parse as parseQuery } from 'node:querystring'
import { PassThrough } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { luaSource } from '../lua-bridge/modules.ts'
import { LuaRuntimeError, TaskAbortedError, type RunOptions, type StartedTask } from '../lua-bridge/scheduler.ts'
import type { LuaEngine } from '../lua-bridge/engine.ts'
import { LUA_TNIL, LUA_TNUMBER, LUA_TSTRING, LUA_TTABLE, luaInteger } from '../lua-bridge/lua-api.ts'
import { LuaArguments, LuaFunctionRef, LuaPushable, multi } from '../lua-bridge/values.ts'
import { indexOf, slice } from '../lua-bridge/strings.ts'
import { EVLUA_ERR_ENGINE, EVLUA_ERR_LUA_RUNTIME, EVLUA_ERR_LUA_CPU_TIMEOUT, EVLUA_ERR_LUA_REQUEST_TIMEOUT } from '../errors.ts'
import { Exchanges, applyHeaders } from './exchange.ts'
import { RouteReads, headerValue, pushHeaderView, sameName, type ViewRefs } from './prefetch.ts'
import { makeKeyTemplate, type KeyShapes } from '../lua-bridge/key-templates.ts'
import { JsonBodyError, encodeTableBody } from './json-body.ts'
import formsPlugin, { bodyKind } from './forms.ts'

/** What serve returns when the handler streamed its response itself. */
const STREAMED = false
/** Default content types by the codes setBody gives. */
const CONTENT_TYPES = ['', 'text/plain; charset=utf-8', 'application/json; charset=utf-8']
const TEXT = 1
const JSON_TABLE = 2

export type LuaRouteHandler = (request: FastifyRequest, reply: FastifyReply) => void

/** Turns a route id into a Fastify handler that runs the route's Lua handler for each request. */
export interface RequestBridge {
  /** coercedQuery: the route has a querystring schema (Fastify then coerces request.query's values). */
  handler (routeId: number, catchAllParam?: string, coercedQuery?: boolean): LuaRouteHandler
  readonly exchanges: Exchanges
  /** Registry refs of request.lua's entry points on the current engine. */
  readonly refs: { serve: number, loadRoute: number }
}

/**
 * The Moonbridge request object's JS half: the exchange registry, the lazy request fields, the
 * response path (buffered or streamed), and the mapping of Lua failures to HTTP errors.
 */
async function requestPlugin (fastify: FastifyInstance): Promise<void> {
  const { runtime, config } = fastify.evlua
  const exchanges = new Exchanges()
  const development = (process.env.NODE_ENV ?? 'development') === 'development'

  await fastify.register(formsPlugin, { exchanges })
  runtime.define({ name: 'evlua.headers', chunkName: '[evlua] headers.lua', source: luaSource('headers.lua') })
  runtime.define({
    name: 'evlua.request',
    chunkName: '[evlua] request.lua',
    source: luaSource('request.lua'),
    functions: {
      raw_headers: (id: number) => exchanges.get(id).request.raw.rawHeaders,
      header_values: (id: number, name: string) => headerValues(exchanges.get(id).request.raw.rawHeaders, name),
      header_value: (id: number, name: string) => {
        const ex = exchanges.get(id)
        readsOf(ex.route).readHeader(name)
        return headerValue(ex.request.raw.rawHeaders, name)
      },
      path: (id: number) => {
        const ex = exchanges.get(id)
        readsOf(ex.route).path = true
        return pathOf(ex.request.url)
      },
      query_string: (id: number) => {
        const url = exchanges.get(id).request.url
        const q = indexOf(url, '?')
        return q < 0 ? '' : slice(url, q)
      },
      query_first: (id: number) => {
        const ex = exchanges.get(id)
        const routeReads = readsOf(ex.route)
        routeReads.getParams = true
        return queryValues(ex.request, firstValue, coercesQuery(ex.request), routeReads.queryKeys)
      },
      query_lists: (id: number) => {
        const ex = exchanges.get(id)
        return queryValues(ex.request, allValues, coercesQuery(ex.request), readsOf(ex.route).queryKeys)
      },
      cookies: (id: number) => {
        const { request } = exchanges.get(id)
        return request.cookies ?? fastify.evluaCookies.parse(request.headers.cookie ?? '')
      },
      remote_ip: (id: number) => exchanges.get(id).request.ip,
      alive: (id: number) => exchanges.has(id),
      start: (id: number, status: number, headers: unknown) => {
        const ex = exchanges.get(id)
        const stream = new PassThrough()
        ex.stream = stream
        ex.reply.code(status)
        applyHeaders(ex.reply, headers)
        ex.reply.send(stream)
      },
      write: (id: number, data: string | Buffer) => {
        const stream = exchanges.get(id).stream
        if (!stream || stream.destroyed) return multi(undefined, 'the client has gone away')
        if (stream.write(data)) return true
        return once(stream, 'drain').then(() => true)
      },
      finish: (id: number) => { exchanges.get(id).stream?.end() }
    }
  })

  const refs = { serve: 0, handler: 0, loadRoute: 0, jsonEncode: 0, requestMt: 0, valueViewMt: 0, source: 0, headersValue: 0 }
  const shapes = REQUEST_SHAPES.map((keys) => new RequestShape(keys))
  /** The method names (by methodCode) as registry refs; each route's handler by route id × 8 + method code. */
  let methodNames: number[] = []
  let handlers: LuaFunctionRef[] = []
  runtime.onBoot((rt) => {
    const { engine } = rt
    const mod = rt.callMain(rt.internal('require'), ['evlua.request'])
    refs.serve = rt.field(mod, 'serve')
    refs.handler = rt.field(mod, 'handler')
    refs.loadRoute = rt.field(mod, 'load_route')
    refs.requestMt = rt.field(mod, 'request_mt')
    refs.valueViewMt = rt.field(mod, 'value_view_mt')
    refs.source = rt.field(mod, '_source')
    refs.headersValue = engine.nameRef('headers_value')
    for (const shape of shapes) {
      shape.address = engine.refPointer(makeKeyTemplate(engine, shape.keys, refs.requestMt))
      shape.keyRefs = shape.keys.map((k) => engine.nameRef(k))
    }
    const json = rt.callMain(rt.internal('require'), ['json'])
    refs.jsonEncode = rt.field(json, 'encode')
    engine.unref(json)
    engine.unref(mod)
    methodNames = METHOD_NAMES.map((name) => name ? engine.nameRef(name) : 0)
    handlers = []
  })

  /** The route's handler for a method code, fetched from Lua once per engine. */
  function handlerOf (routeId: number, code: number): LuaFunctionRef {
    const key = routeId * 8 + code
    return (handlers[key] ??= new LuaFunctionRef(runtime.callMain(refs.handler, [routeId, code]), (ref) => runtime.engine.unref(ref)))
  }

  const cpuTimeoutMs = config.lua.cpu_timeout_ms
  const wallTimeoutMs = config.lua.request_timeout_ms

  /** What each route's handler reads of the lazy request fields, by route id (see prefetch.ts). */
  const reads: RouteReads[] = []
  const readsOf = (route: number): RouteReads => (reads[route] ??= new RouteReads())

  /** serve()'s arguments, filled for each request just before start() pushes them (at once). */
  const nextTable = new RequestTable(refs)

  function handler (routeId: number, catchAllParam?: string, coercedQuery = false): LuaRouteHandler {
    const routeReads = readsOf(routeId)
    return function luaRoute (req, reply) {
      const id = exchanges.open(req, reply, routeId)
      let params = req.params as Record<string, string> | undefined
      if (catchAllParam && params) {
        const { '*': rest, ...others } = params
        params = { ...others, [catchAllParam]: rest ?? '' }
      }
      // Lua routes serve the seven methods of METHOD_NAMES only (router.ts): a code is never 0 here.
      const code = methodCode(req.method)
      const table = nextTable
      table.id = id
      table.method = code > 0 ? methodNames[code] : req.method
      table.reads = routeReads
      table.params = params && hasKeys(params) ? params : undefined
      // The fields the route's handler is known to read come along (false: Lua decodes the query).
      table.getParams = routeReads.getParams ? queryRecord(req, coercedQuery) || undefined : undefined
      table.rawHeaders = routeReads.headerNames.length > 0 ? req.raw.rawHeaders : undefined
      table.path = routeReads.path ? pathOf(req.url) : undefined
      table.shape = shapes[shapeOf(table)]
      table.handler = code > 0 ? handlerOf(routeId, code) : undefined
      table.kind = luaBodyKind(req)
      // The answer goes out from settled(), at once when the handler never waits: no promise.
      runtime.start(refs.serve, nextTable, taskOptions, id)
    } as LuaRouteHandler
  }

  const taskOptions: RunOptions = { cpuTimeoutMs, wallTimeoutMs, onSettle: settled, readResults }

  /** A request's task has ended: answer with its outcome (the tag is the exchange id). */
  function settled (task: StartedTask): void {
    const id = task.tag as number
    const { request, reply } = exchanges.get(id)
    try {
      respond(id, request, reply, task.results, task.error)
    } catch (err) {
      reply.send(err)
    }
  }

  /** Send what serve returned (or the error the task ended with). */
  function respond (id: number, request: FastifyRequest, reply: FastifyReply, results: unknown[] | undefined, error: Error | undefined): FastifyReply {
    try {
      if (error) throw error
      const [status, body, contentType, headers] = results!
      if (status === STREAMED) return reply
      if (status !== 200 || reply.statusCode !== 200) reply.code(status as number)
      if (headers !== undefined) applyHeaders(reply, headers)
      // Fastify types a string body text/plain; charset=utf-8 by itself (a Buffer it would not).
      const fastifyTypes = contentType === TEXT && headers === undefined && typeof body === 'string'
      if (contentType !== undefined && !fastifyTypes && !reply.hasHeader('content-type')) reply.type(CONTENT_TYPES[contentType as number])
      if (contentType === JSON_TABLE) return reply.send(typeof body === 'string' || Buffer.isBuffer(body) ? body : tableBody(body))
      return reply.send(body ?? (status === 204 ? undefined : ''))
    } catch (err) {
      const ex = exchanges.get(id)
      if (ex.stream) {
        // The response has started: too late for an error response. The stream fails with the
        // error (Fastify cuts the response off, or answers with it if no byte has gone yet).
        const failed = httpError(err, undefined)
        request.log.error({ err: failed }, 'the Lua handler failed after its response had started')
        ex.stream.destroy(failed)
        return reply
      }
      const lua = httpError(err, ex.stream)
      // a body that could not be read (too large, broken) decides the response, not the Lua error it caused
      throw ex.input?.error ?? lua
    } finally {
      exchanges.close(id)
    }
  }

  /** A table body as JSON text; bytes that are not UTF-8 go through Lua's json.encode to stay exact. */
  function tableBody (table: unknown): string | Buffer {
    let text: string | undefined
    try {
      text = encodeTableBody(table)
    } catch (err) {
      if (err instanceof JsonBodyError) throw new EVLUA_ERR_LUA_RUNTIME(`cannot send the returned table as JSON: ${err.message}`)
      throw err
    }
    if (text !== undefined) return text
    return runtime.callMainMulti(refs.jsonEncode, [table], 1)[0] as string | Buffer
  }

  function httpError (err: unknown, stream: PassThrough | undefined): Error {
    stream?.destroy()
    if (err instanceof TaskAbortedError) {
      if (err.reason === 'cpu') return new EVLUA_ERR_LUA_CPU_TIMEOUT(cpuTimeoutMs)
      if (err.reason === 'timeout') return new EVLUA_ERR_LUA_REQUEST_TIMEOUT(wallTimeoutMs)
      return new EVLUA_ERR_ENGINE(err.message)
    }
    if (err instanceof LuaRuntimeError) {
      const out = new EVLUA_ERR_LUA_RUNTIME(development ? `${err.message}\n${err.traceback}` : 'the Lua handler failed')
      out.stack = `${err.message}\n${err.traceback}`
      ;(out as unknown as { lua: string }).lua = err.message
      return out
    }
    return err as Error
  }

  const bridge: RequestBridge = { handler, exchanges, refs }
  fastify.decorate('evluaRequests', bridge)
}

/** request.lua's METHOD_CODES: a method's code is its index (0: another method). */
const METHOD_NAMES = ['', 'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

/** The method's code in METHOD_NAMES (a route's handler is looked up by it), 0 for another. */
function methodCode (method: string): number {
  switch (method) {
    case 'GET': return 1
    case 'HEAD': return 2
    case 'POST': return 3
    case 'PUT': return 4
    case 'PATCH': return 5
    case 'DELETE': return 6
    case 'OPTIONS': return 7
    default: return 0
  }
}

/** request.path: the URL's path without its leading slash or query. */
function pathOf (url: string): string {
  const q = indexOf(url, '?')
  return q < 0 ? slice(url, 1) : slice(url, 1, q)
}

/** The body kind for request.lua; nil (the usual GET) costs Lua nothing to receive. */
function luaBodyKind (request: FastifyRequest): string | undefined {
  const kind = bodyKind(request)
  return kind === 'none' ? undefined : kind
}

/**
 * serve()'s results as status, body, content type code, headers: a handler's single return
 * value (a string or table is the body, a number the status, nil no content), or answer()'s
 * status, body, header list. A table body is written as JSON text straight from Lua's memory when
 * it can be (a string, or a Buffer for bytes that are not UTF-8), else converted for tableBody.
 */
function readResults (engine: LuaEngine, L: number, n: number): unknown[] {
  if (n === 1) {
    switch (engine.mod._lua_type(L, 1)) {
      case LUA_TNIL: return [204, undefined, undefined]
      case LUA_TNUMBER: return [engine.toJs(L, 1), undefined, undefined]
      default: return setBody(engine, L, 1, [200, undefined, undefined])
    }
  }
  return setBody(engine, L, 2, [engine.toJs(L, 1), undefined, undefined, engine.toJs(L, 3)])
}

/**
 * Sets out[1] and out[2] to the body at idx and its content type code: a string is text, a table
 * JSON, nil nothing, anything else tostring()'d text. Returns out.
 */
function setBody (engine: LuaEngine, L: number, idx: number, out: unknown[]): unknown[] {
  switch (engine.mod._lua_type(L, idx)) {
    case LUA_TSTRING: out[1] = engine.toJs(L, idx); out[2] = TEXT; break
    case LUA_TTABLE: out[1] = engine.tableJson(L, idx) || engine.toJs(L, idx); out[2] = JSON_TABLE; break
    case LUA_TNIL: break
    default:
      try {
        out[1] = engine.toText(L, idx)
        out[2] = TEXT
      } catch (err) {
        throw new LuaRuntimeError((err as Error).message, '')
      }
  }
  return out
}

/**
 * The shapes a request table starts in (a template each, with request_mt): its keys, in the order their
 * values are pushed. _id, method and _phase always; what else comes along makes the shape. Four
 * keys fit a small table (what a waiting request holds); more take the eight-key shape, whose
 * _kind is set by serve() when there is a body.
 */
const REQUEST_SHAPES = [
  ['_id', 'method', '_phase'],
  ['_id', 'method', '_phase', 'params'],
  ['_id', 'method', '_phase', 'path'],
  ['_id', 'method', '_phase', 'get_params'],
  ['_id', 'method', '_phase', 'headers_value'],
  ['_id', 'method', '_phase', 'params', 'path', 'get_params', 'headers_value', '_kind']
]
const ALL_FIELDS = 5

/** The index in REQUEST_SHAPES of a request's shape, by the fields that come with it. */
function shapeOf (r: RequestTable): number {
  const extra = (r.params ? 1 : 0) + (r.path !== undefined ? 1 : 0) + (r.getParams ? 1 : 0) + (r.rawHeaders ? 1 : 0)
  if (extra > 1) return ALL_FIELDS
  if (r.params) return 1
  if (r.path !== undefined) return 2
  if (r.getParams) return 3
  return r.rawHeaders ? 4 : 0
}

class RequestShape {
  readonly keys: string[]
  /** How many of the keys get their value pushed with the table (headers_value and _kind, last, are set after). */
  readonly filled: number
  /** On the current engine: the template's address (for evlua_newfrom; key-templates.ts), each key's registry ref. */
  address = 0
  keyRefs: number[] = []
  constructor (keys: string[]) {
    this.keys = keys
    this.filled = keys.filter((k) => k !== 'headers_value' && k !== '_kind').length
  }
}

const OPEN = luaInteger(0)

/** Registry refs of request.lua's a request table is made with (on the current engine). */
interface RequestTableRefs extends ViewRefs {
  readonly requestMt: number
  /** The key headers_value, as a Lua string. */
  readonly headersValue: number
}

/**
 * serve()'s arguments, pushed by start() straight onto the new task's thread: the request's table,
 * pushed already filled (the values in its shape's key order, then one call makes the table from
 * the shape's template with them: evlua_table.c, the keys in place, no insertion, no store from
 * Lua; on wasmoon's build, which lacks that call, the table is made and filled key by key; the
 * headers_value view is linked to its request and set last), the handler, the body kind.
 */
class RequestTable extends LuaArguments {
  readonly #refs: RequestTableRefs
  shape!: RequestShape
  id = 0
  /** A registry ref of the method's name, or the name itself. */
  method: number | string = 0
  /** The route's: its usual key lists, the header names its handler reads. */
  reads!: RouteReads
  params: Record<string, string> | undefined
  path: string | undefined
  getParams: Record<string, string | string[]> | undefined
  /** The request's raw headers, when the route's headers_value names come along. */
  rawHeaders: string[] | undefined
  /** serve()'s other arguments: the route's handler for the method, the body kind. */
  handler: LuaFunctionRef | undefined
  kind: string | undefined

  constructor (refs: RequestTableRefs) {
    super()
    this.#refs = refs
  }

  /** serve()'s arguments: the request table, the handler, the body kind (when there is a body). */
  pushArgs (engine: LuaEngine, L: number): number {
    this.#pushTable(engine, L)
    if (this.handler) engine.pushRef(L, this.handler.ref)
    else engine.mod._lua_pushnil(L)
    if (this.kind === undefined) return 2
    engine.bytes.pushString(L, this.kind)
    return 3
  }

  #pushTable (engine: LuaEngine, L: number): void {
    const mod = engine.mod
    const shape = this.shape
    const keys = shape.keys
    const base = mod._lua_gettop(L)
    // A float: the id is beyond 2^31 (slots.ts), where making the bigint lua_pushinteger takes is a
    // runtime call (~100 ns). Lua only hands it back to JS, which gets the same number.
    mod._lua_pushnumber(L, this.id)
    if (typeof this.method === 'number') engine.pushRef(L, this.method)
    else engine.bytes.pushString(L, this.method)
    mod._lua_pushinteger(L, OPEN)
    const n = shape.filled
    for (let i = 3; i < n; i++) {
      switch (keys[i]) {
        case 'params':
          if (this.params) pushRecord(engine, L, this.params, asIs, this.reads.paramKeys)
          else mod._lua_pushnil(L)
          break
        case 'path':
          if (this.path !== undefined) engine.bytes.pushString(L, this.path)
          else mod._lua_pushnil(L)
          break
        default:
          if (this.getParams) pushRecord(engine, L, this.getParams, firstValue, this.reads.queryKeys)
          else mod._lua_pushnil(L)
      }
    }
    if (mod._evlua_newfrom) {
      mod._evlua_newfrom(L, shape.address, n)
    } else {
      mod._lua_createtable(L, 0, keys.length)
      engine.pushRef(L, this.#refs.requestMt)
      mod._lua_setmetatable(L, -2)
      for (let i = 0; i < n; i++) {
        if (mod._lua_type(L, base + 1 + i) === LUA_TNIL) continue
        engine.pushRef(L, shape.keyRefs[i])
        mod._lua_pushvalue(L, base + 1 + i)
        mod._lua_rawset(L, -3)
      }
      mod._lua_copy(L, -1, base + 1)
      mod._lua_settop(L, base + 1)
    }
    if (this.rawHeaders) {
      // request.headers_value = view (whose source is the request)
      engine.pushRef(L, this.#refs.headersValue)
      pushHeaderView(engine, L, this.reads, this.rawHeaders, this.#refs, base + 1)
      mod._lua_rawset(L, base + 1)
    }
  }
}

/** Whether an object has an own enumerable key (an empty params object crosses to Lua as nil). */
function hasKeys (o: object): boolean {
  for (const _ in o) return true
  return false
}

/** An escaped byte %80-%FF: it may not be valid UTF-8, so Lua decodes such a query itself. */
const HIGH_ESCAPE = /%[89a-f][0-9a-f]/i

/**
 * The request's query as Fastify parsed it (name → string, or list of strings when repeated), an
 * empty record when the URL has none, or false when Lua must decode it itself.
 */
function queryRecord (request: FastifyRequest, coerced: boolean): Record<string, string | string[]> | false {
  const url = request.url
  const q = indexOf(url, '?') + 1
  if (q === 0) return NO_QUERY
  if (indexOf(url, '%', q) >= 0 && HIGH_ESCAPE.test(slice(url, q))) return false
  // A querystring schema makes Fastify coerce values (n=3 → 3): Lua sees the strings as sent.
  if (!coerced) return request.query as Record<string, string | string[]>
  return parseQuery(slice(url, q)) as Record<string, string | string[]>
}

/**
 * Whether the request's route has a querystring schema (Fastify then coerces request.query).
 * request.routeOptions builds an object of a dozen fields on each read: route handlers are told
 * once, when registered; this is for the lazy fields' calls.
 */
function coercesQuery (request: FastifyRequest): boolean {
  return request.routeOptions.schema?.querystring !== undefined
}

const firstValue = (v: string | string[]): string => Array.isArray(v) ? v[0] : v
const allValues = (v: string | string[]): string[] => Array.isArray(v) ? v : [v]
const asIs = (v: string | string[]): string | string[] => v

/**
 * The request's query for Lua, name → pick(value) (get_params, get_params_list), or false when
 * Lua must decode it itself. It is pushed straight from the parsed query: no object in between.
 */
function queryValues (request: FastifyRequest, pick: (v: string | string[]) => string | string[], coerced: boolean, shapes: KeyShapes): RecordValues | false {
  const query = queryRecord(request, coerced)
  return query === false ? false : new RecordValues(query, pick, shapes)
}

const NO_QUERY: Record<string, string> = Object.freeze({})

/** A record of strings (or lists of them) as a Lua table, name → pick(value): see pushRecord. */
class RecordValues extends LuaPushable {
  readonly #record: Record<string, string | string[]>
  readonly #pick: (v: string | string[]) => string | string[]
  readonly #shapes: KeyShapes
  constructor (record: Record<string, string | string[]>, pick: (v: string | string[]) => string | string[], shapes: KeyShapes) {
    super()
    this.#record = record
    this.#pick = pick
    this.#shapes = shapes
  }

  pushLua (engine: LuaEngine, L: number): void { pushRecord(engine, L, this.#record, this.#pick, this.#shapes) }
}

/**
 * Push a record of strings (or lists of them) as a Lua table, name → pick(value): the query
 * (get_params, get_params_list), or the path parameters (asIs). A record whose keys are one of
 * the route's usual lists is made from that list's template (key-templates.ts): only its values
 * are pushed.
 */
function pushRecord (engine: LuaEngine, L: number, record: Record<string, string | string[]>, pick: (v: string | string[]) => string | string[], shapes: KeyShapes): void {
  const mod = engine.mod
  const shape = mod._evlua_newfrom && record !== NO_QUERY ? shapes.of(record) : undefined
  if (shape) {
    const n = shape.keys.length
    engine.checkStack(L, n + 1)
    // in the shape's key order (KeyShapes.of has compared them)
    for (const name in record) {
      const v = pick(record[name])
      if (typeof v === 'string') engine.bytes.pushString(L, v)
      else engine.push(L, v)
    }
    mod._evlua_newfrom!(L, shape.template(engine), n)
    return
  }
  let n = 0
  for (const _ in record) n++
  engine.checkStack(L, 3)
  mod._lua_createtable(L, 0, n)
  for (const name in record) {
    engine.bytes.pushString(L, name)
    const v = pick(record[name])
    if (typeof v === 'string') engine.bytes.pushString(L, v)
    else engine.push(L, v)
    mod._lua_rawset(L, -3)
  }
}

/** The values of one header (name in lowercase), in the order sent; undefined when absent. */
function headerValues (raw: string[], name: string): string[] | undefined {
  let out: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (sameName(raw[i], name)) (out ??= []).push(raw[i + 1])
  }
  return out
}

export default fp(requestPlugin, { name: 'evlua-request', fastify: '5.x', dependencies: ['evlua-platform'] })
