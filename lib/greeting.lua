local greeting = {}

function greeting.make(name, punctuation)
  return 'hello, ' .. name .. (punctuation or '.')
end

return greeting
