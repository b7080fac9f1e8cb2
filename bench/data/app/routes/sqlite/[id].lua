-- One indexed SELECT on SQLite, the row as JSON.
local db = assert(require('evsqlite').open())

return {
  get = function(request)
    local rows, err = db:query('select id, name, email, score from users where id = ?', request.params.id)
    if not rows then return 500, { error = err } end
    if not rows[1] then return 404, { error = 'not found' } end
    return rows[1]
  end,
}
