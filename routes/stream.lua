-- send_data streams: the client reads each chunk as it is sent.
return {
  get = function(request)
    request:send_status(200)
    request:send_header('Content-Type', 'text/plain; charset=utf-8')
    for i = 1, 5 do
      request:send_data('chunk ', i, '\n')
      platform.sleep(0.2)
    end
    request:finish()
  end,
}
