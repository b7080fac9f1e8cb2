-- platform: the flowing-code core (sleep, spawn, now, null). Waiting calls suspend only the
-- calling coroutine.
local fns = ...
local tostring, type, error, select, setmetatable, pack, unpack = tostring, type, error, select, setmetatable, table.pack, table.unpack

local platform = { null = fns.null() }

--- syntax: platform.sleep(seconds)
function platform.sleep(seconds)
  if type(seconds) ~= 'number' then
    error("bad argument #1 to 'sleep' (number expected, got " .. type(seconds) .. ')', 2)
  end
  return fns.sleep(seconds)
end

--- syntax: t = platform.now()
platform.now = fns.now

local Task = {}
Task.__index = Task

--- syntax: ... = task:wait()   (the function's results, or nil, err when it raised)
function Task:wait()
  if not self._done then
    local err = fns.wait(self._id)
    if not self._done then self._error = err end
  end
  local r = self._results
  if not r then return nil, self._error or 'task was stopped' end
  if r[1] then return unpack(r, 2, r.n) end
  return nil, r[2]
end

--- syntax: done = task:done()
function Task:done() return self._done == true end

--- syntax: task = platform.spawn(fn, ...)
function platform.spawn(fn, ...)
  if type(fn) ~= 'function' then
    error("bad argument #1 to 'spawn' (function expected, got " .. type(fn) .. ')', 2)
  end
  local task = setmetatable({ _done = false }, Task)
  local args = pack(...)
  task._id = fns.spawn(function()
    local traceback
    local r = pack(xpcall(fn, function(err)
      traceback = debug.traceback(tostring(err), 2)
      return err
    end, unpack(args, 1, args.n)))
    task._results = r
    task._done = true
    if not r[1] then fns.report(traceback) end
  end)
  return task
end

-- evpoco's request and response objects over the calling handler's exchange (src/lua/evpoco.lua)
function platform.get_http_request() return require('evlua.evpoco').get_http_request() end
function platform.get_http_response() return require('evlua.evpoco').get_http_response() end

return platform
