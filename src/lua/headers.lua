-- Moonbridge's header views (headers, headers_value, headers_csv_string, headers_csv_table,
-- headers_flags). Each view looks a name up only when it is read (one call to JS for that name);
-- pairs() over a view fills it with every header. A view keeps its source under a private key and
-- shares its metatable with every view of its kind: building one costs a single table.
local setmetatable, rawget, rawset, pairs, ipairs, next, type, concat, lower =
  setmetatable, rawget, rawset, pairs, ipairs, next, type, table.concat, string.lower

local ci_mt = { __index = function(t, k) if type(k) == 'string' then return rawget(t, lower(k)) end end }
local function ci_table() return setmetatable({}, ci_mt) end

local H = { ci_table = ci_table }

--- name → list of values, one per header line (lowercase names). raw is { name, value, ... }.
function H.lists(raw)
  local lists = {}
  for i = 1, #raw, 2 do
    local name = lower(raw[i])
    local list = lists[name]
    if not list then list = {}; lists[name] = list end
    list[#list + 1] = raw[i + 1]
  end
  return lists
end

local function csv_items(list)
  local items = {}
  for _, v in ipairs(list) do
    for item in v:gmatch('[^,]+') do
      item = item:match('^%s*(.-)%s*$')
      if item ~= '' then items[#items + 1] = item end
    end
  end
  return items
end

-- What each view holds for a header, from the list of its values.
local derive = {
  headers = function(list) return list end,
  value = function(list) return #list == 1 and list[1] end,
  csv_string = function(list) return concat(list, ', ') end,
  csv_table = csv_items,
  flags = function(list)
    local f = ci_table()
    for _, item in ipairs(csv_items(list)) do rawset(f, lower(item), true) end
    return f
  end,
}

-- The private key under which a view keeps its source (a table: no string key can clash).
local SOURCE = {}
H.SOURCE = SOURCE

-- pairs() over a view: its headers, never the source key.
local function view_next(t, k)
  local nk, nv = next(t, k)
  if nk == SOURCE then nk, nv = next(t, nk) end
  return nk, nv
end

--- Views over sources of one sort: lookup(source, kind, name, derive) → the view's value for a
--- name or nil; all(source) → name → list of values. Returns view(kind, source), a new view, and
--- the views' metatables by kind (a table of lowercase names → a view's values, with the source
--- under SOURCE, becomes a view with its kind's metatable).
function H.views(lookup, all)
  local metatables = {}
  for kind, make in pairs(derive) do
    metatables[kind] = {
      __index = function(t, k)
        if type(k) ~= 'string' then return nil end
        local name = lower(k)
        local v = rawget(t, name)
        if v ~= nil then return v end
        v = lookup(rawget(t, SOURCE), kind, name, make)
        if v == nil then return nil end
        rawset(t, name, v)
        return v
      end,
      __pairs = function(t)
        for name, list in pairs(all(rawget(t, SOURCE))) do
          if rawget(t, name) == nil then rawset(t, name, make(list)) end
        end
        return view_next, t, nil
      end,
    }
  end
  return function(kind, source) return setmetatable({ [SOURCE] = source }, metatables[kind]) end, metatables
end

return H
