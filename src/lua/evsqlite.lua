-- evsqlite: SQLite databases (node:sqlite). A db and a stmt are tables around numbers the JS side
-- keeps; a table the program drops closes its JS half when the Lua GC collects it.
local fns = ...
local type, error, select, setmetatable, getmetatable, pcall, tostring = type, error, select, setmetatable, getmetatable, pcall, tostring
local pack, unpack = table.pack, table.unpack

local open, close, exec, statement_key, run, prepare, execute, finalize = fns.open, fns.close, fns.exec, fns.statement_key, fns.run, fns.prepare, fns.execute, fns.finalize
local cursor, next_row, close_cursor = fns.cursor, fns.next, fns.close_cursor
local begin, commit, rollback, last_id, changes = fns.begin, fns.commit, fns.rollback, fns.last_id, fns.changes

local M = { _VERSION = '0.1.0', null = require('platform').null }

local D = require 'evlua.data'

--- syntax: db:close()   and   stmt:close()
local DB, check_db = D.handle('evsqlite.db', 'evsqlite db', 'db', 'database', close)
local Stmt, check_stmt = D.handle('evsqlite.stmt', 'evsqlite stmt', 'stmt', 'statement', finalize)
local check_sql = D.check_sql

-- db:query's statements, by SQL text: { keys = { [sql] = key }, n = count }, one per connection
-- (the handles of a file share theirs), so the text need not cross to JS on every query.
local CACHE_SIZE = 256
local shared_caches = {}

--- syntax: db, err = evsqlite.open([path])
function M.open(path)
  if path ~= nil and type(path) ~= 'string' then
    error("bad argument #1 to 'open' (string or nil expected, got " .. type(path) .. ')', 2)
  end
  local id, shared = open(path)
  if not id then return nil, shared end
  local cache = shared and shared_caches[shared]
  if not cache then
    cache = { keys = {}, n = 0 }
    if shared then shared_caches[shared] = cache end
  end
  return setmetatable({ _id = id, _cache = cache }, DB)
end

-- The key of sql's statement, prepared on first use (nil, err for an SQL error).
local function key_for(cache, id, sql)
  -- Full: start afresh (JS forgets its side too) rather than track which statements are used.
  if cache.n >= CACHE_SIZE then cache.keys, cache.n = {}, 0 end
  local k, err = statement_key(id, sql, cache.n == 0)
  if not k then return nil, err end
  cache.keys[sql] = k
  cache.n = cache.n + 1
  return k
end

--- syntax: ok, err = db:exec(sql)   (one or more statements, no parameters, no rows)
function DB:exec(sql)
  local id = check_db(self, 'exec')
  check_sql(sql, 'exec')
  return exec(id, sql)
end

--- syntax: rows, err = db:query(sql, ...)
function DB:query(sql, ...)
  -- check_db inline: this is the call a request makes most.
  local id = getmetatable(self) == DB and self._id or check_db(self, 'query')
  local cache = self._cache
  local k = cache.keys[sql]
  if not k then
    check_sql(sql, 'query')
    local err
    k, err = key_for(cache, id, sql)
    if not k then return nil, err end
  end
  return run(id, k, ...)
end

--- syntax: stmt, err = db:prepare(sql)
function DB:prepare(sql)
  local id = check_db(self, 'prepare')
  check_sql(sql, 'prepare')
  local sid, err = prepare(id, sql)
  if not sid then return nil, err end
  return setmetatable({ _id = sid, db = self }, Stmt)
end

-- Generic-for iterator over a cursor; the 4th value closes the cursor when the loop ends early
-- (and an iterator dropped outside a for loop is closed when Lua collects it).
local function finish_cursor(c) if c.id then close_cursor(c.id); c.id = nil end end
local cursor_closer = { __close = finish_cursor, __gc = finish_cursor }

local function iterate(cid)
  local closer = setmetatable({ id = cid }, cursor_closer)
  return function()
    if not closer.id then return nil end
    local row, err = next_row(closer.id)
    if row == nil then
      closer.id = nil
      if err then error(err, 2) end
    end
    return row
  end, nil, nil, closer
end

--- syntax: for row in db:rows(sql, ...) do ... end
function DB:rows(sql, ...)
  local id = check_db(self, 'rows')
  check_sql(sql, 'rows')
  local cid, err = cursor(id, sql, false, false, ...)
  if not cid then error(err, 2) end
  return iterate(cid)
end

--- syntax: ... = db:transaction(fn)   (fn(db); commits when it returns, rolls back when it raises or returns nil, err)
function DB:transaction(fn)
  local id = check_db(self, 'transaction')
  D.check_function(fn, 'transaction')
  local ok, err = begin(id)
  if not ok then return nil, err end
  return D.transaction(fn, self, function() rollback(id) end, function() return commit(id) end)
end

--- syntax: id = db:last_id()
function DB:last_id() return last_id(check_db(self, 'last_id')) end

--- syntax: n = db:changes()
function DB:changes() return changes(check_db(self, 'changes')) end


--- syntax: rows, err = stmt:execute(...)
function Stmt:execute(...)
  return execute(check_stmt(self, 'execute'), ...)
end

--- syntax: for row in stmt:rows(...) do ... end
--- (LuaDBI's form too: stmt:execute(...) then stmt:rows([named]): the last execute's parameters;
--- rows(false) gives each row as a list in column order)
function Stmt:rows(...)
  local id = check_stmt(self, 'rows')
  local n, first = select('#', ...), ...
  local cid, err
  if n == 0 or (n == 1 and type(first) == 'boolean') then
    cid, err = cursor(id, nil, true, first == false)
  else
    cid, err = cursor(id, nil, false, false, ...)
  end
  if not cid then error(err, 2) end
  return iterate(cid)
end

return M
