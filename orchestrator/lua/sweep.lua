-- Re-schedule a dialog whose drainer vanished: pending for long, no live lease, work left.
-- KEYS: 1 lease, 2 inbox, 3 outbox, 4 sched, 5 pending, 6 queue, 7 job key
-- ARGV: 1 pending member, 2 stale before ms, 3 now ms, 4 job id, 5 job body, 6 job ttl ms
-- Returns 0 nothing to do, 1 re-scheduled, 2 cleaned up an idle entry.
local score = redis.call('ZSCORE', KEYS[5], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('LLEN', KEYS[2]) == 0 and redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('DEL', KEYS[4])
  redis.call('ZREM', KEYS[5], ARGV[1])
  return 2
end
redis.call('SET', KEYS[4], ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])
enqueue(KEYS[6], KEYS[7], ARGV[4], ARGV[5], ARGV[6], ARGV[3])
return 1
