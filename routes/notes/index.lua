-- GET /notes: every note (a JSON array). POST /notes: a new note from { title, body } (JSON or form).
local json = require 'json'
local store = require 'notes_store'
local http = require 'notes_http'

return {
  get = function()
    local notes, err = store.list()
    if not notes then return http.failed(err) end
    -- json.encode makes {} of an empty table: an empty list is written out as [].
    return 200, #notes == 0 and '[]' or json.encode(notes), { ['Content-Type'] = 'application/json; charset=utf-8' }
  end,

  post = function(request)
    local fields, ferr = http.fields(request)
    if not fields then return 400, { error = ferr } end
    if not fields.title or fields.title == '' then return 400, { error = 'title is required' } end
    local note, err = store.create(fields)
    if not note then return http.failed(err) end
    return 201, note, { Location = '/notes/' .. note.id }
  end,
}
