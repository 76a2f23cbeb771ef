-- Apply one decided transition, fenced by the lease token and the head's sequence number:
-- write the state, queue the effects, pop the event, record the transition, and re-arm the
-- dialog's retention (an active dialog never expires; see retain in _lib.lua).
-- KEYS: 1 lease, 2 inbox, 3 state, 4 effects, 5 fxstatus, 6 outbox, 7 history, 8 attempts,
--       9.. the dialog's retained keys (DialogKeys.retained)
-- ARGV: 1 token, 2 seq, 3 state data, 4 now ms, 5 history record, 6 history cap,
--       7 retention ms (0: keep forever), 8.. pairs of (effect id, effect record json)
-- Returns the new state version, -1 lease lost, -2 the head is not this event any more.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local head = redis.call('LINDEX', KEYS[2], 0)
if not head or entry_seq(head) ~= tonumber(ARGV[2]) then return -2 end
redis.call('HSET', KEYS[3], 'data', ARGV[3], 'seq', ARGV[2], 'updated_ms', ARGV[4])
local version = redis.call('HINCRBY', KEYS[3], 'version', 1)
for i = 8, #ARGV, 2 do
  -- an effect id is deterministic: one that exists already is never queued twice
  if redis.call('HSETNX', KEYS[4], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('HSET', KEYS[5], ARGV[i], 'pending')
    redis.call('RPUSH', KEYS[6], ARGV[i])
  end
end
redis.call('LPOP', KEYS[2])
redis.call('HDEL', KEYS[8], 'e:' .. ARGV[2])
redis.call('RPUSH', KEYS[7], ARGV[5])
redis.call('LTRIM', KEYS[7], -tonumber(ARGV[6]), -1)
-- The outbox expires with the rest, not on its own: its effects run right after this commit,
-- so it outlives the retention only if no worker ran for that long (days), and then losing the
-- queue with its records beats keeping ids whose records are gone. The backlog left in the
-- inbox keeps no TTL at all: accepted events are never dropped (a backlog that outlived the
-- rest would start the dialog afresh).
retain(9, ARGV[7])
return version
