-- Bring a dead letter back: an event to the tail of its inbox with a fresh sequence number,
-- an effect back to the outbox (its record too, should the dialog have been forgotten since);
-- then schedule the dialog like an ingest does, and re-arm its retention like a commit.
-- KEYS: 1 dlq, 2 inbox, 3 seq, 4 outbox, 5 fxstatus, 6 sched, 7 pending, 8 queue, 9 job key,
--       10 effects, 11.. the dialog's retained keys (DialogKeys.retained)
-- ARGV: 1 entry id, 2 pending member, 3 now ms, 4 job id, 5 job body, 6 job ttl ms,
--       7 retention ms (0: keep forever)
-- Returns 1 replayed (and 2 if a drain was queued), 0 when the entry is gone (replayed already).
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return 0 end
local fields = {}
local raw = found[1][2]
for i = 1, #raw, 2 do fields[raw[i]] = raw[i + 1] end
if fields['kind'] == 'event' then
  local seq = redis.call('INCR', KEYS[3])
  local json = string.match(fields['entry'], '^%d+|(.*)$')
  redis.call('RPUSH', KEYS[2], seq .. '|' .. json)
else
  -- an outbox id without its record would never run nor leave the outbox
  local record = fields['entry'] or ''
  if record ~= '' then redis.call('HSETNX', KEYS[10], fields['effect_id'], record) end
  redis.call('HSET', KEYS[5], fields['effect_id'], 'pending')
  redis.call('RPUSH', KEYS[4], fields['effect_id'])
end
redis.call('XDEL', KEYS[1], ARGV[1])
retain(11, ARGV[7])
redis.call('ZADD', KEYS[7], 'NX', ARGV[3], ARGV[2])
if redis.call('SET', KEYS[6], ARGV[4], 'NX') then
  enqueue(KEYS[8], KEYS[9], ARGV[4], ARGV[5], ARGV[6], ARGV[3])
  return 2
end
return 1
