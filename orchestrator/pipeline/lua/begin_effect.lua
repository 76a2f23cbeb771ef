-- Right before running an effect: check we still hold the lease and count one more try.
-- KEYS: 1 lease, 2 attempts
-- ARGV: 1 token, 2 effect id
-- Returns {tries begun, this one counted; tries that failed cleanly (see effect_failed)}, or -1
-- when the lease is not ours any more. Begun minus failed minus this one: tries that crashed.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local begun = redis.call('HINCRBY', KEYS[2], 'f:' .. ARGV[2], 1)
return {begun, tonumber(redis.call('HGET', KEYS[2], 'x:' .. ARGV[2]) or '0')}
