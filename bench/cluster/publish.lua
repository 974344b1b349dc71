-- The cluster's publish script (issue 12's design, "Publishing"), for timing it alone with
-- redis-benchmark EVALSHA. The gateway carries its own copy (Sources/Upstream/ClusterScripts.swift,
-- `publish`): keep the two the same.
-- KEYS = [NAME, NAME:seq, NAME:meta]
-- ARGV = [epochHex, retain, timeMs, n, slot1, type1, data1, ..., slotN, typeN, dataN]
local epoch = redis.call('HGET', KEYS[3], 'epoch')
if epoch ~= ARGV[1] then
  return redis.error_reply('EPOCH ' .. (epoch or 'none'))
end
local n = tonumber(ARGV[4])
if n == nil or n < 1 or #ARGV ~= 4 + 3 * n then
  return redis.error_reply('ERR ringgate publish: bad argument count')
end
local last = redis.call('INCRBY', KEYS[2], n)
local first = last - n + 1
local id
for i = 0, n - 1 do
  local a = 5 + 3 * i
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*',
    'seq', string.format('%d', first + i), 'epoch', ARGV[1],
    'slot', ARGV[a], 'type', ARGV[a + 1], 'data', ARGV[a + 2], 'time', ARGV[3])
end
return {first, id}
