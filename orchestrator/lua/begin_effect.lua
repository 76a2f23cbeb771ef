-- Right before running an effect: check we still hold the lease and count one more try.
-- KEYS: 1 lease, 2 attempts
-- ARGV: 1 token, 2 effect id
-- Returns the try number, or -1 when the lease is not ours any more.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
return redis.call('HINCRBY', KEYS[2], 'f:' .. ARGV[2], 1)
