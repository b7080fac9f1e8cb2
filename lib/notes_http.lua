-- What the notes routes share: reading a note from a JSON or form body, and error replies.
local json = require 'json'
local M = {}

--- The fields sent: a JSON object, or form fields (title, body). nil, message when unusable.
function M.fields(request)
  local ct = request.headers_value['content-type'] or ''
  local t
  if ct:find('application/json', 1, true) then
    local decoded = json.decode(request.body)
    if type(decoded) ~= 'table' then return nil, 'the body must be a JSON object' end
    t = decoded
  else
    t = request.post_params
  end
  local out = {}
  for _, k in ipairs({ 'title', 'body' }) do
    local v = t[k]
    if v ~= nil and v ~= json.null then
      if type(v) ~= 'string' then return nil, k .. ' must be a string' end
      out[k] = v
    end
  end
  return out
end

function M.id(request)
  local id = request.params.id
  if not id:match('^%d+$') or #id > 18 then return nil end
  return math.tointeger(tonumber(id))
end

function M.failed(err)
  return 500, { error = 'database error', detail = err }
end

return M
