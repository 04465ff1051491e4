-- Benchmarks/compare: Callgate's AuthorizeCall hot path as one atomic Redis script (check, reset, increment).
--
-- KEYS[1]  the agent's list of number keys (a:<agent, 12 digits>), in assignment order
-- ARGV[1]  the destination's country (ISO alpha-2)
--
-- Each number is a hash {limit, count, day, countries}; countries is ",US,CA,GB,". The first number that
-- allows the country and is under its limit today is counted (its count restarts at 0 when its stored day
-- is not today, in UTC days from the server's clock) and returned: {1, number key, count}. Else {0}.
local numbers = redis.call('LRANGE', KEYS[1], 0, -1)
local needle = ',' .. ARGV[1] .. ','
local today = tostring(math.floor(tonumber(redis.call('TIME')[1]) / 86400))
for i = 1, #numbers do
  local h = redis.call('HMGET', numbers[i], 'limit', 'count', 'day', 'countries')
  if h[1] and h[4] and string.find(h[4], needle, 1, true) then
    local count = tonumber(h[2]) or 0
    if h[3] ~= today then count = 0 end
    if count < tonumber(h[1]) then
      count = count + 1
      redis.call('HSET', numbers[i], 'count', count, 'day', today)
      return {1, numbers[i], count}
    end
  end
end
return {0}
