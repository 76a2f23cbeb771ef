-- Hand the dialog on (budget spent, this worker is shutting down, or an effect waits to be
-- tried again): release the lease and queue a continuation drain due at ARGV[3]; sched stays
-- set, so ingests keep relying on that continuation. The pending score is the due time too, so
-- the sweeper only counts a delayed dialog as stale once its continuation is overdue.
-- KEYS: 1 lease, 2 sched, 3 pending, 4 queue, 5 job key
-- ARGV: 1 token, 2 pending member, 3 due ms, 4 job id, 5 job body, 6 job ttl ms
-- Returns 1, or -1 when the lease was not ours any more (its holder carries on).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
enqueue(KEYS[4], KEYS[5], ARGV[4], ARGV[5], ARGV[6], ARGV[3])
return 1
