-- GET, PUT/PATCH (change title and/or body) and DELETE one note.
local store = require 'notes_store'
local http = require 'notes_http'

local function not_found() return 404, { error = 'no such note' } end

local function update(request)
  local id = http.id(request)
  if not id then return not_found() end
  local fields, ferr = http.fields(request)
  if not fields then return 400, { error = ferr } end
  if fields.title == '' then return 400, { error = 'title cannot be empty' } end
  local note, err = store.update(id, fields)
  if err then return http.failed(err) end
  if not note then return not_found() end
  return note
end

return {
  get = function(request)
    local id = http.id(request)
    if not id then return not_found() end
    local note, err = store.get(id)
    if err then return http.failed(err) end
    if not note then return not_found() end
    return note
  end,

  put = update,
  patch = update,

  delete = function(request)
    local id = http.id(request)
    if not id then return not_found() end
    local deleted, err = store.delete(id)
    if err then return http.failed(err) end
    if not deleted then return not_found() end
    return 204
  end,
}
