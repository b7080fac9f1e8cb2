-- evpoolrepos: named pools of Lua resources (connections, clients...). The JS side (generic-pool)
-- manages numbered slots and the waiting; each pool keeps its resources here, by slot.
local fns = ...
local type, error, setmetatable, getmetatable, pcall, tostring = type, error, setmetatable, getmetatable, pcall, tostring
local pack, unpack = table.pack, table.unpack

local new, acquire, release, destroy, stats, close = fns.new, fns.acquire, fns.release, fns.destroy, fns.stats, fns.close

local D = require 'evlua.data'

local M = { _VERSION = '0.1.0' }
local by_name = {}

local Pool = {}
Pool.__index = Pool
Pool.__name = 'evpoolrepos.pool'

local function check_pool(self, fname)
  if getmetatable(self) ~= Pool then
    error("bad argument #1 to '" .. fname .. "' (evpoolrepos pool expected; call it as pool:" .. fname .. '(...))', 3)
  end
  return self._id
end

local function check_opt(opts, key, kind)
  local v = opts[key]
  if v ~= nil and type(v) ~= kind then
    error("bad argument #2 to 'new' (" .. key .. ' must be a ' .. kind .. ', got ' .. type(v) .. ')', 3)
  end
end

--- syntax: pool, err = evpoolrepos.new(name, { create = fn, destroy = fn, max = n, min = n, acquire_timeout = s })
function M.new(name, opts)
  if type(name) ~= 'string' then
    error("bad argument #1 to 'new' (string expected, got " .. type(name) .. ')', 2)
  end
  if type(opts) ~= 'table' then
    error("bad argument #2 to 'new' (table expected, got " .. type(opts) .. ')', 2)
  end
  if type(opts.create) ~= 'function' then
    error("bad argument #2 to 'new' (create must be a function, got " .. type(opts.create) .. ')', 2)
  end
  check_opt(opts, 'destroy', 'function')
  check_opt(opts, 'max', 'number')
  check_opt(opts, 'min', 'number')
  check_opt(opts, 'acquire_timeout', 'number')
  check_opt(opts, 'idle_timeout', 'number')
  if by_name[name] then return nil, "pool '" .. name .. "' already exists" end

  local create, on_destroy = opts.create, opts.destroy
  local slots, slot_of = {}, {}

  -- Run as tasks by the JS side: make(slot) creates the resource of a new slot, unmake(slot) destroys it.
  local function make(slot)
    local res, err = create()
    if res == nil then return nil, tostring(err or 'create returned nil') end
    slots[slot] = res
    slot_of[res] = slot
    return true
  end
  local function unmake(slot)
    local res = slots[slot]
    slots[slot] = nil
    if res == nil then return true end
    if slot_of[res] == slot then slot_of[res] = nil end
    if on_destroy then
      local ok, err = pcall(on_destroy, res)
      if not ok then return nil, tostring(err) end
    end
    return true
  end

  local id, err = new(name, make, unmake, {
    max = opts.max, min = opts.min, acquire_timeout = opts.acquire_timeout, idle_timeout = opts.idle_timeout,
  })
  if not id then return nil, err end
  local pool = setmetatable({ name = name, _id = id, _slots = slots, _slot_of = slot_of }, Pool)
  by_name[name] = pool
  return pool
end

--- syntax: pool = evpoolrepos.get(name)   (nil when there is none)
function M.get(name)
  if type(name) ~= 'string' then
    error("bad argument #1 to 'get' (string expected, got " .. type(name) .. ')', 2)
  end
  return by_name[name]
end

--- syntax: res, err = pool:acquire()   (waits while the pool is exhausted; nil, "timeout" after acquire_timeout)
function Pool:acquire()
  local slot, err = acquire(check_pool(self, 'acquire'))
  if not slot then return nil, err end
  return self._slots[slot]
end

local function slot_of(self, res, fname)
  local slot = res ~= nil and self._slot_of[res]
  if not slot then return nil end
  return slot
end

--- syntax: ok, err = pool:release(res)
function Pool:release(res)
  local id = check_pool(self, 'release')
  local slot = slot_of(self, res, 'release')
  if not slot then return nil, 'resource is not borrowed from this pool' end
  return release(id, slot)
end

--- syntax: ok, err = pool:destroy(res)   (a broken resource: destroyed instead of going back to the pool)
function Pool:destroy(res)
  local id = check_pool(self, 'destroy')
  local slot = slot_of(self, res, 'destroy')
  if not slot then return nil, 'resource is not borrowed from this pool' end
  return destroy(id, slot)
end

--- syntax: ... = pool:use(fn)   (fn(res); the resource goes back to the pool however fn ends)
function Pool:use(fn)
  check_pool(self, 'use')
  D.check_function(fn, 'use')
  local res, err = self:acquire()
  if res == nil then return nil, err end
  local r = pack(pcall(fn, res))
  self:release(res)
  if not r[1] then return nil, tostring(r[2]) end
  return unpack(r, 2, r.n)
end

--- syntax: t = pool:stats()   ({ size, available, borrowed, pending, max, min })
function Pool:stats()
  return stats(check_pool(self, 'stats'))
end

--- syntax: pool:close()   (destroys idle resources now, borrowed ones when they come back)
function Pool:close()
  local id = check_pool(self, 'close')
  if by_name[self.name] == self then by_name[self.name] = nil end
  return close(id)
end

return M
