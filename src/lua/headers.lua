-- Moonbridge's header views, each built from the raw header list only when first read.
local setmetatable, rawget, rawset, pairs, ipairs, type, concat, lower =
  setmetatable, rawget, rawset, pairs, ipairs, type, table.concat, string.lower

local ci_mt = { __index = function(t, k) if type(k) == 'string' then return rawget(t, lower(k)) end end }
local function ci_table() return setmetatable({}, ci_mt) end

local H = { ci_table = ci_table }

--- name → list of values, one per header line (case-insensitive). raw is { name, value, ... }.
function H.headers(raw)
  local headers = ci_table()
  for i = 1, #raw, 2 do
    local name = lower(raw[i])
    local list = rawget(headers, name)
    if not list then list = {}; rawset(headers, name, list) end
    list[#list + 1] = raw[i + 1]
  end
  return headers
end

--- name → the value, or false when the header came more than once.
function H.value(headers)
  local out = ci_table()
  for name, list in pairs(headers) do rawset(out, name, #list == 1 and list[1]) end
  return out
end

--- name → all values joined with ", ".
function H.csv_string(headers)
  local out = ci_table()
  for name, list in pairs(headers) do rawset(out, name, concat(list, ', ')) end
  return out
end

--- name → every comma-separated item of every line.
function H.csv_table(headers)
  local out = ci_table()
  for name, list in pairs(headers) do
    local items = {}
    for _, v in ipairs(list) do
      for item in v:gmatch('[^,]+') do
        item = item:match('^%s*(.-)%s*$')
        if item ~= '' then items[#items + 1] = item end
      end
    end
    rawset(out, name, items)
  end
  return out
end

--- name → (item → true), items compared case-insensitively.
function H.flags(csv_table)
  local out = ci_table()
  for name, items in pairs(csv_table) do
    local f = ci_table()
    for _, item in ipairs(items) do rawset(f, lower(item), true) end
    rawset(out, name, f)
  end
  return out
end

return H
