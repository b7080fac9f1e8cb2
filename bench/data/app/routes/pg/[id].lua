-- One indexed SELECT on Postgres, the row as JSON.
local pg = require 'evpostgres'

return {
  get = function(request)
    local rows, err = pg.query('select id, name, email, score from users where id = $1', request.params.id)
    if not rows then return 500, { error = err } end
    if not rows[1] then return 404, { error = 'not found' } end
    return rows[1]
  end,
}
