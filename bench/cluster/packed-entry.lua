-- An experiment for docs/SCALING.md ("Cheaper entries"), not what the gateway runs: one stream
-- entry per call, the n events packed into one field. KEYS as the publish script (Sources/Upstream/ClusterScripts.swift);
-- ARGV = [epochHex, retain, timeMs, n, packedEvents]
local epoch = redis.call('HGET', KEYS[3], 'epoch')
if epoch ~= ARGV[1] then return redis.error_reply('EPOCH ' .. (epoch or 'none')) end
local n = tonumber(ARGV[4])
local last = redis.call('INCRBY', KEYS[2], n)
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'first', string.format('%d', last - n + 1), 'n', ARGV[4], 'epoch', ARGV[1], 'time', ARGV[3], 'events', ARGV[5])
return {last - n + 1, id}
