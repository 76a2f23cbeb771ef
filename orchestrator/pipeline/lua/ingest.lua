-- Accept one event: drop a duplicate, append to the dialog's inbox, schedule the dialog.
-- KEYS: 1 dedup, 2 inbox, 3 seq, 4 sched, 5 pending, 6 queue, 7 job key
-- ARGV: 1 dedup ttl s, 2 event json, 3 pending member, 4 now ms, 5 job id, 6 job body,
--       7 job ttl ms
-- Returns {0, 0} for a duplicate, {1, seq} appended, {2, seq} appended and a drain job queued.
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return {0, 0}
end
local seq = redis.call('INCR', KEYS[3])
redis.call('RPUSH', KEYS[2], seq .. '|' .. ARGV[2])
-- Only the event that sets sched wakes a drainer; the drainer's exit handshake clears sched
-- atomically with its "inbox empty" check, so an append can never fall between the two.
-- sched and the pending entry are set and cleared together, so one check covers both.
if redis.call('SET', KEYS[4], ARGV[5], 'NX') then
  redis.call('ZADD', KEYS[5], 'NX', ARGV[4], ARGV[3])
  enqueue(KEYS[6], KEYS[7], ARGV[5], ARGV[6], ARGV[7], ARGV[4])
  return {2, seq}
end
return {1, seq}
