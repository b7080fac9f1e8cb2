-- bench scenario "hello": the smallest handler, a text body.
return {
  get = function(request)
    return 'hello world'
  end,
}
