-- bench scenario "wait": one waiting call (a yield to JS and back), then text.
return {
  get = function(request)
    platform.sleep(0)
    return 'waited'
  end,
}
