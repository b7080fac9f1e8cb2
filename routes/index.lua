-- The example app's home page: links to each example route.
local page = [[
<!doctype html>
<html><head><meta charset="utf-8"><title>evlua example</title></head>
<body>
<h1>evlua</h1>
<p>Lua handlers served by Fastify. Try:</p>
<ul>
  <li><a href="/hello">/hello</a>: plain text</li>
  <li><a href="/greet/world?punctuation=!">/greet/world</a>: JSON with a route parameter, a query parameter and a header</li>
  <li><a href="/sleep?seconds=0.5">/sleep?seconds=0.5</a>: a wait that suspends only this request</li>
  <li><a href="/stream">/stream</a>: a response streamed chunk by chunk</li>
  <li><a href="/notes">/notes</a>: a JSON notes store (SQLite by default, Postgres with DATABASE_URL)</li>
  <li><a href="/form">/form</a>: a form with file uploads</li>
</ul>
</body></html>
]]

return {
  get = function(request)
    return 200, page, { ['Content-Type'] = 'text/html; charset=utf-8' }
  end,
}
