-- Re-schedule a dialog whose drainer vanished: pending for long, no live lease, work left.
-- Silent for long is not enough: a dialog whose drain job still waits for a free worker (a
-- backlog longer than a lease period, or a deferred job) is unleased and silent too, and a job
-- queued beside that one is a duplicate that every later pass would duplicate again.
-- arq keeps a job in the queue until it finished it, marked by its in-progress key while it runs.
-- The job's keys are built here from the job id sched holds (standalone Redis only, see keys.py).
-- KEYS: 1 lease, 2 inbox, 3 outbox, 4 sched, 5 pending, 6 queue, 7 job key
-- ARGV: 1 pending member, 2 stale before ms, 3 now ms, 4 job id, 5 job body, 6 job ttl ms,
--       7 arq's job key prefix, 8 its in-progress key prefix, 9 its retry key prefix
-- Returns 0 nothing to do, 1 re-scheduled, 2 cleaned up an idle entry, 3 its job still waits.
local score = redis.call('ZSCORE', KEYS[5], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local owner = redis.call('GET', KEYS[4])
if owner and redis.call('ZSCORE', KEYS[6], owner) then
  if redis.call('EXISTS', ARGV[8] .. owner) == 0 then return 3 end
  -- started, yet no lease for a lease period: its worker died (or lost the lease and stops at
  -- its next fenced step). arq would start it again once the in-progress key expires (its job
  -- timeout + 10 s): drop it as arq's finish_failed_job would, so the job below is the only one.
  redis.call('ZREM', KEYS[6], owner)
  redis.call('DEL', ARGV[7] .. owner, ARGV[8] .. owner, ARGV[9] .. owner)
end
if redis.call('LLEN', KEYS[2]) == 0 and redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('DEL', KEYS[4])
  redis.call('ZREM', KEYS[5], ARGV[1])
  return 2
end
redis.call('SET', KEYS[4], ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])
enqueue(KEYS[6], KEYS[7], ARGV[4], ARGV[5], ARGV[6], ARGV[3])
return 1
