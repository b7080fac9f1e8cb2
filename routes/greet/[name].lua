local greeting = require 'greeting'

return {
  get = function(request)
    return {
      message = greeting.make(request.params.name, request.get_params.punctuation),
      agent = request.headers_value['user-agent'],
      at = platform.now(),
    }
  end,
}
