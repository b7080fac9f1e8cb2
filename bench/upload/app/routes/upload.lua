-- The upload benchmark's Lua route: a multipart form with a text field and a 1 MB file, read
-- through request.post_params (the whole file becomes one Lua string), answered with what arrived.
return { post = function(request)
  local file = request.post_params.file
  return { name = request.post_params.name, file_name = request.post_metadata.file.file_name, size = #file }
end }
