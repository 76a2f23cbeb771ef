-- Hand the dialog on (budget spent, or this worker is shutting down): release the lease and
-- queue a continuation drain; sched stays set, so ingests keep relying on that continuation.
-- KEYS: 1 lease, 2 sched, 3 pending, 4 queue, 5 job key
-- ARGV: 1 token, 2 pending member, 3 now ms, 4 job id, 5 job body, 6 job ttl ms
-- Returns 1, or -1 when the lease was not ours any more (its holder carries on).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
enqueue(KEYS[4], KEYS[5], ARGV[4], ARGV[5], ARGV[6], ARGV[3])
return 1
