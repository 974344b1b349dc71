-- The cluster's publish script as /work/wt/prompts12/design.md fixes it ("Publishing"), for
-- timing it alone with redis-benchmark EVALSHA (the gateway carries its own copy in Upstream).
-- KEYS = [NAME, NAME:seq, NAME:meta]
-- ARGV = [epochHex, retain, timeMs, n, slot1, type1, data1, ..., slotN, typeN, dataN]
local epoch = redis.call('HGET', KEYS[3], 'epoch')
if epoch ~= ARGV[1] then
  return redis.error_reply('EPOCH ' .. (epoch or 'none'))
end
local n = tonumber(ARGV[4])
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
