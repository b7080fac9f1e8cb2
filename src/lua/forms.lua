-- The request body for the Moonbridge request object: request.body, the POST parameter tables
-- (urlencoded and multipart forms), and the stream handlers. The JS half hands over one chunk (or
-- one part header) per call; a call that has to wait for the client suspends only this coroutine.
--
-- State kept on the request (raw fields): _kind ('none' | 'raw' | 'form' | 'multipart'),
-- _consumed (nil | 'partial' | 'all': how much of the raw body was read), _processed (the POST
-- tables are built; no more stream handlers), _streamers / _patterns (registered handlers).
local fns = ...

local type, error, tonumber, rawget, rawset, ipairs = type, error, tonumber, rawget, rawset, ipairs
local char, match = string.char, string.match

local M = {}

local function url_decode(s)
  s = s:gsub('+', ' ')
  return (s:gsub('%%(%x%x)', function(h) return char(tonumber(h, 16)) end))
end

-- `a=1&b=2&a=3` in order: calls each(name, value).
local function each_urlencoded(s, each)
  for pair in s:gmatch('[^&]+') do
    local k, v = match(pair, '^([^=]*)=(.*)$')
    if not k then k, v = pair, '' end
    each(url_decode(k), url_decode(v))
  end
end

--- first-value table and list table (get_params / get_params_list).
function M.parse_urlencoded(s)
  local first, list = {}, {}
  each_urlencoded(s, function(k, v)
    if first[k] == nil then first[k] = v end
    local l = list[k]
    if not l then l = {}; list[k] = l end
    l[#l + 1] = v
  end)
  return first, list
end
M.url_decode = url_decode

-- A failure of the JS half (413, a broken upload): the request fails with it.
local function check(value, err)
  if value == nil and err ~= nil then error(err, 0) end
  return value
end

-- Whether automatic processing has anything to do: not yet processed, and the input still there
-- (an urlencoded body already read into request.body can still be parsed).
local function processable(req)
  if rawget(req, '_processed') then return false end
  if not rawget(req, '_consumed') then return true end
  return req._kind == 'form' and rawget(req, 'body') ~= nil
end

--- The raw body (request.body).
function M.body(req)
  local kind = req._kind
  if kind == 'none' then return '' end
  if rawget(req, '_consumed') then
    error('request.body: the request body has already been streamed or consumed', 0)
  end
  if kind == 'multipart' and rawget(req, '_processed') then
    error('request.body: the multipart body has already been processed into post_params', 0)
  end
  rawset(req, '_consumed', 'all')
  return check(fns.read_all(req._id)) or ''
end

--- The next chunk of the raw body, or nil at its end (evpoco's request:read()).
function M.read(req)
  if req._kind == 'none' or rawget(req, '_consumed') == 'all' then return nil end
  if rawget(req, '_processed') and req._kind == 'multipart' then return nil end
  rawset(req, '_consumed', 'partial')
  local chunk = check(fns.next_chunk(req._id))
  if chunk == nil then rawset(req, '_consumed', 'all') end
  return chunk
end

--- syntax: request:stream_request_body(callback)   (callback(chunk) per chunk; returns at the end)
function M.stream_body(req, callback)
  if type(callback) ~= 'function' then
    error("bad argument #1 to 'stream_request_body' (function expected, got " .. type(callback) .. ')', 3)
  end
  if rawget(req, '_consumed') == 'all' or rawget(req, 'body') ~= nil
    or (rawget(req, '_processed') and req._kind == 'multipart') then
    error('cannot stream the request body: it has already been read', 3)
  end
  if req._kind == 'none' then rawset(req, '_consumed', 'all'); return end
  rawset(req, '_consumed', 'partial')
  local id = req._id
  while true do
    local chunk = check(fns.next_chunk(id))
    if chunk == nil then break end
    callback(chunk)
  end
  rawset(req, '_consumed', 'all')
end

--- Register a POST field stream handler (by exact name, or by Lua pattern).
function M.register(req, what, callback, pattern)
  local fname = pattern and 'stream_post_params' or 'stream_post_param'
  if type(what) ~= 'string' then
    error('bad argument #1 to \'' .. fname .. "' (string expected, got " .. type(what) .. ')', 3)
  end
  if type(callback) ~= 'function' then
    error('bad argument #2 to \'' .. fname .. "' (function expected, got " .. type(callback) .. ')', 3)
  end
  if not processable(req) then
    error('cannot register a POST field stream handler: the request body has already been '
      .. (rawget(req, '_processed') and 'processed' or 'read'), 3)
  end
  if pattern then
    local list = rawget(req, '_patterns')
    if not list then list = {}; rawset(req, '_patterns', list) end
    list[#list + 1] = { what, callback }
  else
    local map = rawget(req, '_streamers')
    if not map then map = {}; rawset(req, '_streamers', map) end
    map[what] = callback
  end
end

local function streamer_for(req, name)
  local map = rawget(req, '_streamers')
  local s = map and map[name]
  if s then return s end
  local list = rawget(req, '_patterns')
  if list then
    for _, rule in ipairs(list) do
      if match(name, rule[1]) then return rule[2] end
    end
  end
end

local function new_tables(req)
  local params, lists, meta, meta_lists, entries = {}, {}, {}, {}, {}
  req.post_params, req.post_params_list, req.post_metadata, req.post_metadata_list = params, lists, meta, meta_lists
  rawset(req, '_post_entries', entries)
  return function(name, value, m)
    if params[name] == nil then params[name] = value; meta[name] = m end
    local l = lists[name]
    if not l then l = {}; lists[name] = l; meta_lists[name] = {} end
    l[#l + 1] = value
    local ml = meta_lists[name]
    ml[#ml + 1] = m
    entries[#entries + 1] = { name, value, m }
  end
end

local function process_multipart(req, store)
  local id = req._id
  if not rawget(req, '_streamers') and not rawget(req, '_patterns') then
    -- nothing to stream: the whole form in one call (file names and types are false when absent)
    local n, names, values, file_names, types = fns.read_form(id)
    check(n, names)
    for i = 1, n do
      local name = names[i]
      store(name, values[i], { field_name = name, file_name = file_names[i] or nil, content_type = types[i] or nil })
    end
    return
  end
  while true do
    local more, name, file_name, content_type = fns.next_part(id)
    if not more then check(nil, name); break end
    if name ~= nil then
      local meta = { field_name = name, file_name = file_name, content_type = content_type }
      local streamer = streamer_for(req, name)
      if streamer then
        -- the first call carries the metadata (and '' for an empty part), then one call per
        -- further chunk, then a call with no arguments
        local first = check(fns.part_chunk(id))
        streamer(first or '', name, meta)
        if first ~= nil then
          while true do
            local chunk = check(fns.part_chunk(id))
            if chunk == nil then break end
            streamer(chunk)
          end
        end
        streamer()
      else
        store(name, check(fns.part_rest(id)) or '', meta)
      end
    end
  end
end

--- syntax: request:process_request_body()
function M.process(req)
  if rawget(req, '_processed') then return end
  rawset(req, '_processed', true)
  local store = new_tables(req)
  local kind = req._kind
  if kind == 'multipart' then
    if rawget(req, '_consumed') then
      error('cannot process the request body: it has already been streamed or consumed', 0)
    end
    rawset(req, '_consumed', 'all')
    process_multipart(req, store)
  elseif kind == 'form' then
    local body = rawget(req, 'body')
    if body == nil then
      if rawget(req, '_consumed') then
        error('cannot process the request body: it has already been streamed or consumed', 0)
      end
      body = M.body(req)
      rawset(req, 'body', body)
    end
    each_urlencoded(body, function(name, value)
      local meta = { field_name = name }
      local streamer = streamer_for(req, name)
      if streamer then
        streamer(value, name, meta)
        streamer()
      else
        store(name, value, meta)
      end
    end)
  end
end

--- Process the body when the response starts (Moonbridge's rule), unless defer_reading() was
--- called; raw bodies stay unread for request.body.
function M.auto(req)
  if rawget(req, '_deferred') or not processable(req) then return end
  local kind = req._kind
  if kind == 'form' or kind == 'multipart' then M.process(req) end
end

--- The handler has returned: stream handlers that are still waiting get their data now.
function M.finish(req)
  if not processable(req) then return end
  if rawget(req, '_streamers') or rawget(req, '_patterns') then M.process(req) end
end

--- syntax: request:consume_input()   (process forms, read and drop whatever is left)
function M.consume(req)
  local kind = req._kind
  if kind == 'none' then return end
  if (kind == 'form' or kind == 'multipart') and processable(req) then M.process(req) end
  if rawget(req, '_consumed') == 'all' then return end
  rawset(req, '_consumed', 'all')
  check(fns.drain(req._id))
end

return M
