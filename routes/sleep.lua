-- platform.sleep suspends this request's coroutine only: other requests run meanwhile.
return {
  get = function(request)
    local seconds = tonumber(request.get_params.seconds) or 0.1
    if seconds < 0 or seconds > 10 then
      return 400, { error = 'seconds must be between 0 and 10' }
    end
    local started = platform.now()
    platform.sleep(seconds)
    return { slept = platform.now() - started }
  end,
}
