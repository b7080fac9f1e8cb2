-- bench scenario "json": reads a path parameter, a query parameter and a header; answers JSON.
return {
  get = function(request)
    return {
      id = request.params.id,
      q = request.get_params.q,
      agent = request.headers_value['x-bench'],
      ok = true,
    }
  end,
}
