-- evredis: Redis commands on the server's shared connection. Values are byte strings both ways;
-- a nil reply is nil (platform.null inside a list reply); a failure is nil, err.
-- Functions work called with a dot or a colon: redis.get(k) and redis:get(k).
local fns = ...
local type, error, setmetatable = type, error, setmetatable

local call, get, publish, subscribe, unsubscribe = fns.call, fns.get, fns.publish, fns.subscribe, fns.unsubscribe

local M = { _VERSION = '0.1.0', null = require('platform').null }

--- syntax: reply, err = evredis.call(cmd, ...)
function M.call(cmd, ...)
  if cmd == M then return M.call(...) end
  if type(cmd) ~= 'string' then
    error("bad argument #1 to 'call' (string expected, got " .. type(cmd) .. ')', 2)
  end
  return call(cmd, ...)
end

--- syntax: value, err = evredis.get(key)   (nil when the key does not exist)
function M.get(key, other)
  if key == M then key = other end
  if type(key) ~= 'string' and type(key) ~= 'number' then
    error("bad argument #1 to 'get' (string expected, got " .. type(key) .. ')', 2)
  end
  return get(key)
end

local function command(name)
  local upper = name:upper()
  return function(first, ...)
    if first == M then return call(upper, ...) end
    return call(upper, first, ...)
  end
end

--- syntax: ok, err = evredis.set(key, value [, "EX", seconds ...])
M.set = command('set')
--- syntax: n, err = evredis.del(key, ...)
M.del = command('del')
--- syntax: n, err = evredis.incr(key)
M.incr = command('incr')
--- syntax: ok, err = evredis.expire(key, seconds)
M.expire = command('expire')
--- syntax: value, err = evredis.hget(key, field)
M.hget = command('hget')
--- syntax: n, err = evredis.hset(key, field, value, ...)
M.hset = command('hset')

--- syntax: n, err = evredis.publish(channel, message)   (n: how many subscribers got it)
function M.publish(channel, message, other)
  if channel == M then channel, message = message, other end
  return publish(channel, message)
end

local Subscription = {}
Subscription.__index = Subscription
Subscription.__name = 'evredis.subscription'

--- syntax: sub:unsubscribe()
function Subscription:unsubscribe()
  local id = self._id
  if not id then return true end
  self._id = nil
  return unsubscribe(id)
end

--- syntax: sub, err = evredis.subscribe(channel, fn)   (fn(message, channel) runs as a task of its own per message)
function M.subscribe(channel, fn, other)
  if channel == M then channel, fn = fn, other end
  if type(channel) ~= 'string' then
    error("bad argument #1 to 'subscribe' (string expected, got " .. type(channel) .. ')', 2)
  end
  if type(fn) ~= 'function' then
    error("bad argument #2 to 'subscribe' (function expected, got " .. type(fn) .. ')', 2)
  end
  local id, err = subscribe(channel, fn)
  if not id then return nil, err end
  return setmetatable({ _id = id, channel = channel }, Subscription)
end

return M
