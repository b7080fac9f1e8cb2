-- json: encode in Lua (one string crosses to JS), decode through JS's JSON.parse.
local fns = ...
local NULL = fns.null()

local tonumber, type, pairs, tostring, concat, format, math_type, rawlen = tonumber, type, pairs, tostring, table.concat, string.format, math.type, rawlen
local huge = math.huge

local json = { null = NULL }

local escapes = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}
for i = 0, 31 do
  local c = string.char(i)
  if not escapes[c] then escapes[c] = format('\\u%04x', i) end
end
escapes['\127'] = '\\u007f'

local find, gsub = string.find, string.gsub

local function quote(s)
  if not find(s, '[%c"\\]') then return '"' .. s .. '"' end
  return '"' .. gsub(s, '[%c"\\]', escapes) .. '"'
end

local encode_value

local function is_array(t)
  local n = rawlen(t)
  if n == 0 then return false, 0 end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n, n
end

local function encode_table(t, buf, depth, seen)
  if seen[t] then error('cannot encode a table that contains itself', 0) end
  if depth > 100 then error('cannot encode: tables nested too deeply', 0) end
  seen[t] = true
  local array, n = is_array(t)
  if array then
    buf[#buf + 1] = '['
    for i = 1, n do
      if i > 1 then buf[#buf + 1] = ',' end
      encode_value(t[i], buf, depth + 1, seen)
    end
    buf[#buf + 1] = ']'
  else
    buf[#buf + 1] = '{'
    local first = true
    for k, v in pairs(t) do
      local kt = type(k)
      if kt == 'number' then k = tostring(k)
      elseif kt ~= 'string' then error('cannot encode a table key of type ' .. kt, 0) end
      if not first then buf[#buf + 1] = ',' end
      first = false
      buf[#buf + 1] = quote(k)
      buf[#buf + 1] = ':'
      encode_value(v, buf, depth + 1, seen)
    end
    buf[#buf + 1] = '}'
  end
  seen[t] = nil
end

function encode_value(v, buf, depth, seen)
  local t = type(v)
  if t == 'string' then buf[#buf + 1] = quote(v)
  elseif t == 'number' then
    if math_type(v) == 'integer' then buf[#buf + 1] = tostring(v)
    elseif v ~= v or v == huge or v == -huge then error('cannot encode ' .. tostring(v) .. ' in JSON', 0)
    else
      local s = format('%.14g', v)
      if tonumber(s) ~= v then s = format('%.17g', v) end
      buf[#buf + 1] = s
    end
  elseif t == 'boolean' then buf[#buf + 1] = v and 'true' or 'false'
  elseif t == 'nil' or v == NULL then buf[#buf + 1] = 'null'
  elseif t == 'table' then encode_table(v, buf, depth, seen)
  else error('cannot encode a value of type ' .. t .. ' in JSON', 0) end
end

--- syntax: s = json.encode(value)
function json.encode(v)
  local t = type(v)
  if t == 'string' then return quote(v) end
  local buf = {}
  local ok, err = pcall(encode_value, v, buf, 0, {})
  if not ok then error(err, 2) end
  return concat(buf)
end

local decode = fns.decode

--- syntax: value, err = json.decode(s)
function json.decode(s)
  if type(s) ~= 'string' then
    error("bad argument #1 to 'decode' (string expected, got " .. type(s) .. ')', 2)
  end
  return decode(s)
end

return json
