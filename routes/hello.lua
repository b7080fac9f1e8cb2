return {
  get = function(request)
    return "hello world"
  end,
}
