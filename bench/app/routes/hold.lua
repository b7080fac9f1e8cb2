-- used by bench/memory.ts (not a throughput scenario): a request that stays suspended in
-- platform.sleep for ?s= seconds, to measure the memory each waiting request holds.
return {
  get = function(request)
    platform.sleep(tonumber(request.get_params.s) or 5)
    return 'held'
  end,
}
