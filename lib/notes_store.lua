-- notes_store: the example app's notes. SQLite (evsqlite, the configured database) by default;
-- Postgres (evpostgres) when DATABASE_URL or config postgres.url is set. Same SQL for both, written
-- with Postgres placeholders ($1, $2...), which SQLite reads as ?1, ?2.
local M = {}

local has_pg, evpostgres = pcall(require, 'evpostgres')

local query, schema
if has_pg then
  M.backend = 'postgres'
  query = evpostgres.query
  schema = [[
    create table if not exists notes (
      id bigserial primary key,
      title text not null,
      body text not null default '',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )]]
else
  M.backend = 'sqlite'
  local db
  query = function(sql, ...)
    if not db then
      local err
      db, err = require('evsqlite').open()   -- config sqlite.path, made on first use
      if not db then return nil, err end
    end
    return db:query((sql:gsub('%$(%d+)', '?%1')), ...)
  end
  schema = [[
    create table if not exists notes (
      id integer primary key,
      title text not null,
      body text not null default '',
      created_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
      updated_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )]]
end

local now = has_pg and 'now()' or "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

-- The table is made on first use (a Postgres query needs a request to wait in).
local ready = false
local function run(sql, ...)
  if not ready then
    local ok, err = query(schema)
    if not ok then return nil, err end
    ready = true
  end
  return query(sql, ...)
end

--- syntax: notes, err = store.list()
function M.list()
  return run('select id, title, body, created_at, updated_at from notes order by id')
end

--- syntax: note, err = store.get(id)   (nil when there is none)
function M.get(id)
  local rows, err = run('select id, title, body, created_at, updated_at from notes where id = $1', id)
  if not rows then return nil, err end
  return rows[1]
end

--- syntax: note, err = store.create{ title = t, body = b }
function M.create(note)
  local rows, err = run('insert into notes (title, body) values ($1, $2) returning id, title, body, created_at, updated_at',
    note.title, note.body or '')
  if not rows then return nil, err end
  return rows[1]
end

--- syntax: note, err = store.update(id, { title = t, body = b })   (fields left out are kept; nil when there is none)
function M.update(id, fields)
  local rows, err = run('update notes set title = coalesce($2, title), body = coalesce($3, body), updated_at = ' .. now ..
    ' where id = $1 returning id, title, body, created_at, updated_at', id, fields.title, fields.body)
  if not rows then return nil, err end
  return rows[1]
end

--- syntax: deleted, err = store.delete(id)
function M.delete(id)
  local rows, err = run('delete from notes where id = $1 returning id', id)
  if not rows then return nil, err end
  return #rows > 0
end

return M
