-- What the database modules share: argument checks, and the outcome rules of transaction(fn).
local type, error, pcall, tostring, pack, unpack, getmetatable = type, error, pcall, tostring, table.pack, table.unpack, getmetatable

local D = {}

--- Raise the usual bad-argument error at the caller's caller unless sql is a string.
function D.check_sql(sql, fname)
  if type(sql) ~= 'string' then
    error("bad argument #1 to '" .. fname .. "' (string expected, got " .. type(sql) .. ')', 3)
  end
end

--- Raise at the caller's caller unless fn is a function.
function D.check_function(fn, fname)
  if type(fn) ~= 'function' then
    error("bad argument #1 to '" .. fname .. "' (function expected, got " .. type(fn) .. ')', 3)
  end
end

--- The metatable of a kind of handle (a table around an id the JS side keeps: a database, a
--- connection, a statement), with close() and a __gc that both call release(id) once; and
--- check(self, fname), which returns the handle's id or raises at the method's caller.
--- name: the __name; kind and var: for the message ("evsqlite db", "db"); closed: "database".
function D.handle(name, kind, var, closed, release)
  local mt = { __name = name }
  mt.__index = mt
  mt.__gc = function(self) if self._id then release(self._id) end end
  function mt:close()
    local id = self._id
    if id then
      self._id = nil
      release(id)
    end
    return true
  end
  local function check(self, fname)
    if getmetatable(self) ~= mt then
      error("bad argument #1 to '" .. fname .. "' (" .. kind .. ' expected; call it as ' .. var .. ':' .. fname .. '(...))', 3)
    end
    return self._id or error('attempt to use a closed ' .. closed, 3)
  end
  return mt, check
end

--- Run fn(arg) inside a transaction already begun: commit() when it returns, undo() when it
--- raises or returns nil, err (or when the commit fails). Returns fn's results (true when it
--- returned nothing), or nil, err.
function D.transaction(fn, arg, undo, commit)
  local r = pack(pcall(fn, arg))
  if not r[1] then
    undo()
    return nil, tostring(r[2])
  end
  if r[2] == nil and r[3] ~= nil then
    undo()
    return nil, r[3]
  end
  local ok, err = commit()
  if not ok then
    undo()
    return nil, err
  end
  if r[2] == nil then return true end
  return unpack(r, 2, r.n)
end

return D
