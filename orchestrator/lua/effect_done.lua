-- Mark an effect done (it ran; truthful whoever holds the lease now): it never runs again.
-- KEYS: 1 fxstatus, 2 outbox, 3 attempts
-- ARGV: 1 effect id
redis.call('HSET', KEYS[1], ARGV[1], 'done')
redis.call('LREM', KEYS[2], 1, ARGV[1])
redis.call('HDEL', KEYS[3], 'f:' .. ARGV[1])
return 1
