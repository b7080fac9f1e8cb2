-- The Lua half of the bridge: how Lua calls JS, how waits reach the scheduler, how modules load.
-- Called once per engine with the jsfunction C function, the two sentinels and the ids of the
-- core JS functions; returns the internal table the JS side keeps.
local jsfunction, NULL, PENDING, core = ...

local co_create, co_resume, co_yield, co_status = coroutine.create, coroutine.resume, coroutine.yield, coroutine.status
local select, error, type, setmetatable, rawset, load, tostring = select, error, type, setmetatable, rawset, load, tostring

-- wrap(id) is the Lua function that calls JS function id: a C closure that returns the JS
-- function's values, or `nil, err`, or raises. When the JS function returns a promise, the
-- coroutine yields PENDING to the scheduler, which resumes it once the promise settles.
local wrap = jsfunction

-- A user coroutine that waits on JS passes the wait up to the scheduler and carries the answer
-- back down, so waiting calls work inside coroutine.wrap / coroutine.resume too.
local function pass(co, ok, first, ...)
  if ok and first == PENDING then
    return pass(co, co_resume(co, co_yield(PENDING)))
  end
  return ok, first, ...
end

function coroutine.resume(co, ...)
  return pass(co, co_resume(co, ...))
end

function coroutine.wrap(fn)
  local co = co_create(fn)
  return function(...)
    local function unwrap(ok, ...)
      if ok then return ... end
      local err = ...
      if type(err) == 'string' then error(err, 0) end
      error(err)
    end
    return unwrap(coroutine.resume(co, ...))
  end
end

-- Globals are shared by every request: once the app has loaded, assigning one is a mistake.
local function refuse_global(_, name)
  error("assignment to undeclared global '" .. tostring(name) ..
    "': declare it local (globals are shared by every request)", 2)
end

-- Each file gets its own environment: free to define globals while its main chunk runs,
-- locked afterwards so per-request state cannot leak through it.
local function run_file(source, chunkname, ...)
  local env_mt = { __index = _G }
  local env = setmetatable({}, env_mt)
  local chunk, err = load(source, '@' .. chunkname, 't', env)
  if not chunk then error(err, 0) end
  local results = table.pack(chunk(...))
  env_mt.__newindex = refuse_global
  return table.unpack(results, 1, results.n)
end

local find_module = wrap(core.find_module)
local find_file = wrap(core.find_file)

local function builtin_searcher(name)
  local kind, a, b, c = find_module(name)
  if kind == 'builtin' then
    local source, chunkname, fn_ids = a, b, c
    return function()
      local fns = {}
      for fname, id in pairs(fn_ids) do fns[fname] = wrap(id) end
      if not source then return fns end
      local chunk, err = load(source, '=' .. chunkname, 't', _ENV)
      if not chunk then error(err, 0) end
      return chunk(fns, name)
    end, ':builtin:'
  elseif kind == 'disabled' then
    -- Not "not found": the module exists, it is not configured. Say only how to enable it,
    -- at the line of the require (level 3: searcher, require, its caller).
    error(a, 3)
  end
  return nil
end

local function disk_searcher(name)
  local source, chunkname, tried = find_file(name)
  if not source then return tried end
  -- require calls the loader with (name, chunkname); the chunk gets them as `...`, as in plain Lua
  -- (`local modname = ...` is the usual way for a module to know its own name).
  return function(...) return run_file(source, chunkname, ...) end, chunkname
end

package.searchers = { package.searchers[1], builtin_searcher, disk_searcher }
package.path = ''
package.cpath = ''

-- Most of what a request allocates dies with it: Lua 5.4's generational collector handles that
-- pattern for less work than the incremental one (measured: hello 0.69 → 0.79 of plain Fastify).
collectgarbage('generational')

local internal = {
  require = require,
  wrap = wrap,
  NULL = NULL,
  run_file = run_file,
}

package.loaded['evlua.internal'] = internal

function internal.set_global(name, modname)
  rawset(_G, name, require(modname))
end

-- The standalone runner's `arg`: arg[0] is the script, arg[1..n] its arguments.
function internal.set_arg(script, ...)
  local a = { ... }
  a[0] = script
  rawset(_G, 'arg', a)
end

function internal.lock_globals()
  setmetatable(_G, { __newindex = refuse_global })
end

return internal
