-- The Moonbridge request object over one HTTP exchange, the route table, and serve, which runs a
-- handler and turns its return values into a response for the JS side.
local fns = ...
local json = require 'json'
local forms = require 'evlua.forms'
local H = require 'evlua.headers'

local type, tostring, tonumber, pairs, ipairs, select, error, setmetatable, rawget, rawset =
  type, tostring, tonumber, pairs, ipairs, select, error, setmetatable, rawget, rawset
local concat = table.concat

-- What respond() gives JS when the handler streamed its response itself (no status is false).
local STREAMED <const> = false

-- A request's _phase: OPEN until the handler uses a response primitive (send_status, send_header,
-- send_data...), TOUCHED from then on, FINISHED once its response is complete. It is a field of
-- the request table from the start, so the usual check (an untouched request) is a plain read.
local OPEN <const>, TOUCHED <const>, FINISHED <const> = 0, 1, 2

local parse_urlencoded = forms.parse_urlencoded

-- The query string as Lua decodes it, byte for byte (both tables at once).
local function parse_query(req)
  req.get_params, req.get_params_list = parse_urlencoded(req.query:sub(2))
end

-- Fastify has already parsed the query string (natively, faster than Lua can): JS hands over the
-- table asked for, or false when the query has an escaped non-ASCII byte (%80-%FF) that may not be
-- valid UTF-8, which JS strings cannot carry: then Lua decodes the query itself.
local function query_table(req, field, fetch)
  local t = fetch(req._id)
  if t == false then
    parse_query(req)
    return rawget(req, field)
  end
  req[field] = t
  return t
end

-- A header of one view, looked up by name: 'value' comes ready-made from JS (no list to build).
local function header_lookup(req, kind, name, derive)
  if kind == 'value' then return fns.header_value(req._id, name) end
  local list = fns.header_values(req._id, name)
  if list then return derive(list) end
  return nil
end

local function all_headers(req)
  local all = rawget(req, '_all_headers')
  if not all then
    all = H.lists(fns.raw_headers(req._id))
    rawset(req, '_all_headers', all)
  end
  return all
end

local header_view, view_metatables = H.views(header_lookup, all_headers)
local SOURCE = H.SOURCE

-- Fields built on first access: most requests never read most of them. A builder stores the field
-- and returns it. (Tail calls all the way down keep the coroutine's stack small: a thread whose
-- stack stays within its first 40 slots holds less memory while it waits.)
local function set(req, key, value)
  req[key] = value
  return value
end

local function processed(req, key)
  forms.process(req)
  return rawget(req, key)
end

local lazy = {
  headers = function(req, key) return set(req, key, header_view('headers', req)) end,
  headers_value = function(req, key) return set(req, key, header_view('value', req)) end,
  headers_csv_string = function(req, key) return set(req, key, header_view('csv_string', req)) end,
  headers_csv_table = function(req, key) return set(req, key, header_view('csv_table', req)) end,
  headers_flags = function(req, key) return set(req, key, header_view('flags', req)) end,
  get_params = function(req, key) return query_table(req, key, fns.query_first) end,
  get_params_list = function(req, key) return query_table(req, key, fns.query_lists) end,
  query = function(req, key) return set(req, key, fns.query_string(req._id)) end,
  path = function(req, key) return set(req, key, fns.path(req._id)) end,
  params = function(req, key) return set(req, key, {}) end,
  _headers = function(req, key) return set(req, key, {}) end,
  _kind = function(req, key) return set(req, key, 'none') end,
  post_params = processed, post_params_list = processed, post_metadata = processed, post_metadata_list = processed,
  cookies = function(req, key) return set(req, key, fns.cookies(req._id) or {}) end,
  body = function(req, key)
    local body = forms.body(req)
    rawset(req, key, body)
    return body
  end,
  remote_ip = function(req, key) return set(req, key, fns.remote_ip(req._id)) end,
}

local Request = {}

local function request_index(req, key)
  local m = Request[key]
  if m ~= nil then return m end
  local build = lazy[key]
  if build then return build(req, key) end
  return nil
end

-- Every request table has this metatable (its template's).
local request_mt = { __index = request_index }

local function check_open(req, what, level)
  if req._phase == FINISHED then error('cannot ' .. what .. ': the response is already finished', level) end
end

-- The response primitives, shared with the evpoco response object (evpoco.lua), which must not
-- trigger Moonbridge's automatic body processing.
local function set_status(req, status, level)
  check_open(req, 'send a status', level + 1)
  if req._started then error('cannot send a status: headers already sent', level) end
  local code = tonumber(status) or tonumber(tostring(status):match('^%s*(%d%d%d)'))
  if not code or code < 100 or code > 999 then
    error("bad argument #1 to 'send_status' (HTTP status expected, got " .. tostring(status) .. ')', level)
  end
  req._status = code
  req._phase = TOUCHED
end

local function add_header(req, name, value, level)
  check_open(req, 'send a header', level + 1)
  if req._started then error('cannot send a header: headers already sent', level) end
  if type(name) ~= 'string' then
    error("bad argument #1 to 'send_header' (string expected, got " .. type(name) .. ')', level)
  end
  local h = req._headers
  h[#h + 1] = name
  h[#h + 1] = tostring(value)
  req._phase = TOUCHED
end

local function start(req)
  if req._started then return end
  req._started = true
  req._phase = TOUCHED
  fns.start(req._id, req._status or 200, req._headers)
end

local function write(req, data, level)
  if not req._started then start(req) end
  if req.method == 'HEAD' or data == '' then return end
  local ok, err = fns.write(req._id, data)
  if not ok and err then error(err, level) end
end

--- syntax: request:send_status(status)   (a number, or a string such as "404 Not Found")
function Request:send_status(status)
  forms.auto(self)
  set_status(self, status, 3)
end

--- syntax: request:send_header(name, value)
function Request:send_header(name, value)
  add_header(self, name, value, 3)
end

--- syntax: request:set_cookie(name, value [, options])
--- options: path, domain, max_age, expires, http_only, secure, same_site, partitioned, priority
function Request:set_cookie(name, value, options)
  if type(name) ~= 'string' then
    error("bad argument #1 to 'set_cookie' (string expected, got " .. type(name) .. ')', 2)
  end
  if options ~= nil and type(options) ~= 'table' then
    error("bad argument #3 to 'set_cookie' (table expected, got " .. type(options) .. ')', 2)
  end
  local header, err = require('evlua.cookies').serialize(name, value == nil and '' or tostring(value), options)
  if not header then error('set_cookie: ' .. tostring(err), 2) end
  add_header(self, 'Set-Cookie', header, 3)
end

--- syntax: request:finish_headers()
function Request:finish_headers()
  if self._started then return end
  check_open(self, 'finish headers', 3)
  forms.auto(self)
  start(self)
end

--- syntax: request:send_data(...)
function Request:send_data(...)
  check_open(self, 'send data', 3)
  local n = select('#', ...)
  local data
  if n == 1 then data = tostring((...)) else
    local parts = { ... }
    for i = 1, n do parts[i] = tostring(parts[i]) end
    data = concat(parts)
  end
  if not self._started then self:finish_headers() end
  write(self, data, 3)
end

--- syntax: request:flush()
function Request:flush()
  if not self._started and self._phase ~= FINISHED then self:finish_headers() end
end

--- syntax: request:finish()
function Request:finish()
  if self._phase == FINISHED then return end
  if not self._started then self:finish_headers() end
  self._phase = FINISHED
  fns.finish(self._id)
end

--- syntax: request:process_request_body()
function Request:process_request_body()
  forms.process(self)
end

--- syntax: request:stream_request_body(callback)
function Request:stream_request_body(callback)
  forms.stream_body(self, callback)
end

--- syntax: request:stream_post_param(field_name, callback)
function Request:stream_post_param(name, callback)
  forms.register(self, name, callback, false)
end

--- syntax: request:stream_post_params(pattern, callback)
function Request:stream_post_params(pattern, callback)
  forms.register(self, pattern, callback, true)
end

--- syntax: request:defer_reading()
function Request:defer_reading()
  self._deferred = true
end

--- syntax: request:consume_input()
function Request:consume_input()
  forms.consume(self)
end

--- syntax: request:json()   (the body decoded as JSON, or nil, err)
function Request:json()
  return json.decode(self.body)
end

for name, fn in pairs(fns.request_methods or {}) do Request[name] = fn end

local routes = {}
local METHODS = { 'get', 'post', 'put', 'patch', 'delete', 'head', 'options' }
local KNOWN = { any = true, schema = true, websocket = true }
for _, m in ipairs(METHODS) do KNOWN[m] = true end

local internal = require 'evlua.internal'
local getinfo, getlocal = debug.getinfo, debug.getlocal
local M = { Request = Request, routes = routes }

local METHOD_KEYS = {
  GET = 'get', HEAD = 'head', POST = 'post', PUT = 'put', PATCH = 'patch', DELETE = 'delete', OPTIONS = 'options',
}

local function pick(handlers, key)
  local h = handlers[key]
  if h then return h end
  if key == 'head' then h = handlers.get if h then return h end end
  return handlers.any
end

-- The methods by code (request.ts's METHOD_NAMES: it looks a route's handler up by code).
local METHOD_CODES = { 'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS' }
-- Each route's handler by method code, picked once when the route loads.
local by_code = {}

local function pick_by_code(handlers)
  local picked = {}
  for code, method in ipairs(METHOD_CODES) do picked[code] = pick(handlers, METHOD_KEYS[method]) end
  return picked
end

-- Load a route file and describe it to the router: its id, methods, schemas.
function M.load_route(source, chunkname)
  local mod = internal.run_file(source, chunkname)
  local handlers
  if type(mod) == 'function' then
    handlers = { any = mod }
  elseif type(mod) == 'table' then
    handlers = mod
    for k, v in pairs(mod) do
      if not KNOWN[k] then
        error(chunkname .. ": unknown key '" .. tostring(k) .. "' in the route table (handlers are keyed by "
          .. "lowercase method: get, post, put, patch, delete, head, options, any, websocket; or schema)", 0)
      end
      if k ~= 'schema' and type(v) ~= 'function' then
        error(chunkname .. ': handler ' .. k .. ' must be a function, got ' .. type(v), 0)
      end
    end
  else
    error(chunkname .. ' must return a table of handlers or a function, got ' .. type(mod), 0)
  end
  routes[#routes + 1] = handlers
  by_code[#routes] = pick_by_code(handlers)
  local methods = {}
  for _, m in ipairs(METHODS) do
    if handlers[m] then methods[#methods + 1] = m:upper() end
  end
  return #routes, methods, handlers.any ~= nil, handlers.websocket ~= nil, handlers.schema
end

local function add_headers(list, headers)
  for k, v in pairs(headers) do
    if type(v) == 'table' then
      for _, item in ipairs(v) do list[#list + 1] = k; list[#list + 1] = tostring(item) end
    else
      list[#list + 1] = k; list[#list + 1] = tostring(v)
    end
  end
end

-- The response as positional values for JS: status, body, header list (nil when there is none),
-- from what the handler returned (first, second, third: `body`, `status, body, headers` or
-- `nil, err`) and the status and headers it sent. request.ts types the body (a string is text, a
-- table JSON, anything else text through tostring), as it does a handler's single return value.
local function answer(status, headers, first, second, third)
  if type(first) == 'number' then
    if type(third) == 'table' then
      headers = headers or {}
      add_headers(headers, third)
    end
    return first, second, headers
  end
  if first == nil then
    if second ~= nil then error(second, 0) end
    return status or 204, nil, headers
  end
  return status or 200, first, headers
end

-- A handler that used the response primitives (send_status, send_header, send_data...) touched
-- its request: the others (most) have no status, headers or stream to look up. Their usual answer,
-- a single value, goes to JS as it is (answer() always gives three).
local function respond(req, kind, first, second, third)
  if kind then forms.finish(req) end
  local phase = req._phase
  if phase == OPEN then
    req._phase = FINISHED
    if second == nil and third == nil then return first end
    return answer(nil, nil, first, second, third)
  end
  if rawget(req, '_started') then
    if phase ~= FINISHED then req:finish() end
    return STREAMED, nil, nil
  end
  req._phase = FINISHED
  local headers = rawget(req, '_headers')
  if headers and headers[1] == nil then headers = nil end
  return answer(rawget(req, '_status'), headers, first, second, third)
end

-- Called by JS for every request, as its coroutine's first function: the request table (filled
-- by JS: _id, method, _phase, and what the route's handler has been seen to read, see
-- prefetch.ts), the route's handler for the method (by_code, which JS looks up once), and the
-- kind of body ('raw', 'form', 'multipart'; nil for none). The usual answer (one value from a
-- handler that used no response primitive, no body) is settled here, without a call to respond().
local function serve(req, handler, kind)
  if kind then req._kind = kind end
  local first, second, third = handler(req)
  if second == nil and third == nil and req._phase == OPEN and not kind then
    req._phase = FINISHED
    return first
  end
  return respond(req, kind, first, second, third)
end

-- The handler a route has for a method code, for JS to hold (nil when none).
function M.handler(route, code)
  return by_code[route][code]
end

--- The request the calling coroutine serves, or nil: serve's first local, in the coroutine's
--- bottom frame.
function M.current()
  local level = 2
  while getinfo(level, 'l') do level = level + 1 end
  local bottom = getinfo(level - 1, 'f')
  if not bottom or bottom.func ~= serve then return nil end
  local _, req = getlocal(level - 1, 1)
  if type(req) == 'table' and fns.alive(req._id) then return req end
  return nil
end

-- For request.ts, which makes the request tables (from templates) and the prefetched headers_value
-- views, and starts each request's coroutine with serve.
M.serve, M.request_mt, M.value_view_mt, M._source = serve, request_mt, view_metatables.value, SOURCE

-- For the evpoco response object: the primitives without Moonbridge's automatic body processing.
M.set_status, M.add_header, M.start, M.write, M.check_open = set_status, add_header, start, write, check_open

M.parse_urlencoded = parse_urlencoded
M.url_decode = forms.url_decode
return M
