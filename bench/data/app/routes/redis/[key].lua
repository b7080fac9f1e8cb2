-- One Redis GET, the value as text.
local redis = require 'evredis'

return {
  get = function(request)
    local v, err = redis.get(request.params.key)
    if err then return 500, { error = err } end
    if v == nil then return 404, { error = 'not found' } end
    return v
  end,
}
