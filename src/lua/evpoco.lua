-- evpoco's request and response objects (platform.get_http_request() / get_http_response()) over
-- the same exchange as the Moonbridge request object the handler receives.
local request_mod = require 'evlua.request'
local forms = require 'evlua.forms'
local H = require 'evlua.headers'

local type, tostring, tonumber, error, setmetatable, rawget, rawset, ipairs, pairs =
  type, tostring, tonumber, error, setmetatable, rawget, rawset, ipairs, pairs
local lower = string.lower

local function arg_error(n, fname, expected, got)
  error('bad argument #' .. n .. " to '" .. fname .. "' (" .. expected .. ' expected, got ' .. type(got) .. ')', 3)
end

-- The HTML form: query parameters and non-file POST fields as name/value pairs (in order), and the
-- uploaded files as parts keyed by file name (as evpoco keys them).
local Form = {}
Form.__index = Form

local function build_form(req)
  local fields, parts, part_names = {}, {}, {}
  local query = req.query or ''
  if #query > 1 then
    for pair in query:sub(2):gmatch('[^&]+') do
      local k, v = pair:match('^([^=]*)=(.*)$')
      if not k then k, v = pair, '' end
      fields[#fields + 1] = { forms.url_decode(k), forms.url_decode(v) }
    end
  end
  if req.method == 'POST' or req.method == 'PUT' then
    forms.process(req)
    for _, entry in ipairs(rawget(req, '_post_entries') or {}) do
      local name, value, meta = entry[1], entry[2], entry[3]
      if meta.file_name ~= nil then
        local part = {
          name = name, file_name = meta.file_name, type = meta.content_type or 'application/octet-stream',
          content_type = meta.content_type, length = #value, data = value,
          params = { name = name, filename = meta.file_name },
        }
        if parts[meta.file_name] == nil then part_names[#part_names + 1] = meta.file_name end
        parts[meta.file_name] = part
      else
        fields[#fields + 1] = { name, value }
      end
    end
  end
  return setmetatable({ _fields = fields, _parts = parts, _part_names = part_names }, Form)
end

--- syntax: value = form:get_form_field(name)   (the first value, or "" when absent, as in evpoco)
function Form:get_form_field(name)
  if type(name) ~= 'string' then arg_error(1, 'get_form_field', 'string', name) end
  for _, f in ipairs(self._fields) do
    if f[1] == name then return f[2] end
  end
  return ''
end

--- syntax: names = form:get_part_names()   (file names of the uploaded files)
function Form:get_part_names()
  local out = {}
  for i, n in ipairs(self._part_names) do out[i] = n end
  return out
end

--- syntax: part = form:get_part(name)   (by file name, else by field name; nil when absent)
--- part: { name, file_name, type, content_type, length, data, params = { name, filename } }
function Form:get_part(name)
  if type(name) ~= 'string' then arg_error(1, 'get_part', 'string', name) end
  local part = self._parts[name]
  if part then return part end
  for _, n in ipairs(self._part_names) do
    if self._parts[n].name == name then return self._parts[n] end
  end
  return nil
end

--- syntax: empty = form:empty()
function Form:empty()
  return #self._fields == 0
end

--- syntax: it, name, value = form:begin_iteration()   then name, value = form:next_iteration(it)
function Form:begin_iteration()
  local it = { i = 1 }
  local f = self._fields[1]
  if not f then return nil, nil, nil end
  it.form = self
  return it, f[1], f[2]
end

function Form:next_iteration(it)
  if type(it) ~= 'table' or not it.form then return nil, nil end
  it.i = it.i + 1
  local f = it.form._fields[it.i]
  if not f then return nil, nil end
  return f[1], f[2]
end

local HttpRequest = {}
HttpRequest.__index = HttpRequest

local function form_of(self)
  local req = self._req
  local form = rawget(req, '_evform')
  if not form then form = build_form(req); rawset(req, '_evform', form) end
  return form
end

--- syntax: method = request:get_method()
function HttpRequest:get_method() return self._req.method end

--- syntax: uri = request:get_uri()   (path and query, e.g. "/form?x=1")
function HttpRequest:get_uri() return '/' .. (self._req.path or '') .. (self._req.query or '') end

--- syntax: host = request:get_host()
function HttpRequest:get_host() return self._req.headers_value['host'] or '' end

--- syntax: params = request:get_query_parameters()   (name → first value)
function HttpRequest:get_query_parameters()
  local out = {}
  for k, v in pairs(self._req.get_params) do out[k] = v end
  return out
end

--- syntax: value = request:get_hdr_field(name)   (the first value, or "" when absent)
function HttpRequest:get_hdr_field(name)
  if type(name) ~= 'string' then arg_error(1, 'get_hdr_field', 'string', name) end
  local list = self._req.headers[name]
  return list and list[1] or ''
end

--- syntax: fields = request:get_hdr_fields()   (lowercase name → first value; lookups ignore case)
function HttpRequest:get_hdr_fields()
  local out = H.ci_table()
  for name, list in pairs(self._req.headers) do rawset(out, name, list[1]) end
  return out
end

--- syntax: ct = request:get_content_type()
function HttpRequest:get_content_type() return self._req.headers_value['content-type'] or '' end

--- syntax: n = request:get_content_length()   (-1 when not given)
function HttpRequest:get_content_length()
  return tonumber(self._req.headers_value['content-length'] or '') or -1
end

--- syntax: cookies = request:get_cookies()
function HttpRequest:get_cookies()
  local out = {}
  for k, v in pairs(self._req.cookies) do out[k] = v end
  return out
end

--- syntax: chunk = request:read()   (the next chunk of the body; nil at its end)
function HttpRequest:read() return forms.read(self._req) end

--- syntax: body = request:get_message_body_str()
function HttpRequest:get_message_body_str() return self._req.body end

--- syntax: form = request:parse_req_form()
function HttpRequest:parse_req_form() return form_of(self) end

--- syntax: names = request:get_part_names()
function HttpRequest:get_part_names() return form_of(self):get_part_names() end

--- syntax: part = request:get_part(name)
function HttpRequest:get_part(name) return form_of(self):get_part(name) end

local HttpResponse = {}
HttpResponse.__index = HttpResponse

local function find_header(req, name)
  local h, lname = req._headers, lower(name)
  for i = 1, #h, 2 do
    if lower(h[i]) == lname then return i end
  end
end

-- Poco's set: replaces every earlier value of the header.
local function set_header(req, name, value)
  local h, lname = req._headers, lower(name)
  for i = #h - 1, 1, -2 do
    if lower(h[i]) == lname then table.remove(h, i + 1); table.remove(h, i) end
  end
  request_mod.add_header(req, name, value, 4)
end

--- syntax: response:set_status(code)
function HttpResponse:set_status(code)
  if type(code) ~= 'number' then arg_error(1, 'set_status', 'number', code) end
  request_mod.set_status(self._req, code, 3)
end

--- syntax: code = response:get_status()
function HttpResponse:get_status() return self._req._status or 200 end

--- syntax: response:set_content_type(content_type)
function HttpResponse:set_content_type(ct)
  if type(ct) ~= 'string' then arg_error(1, 'set_content_type', 'string', ct) end
  set_header(self._req, 'Content-Type', ct)
end

--- syntax: response:set_hdr_field(name, value)
function HttpResponse:set_hdr_field(name, value)
  if type(name) ~= 'string' then arg_error(1, 'set_hdr_field', 'string', name) end
  set_header(self._req, name, tostring(value))
end

--- syntax: value = response:get_hdr_field(name)   ("" when not set)
function HttpResponse:get_hdr_field(name)
  local i = find_header(self._req, name)
  return i and self._req._headers[i + 1] or ''
end

--- syntax: response:set_content_length(n)
function HttpResponse:set_content_length(n)
  if type(n) ~= 'number' then arg_error(1, 'set_content_length', 'number', n) end
  set_header(self._req, 'Content-Length', ('%d'):format(n))
end

--- syntax: response:set_chunked_trfencoding(flag)
function HttpResponse:set_chunked_trfencoding(flag)
  self._req._chunked = flag and true or false
end

--- syntax: flag = response:get_chunked_trfencoding()
function HttpResponse:get_chunked_trfencoding() return self._req._chunked == true end

--- syntax: response:send()   (sends the status line and headers; write() sends the body)
function HttpResponse:send()
  local req = self._req
  if req._started then return end
  request_mod.check_open(req, 'send the response', 3)
  if req._chunked then
    local i = find_header(req, 'Content-Length')
    while i do table.remove(req._headers, i + 1); table.remove(req._headers, i); i = find_header(req, 'Content-Length') end
  end
  request_mod.start(req)
end

--- syntax: response:write(data [, n])   (n: only the first n bytes of data)
function HttpResponse:write(data, n)
  local req = self._req
  request_mod.check_open(req, 'write', 3)
  data = tostring(data)
  if type(n) == 'number' then data = data:sub(1, n) end
  if not req._started then self:send() end
  request_mod.write(req, data, 3)
end

local M = {}

-- The object of class mt over the calling handler's request, made once and kept on it under key.
local function attached(key, mt)
  local req = request_mod.current()
  if not req then return nil, 'no http request in this coroutine' end
  local r = rawget(req, key)
  if not r then r = setmetatable({ _req = req }, mt); rawset(req, key, r) end
  return r
end

--- syntax: request, err = platform.get_http_request()   (nil, err outside a request handler)
function M.get_http_request() return attached('_evrequest', HttpRequest) end

--- syntax: response, err = platform.get_http_response()   (nil, err outside a request handler)
function M.get_http_response() return attached('_evresponse', HttpResponse) end

return M
