-- A browser form with a text field and two file uploads (multipart/form-data); the POST handler
-- lists what arrived: each field's value, each file's name, type, size and a byte checksum.
local function escape(s)
  return (tostring(s):gsub('[&<>"\']', { ['&'] = '&amp;', ['<'] = '&lt;', ['>'] = '&gt;', ['"'] = '&quot;', ["'"] = '&#39;' }))
end

-- The sum of the bytes modulo 2^32: enough for the page to show that every byte arrived.
local function checksum(data)
  local sum = 0
  for i = 1, #data, 4096 do
    local bytes = { data:byte(i, math.min(i + 4095, #data)) }
    for j = 1, #bytes do sum = sum + bytes[j] end
  end
  return sum % 4294967296
end

local function page(title, body)
  return 200, ([[<!doctype html>
<html><head><meta charset="utf-8"><title>%s</title><link rel="stylesheet" href="/form.css"></head>
<body>
<h1>%s</h1>
%s
<p><a href="/">home</a></p>
</body></html>
]]):format(escape(title), escape(title), body), { ['Content-Type'] = 'text/html; charset=utf-8' }
end

return {
  get = function(request)
    return page('Upload form', [[
<form method="post" action="/form" enctype="multipart/form-data">
  <label>Title <input type="text" name="title"></label>
  <label>First file <input type="file" name="file1"></label>
  <label>Second file <input type="file" name="file2"></label>
  <button type="submit">Send</button>
</form>]])
  end,

  post = function(request)
    local items = {}
    items[#items + 1] = ('<li class="field" data-name="title">title: <span class="value">%s</span></li>')
      :format(escape(request.post_params.title or ''))
    for _, name in ipairs({ 'file1', 'file2' }) do
      local data, meta = request.post_params[name], request.post_metadata[name]
      if data and meta and meta.file_name and meta.file_name ~= '' then
        items[#items + 1] = ('<li class="file" data-name="%s"><span class="file-name">%s</span>'
          .. ' <span class="type">%s</span> <span class="size">%d</span> bytes, checksum <span class="sum">%d</span></li>')
          :format(name, escape(meta.file_name), escape(meta.content_type or ''), #data, checksum(data))
      else
        items[#items + 1] = ('<li class="file" data-name="%s">no file</li>'):format(name)
      end
    end
    return page('Received', '<ul id="received">\n' .. table.concat(items, '\n') .. '\n</ul>')
  end,
}
