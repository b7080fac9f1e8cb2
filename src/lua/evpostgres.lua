-- evpostgres: PostgreSQL through the server's connection pool. Connections and statements are
-- tables around numbers the JS side keeps; a connection goes back to the pool on close(), when the
-- task that opened it ends, or when the Lua GC collects a dropped one.
local fns = ...
local type, error, select, setmetatable, getmetatable, pcall, tostring = type, error, select, setmetatable, getmetatable, pcall, tostring
local pack, unpack = table.pack, table.unpack

local query, open, cquery, prepare, execute, finalize, close, commit =
  fns.query, fns.open, fns.cquery, fns.prepare, fns.execute, fns.finalize, fns.close, fns.commit

local M = { _VERSION = '0.1.0', null = require('platform').null }

local D = require 'evlua.data'
local check_sql = D.check_sql

--- syntax: conn:close()   (back to the pool; an open transaction is rolled back)   and   stmt:close()
local Conn, check_conn = D.handle('evpostgres.connection', 'evpostgres connection', 'conn', 'connection', close)
local Stmt, check_stmt = D.handle('evpostgres.statement', 'evpostgres statement', 'stmt', 'statement', finalize)

--- syntax: rows, err = evpostgres.query(sql, ...)
function M.query(sql, ...)
  check_sql(sql, 'query')
  return query(sql, ...)
end

--- syntax: conn, err = evpostgres.open_connection()
function M.open_connection()
  local id, err = open()
  if not id then return nil, err end
  return setmetatable({ _id = id, _depth = 0 }, Conn)
end

--- syntax: value = evpostgres.bytea(s)   (bind s as bytes even when it is valid UTF-8 text)
function M.bytea(s)
  if type(s) ~= 'string' then
    error("bad argument #1 to 'bytea' (string expected, got " .. type(s) .. ')', 2)
  end
  return { __evlua_bytea = s }
end

--- syntax: rows, err = conn:query(sql, ...)
function Conn:query(sql, ...)
  local id = check_conn(self, 'query')
  check_sql(sql, 'query')
  return cquery(id, sql, ...)
end

--- syntax: stmt, err = conn:prepare(sql)
function Conn:prepare(sql)
  local id = check_conn(self, 'prepare')
  check_sql(sql, 'prepare')
  local sid, err = prepare(id, sql)
  if not sid then return nil, err end
  return setmetatable({ _id = sid, conn = self }, Stmt)
end

local function simple(self, fname, sql)
  local id = check_conn(self, fname)
  local rows, err = cquery(id, sql)
  if not rows then return nil, err end
  return true
end

--- syntax: ok, err = conn:begin()
function Conn:begin() return simple(self, 'begin', 'BEGIN') end

--- syntax: ok, err = conn:commit()   (nil, err when a statement had failed: Postgres rolled back)
function Conn:commit()
  return commit(check_conn(self, 'commit'))
end

--- syntax: ok, err = conn:rollback()
function Conn:rollback() return simple(self, 'rollback', 'ROLLBACK') end

--- syntax: ... = conn:transaction(fn)   (nested: a savepoint)
function Conn:transaction(fn)
  local id = check_conn(self, 'transaction')
  D.check_function(fn, 'transaction')
  local depth = self._depth
  local sp = 'evlua_' .. depth
  local ok, err = cquery(id, depth == 0 and 'BEGIN' or ('SAVEPOINT ' .. sp))
  if not ok then return nil, err end
  self._depth = depth + 1
  -- the depth counts only while fn runs: commit or undo happen at the outer level again
  local function undo()
    self._depth = depth
    if depth == 0 then cquery(id, 'ROLLBACK')
    else cquery(id, 'ROLLBACK TO SAVEPOINT ' .. sp); cquery(id, 'RELEASE SAVEPOINT ' .. sp) end
  end
  local function finish()
    self._depth = depth
    if depth == 0 then return commit(id) end
    return cquery(id, 'RELEASE SAVEPOINT ' .. sp)
  end
  return D.transaction(fn, self, undo, finish)
end


--- syntax: ... = evpostgres.transaction(fn)   (fn(conn) on a connection of its own)
function M.transaction(fn)
  D.check_function(fn, 'transaction')
  local conn, err = M.open_connection()
  if not conn then return nil, err end
  local r = pack(conn:transaction(fn))
  conn:close()
  return unpack(r, 1, r.n)
end

--- syntax: rows, err = stmt:execute(...)
function Stmt:execute(...)
  local rows, err = execute(check_stmt(self, 'execute'), ...)
  self._last = rows
  return rows, err
end

--- syntax: for row in stmt:rows(...) do ... end
--- (with no parameters, or LuaDBI's rows(true): the rows of the last execute)
function Stmt:rows(...)
  local n, first = select('#', ...), ...
  local rows
  if n == 0 or (n == 1 and type(first) == 'boolean') then
    rows = self._last or {}
  else
    local err
    rows, err = self:execute(...)
    if not rows then error(err, 2) end
  end
  local i = 0
  return function()
    i = i + 1
    return rows[i]
  end
end

return M
