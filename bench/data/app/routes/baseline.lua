-- No data access: the framework's own cost, the ceiling for the data scenarios' ratios.
return {
  get = function()
    return { id = 1, name = 'user 1', email = 'user1@example.com', score = 1.5 }
  end,
}
