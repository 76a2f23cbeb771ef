-- Move a failing effect to the DLQ (its event is committed already; the effect alone is dead),
-- and re-arm the dialog's retention like a commit.
-- KEYS: 1 lease, 2 effects, 3 fxstatus, 4 outbox, 5 attempts, 6 dlq, 7.. the retained keys
-- ARGV: 1 token, 2 effect id, 3 member id, 4 chat id, 5 error, 6 attempts, 7 now ms,
--       8 DLQ max length (0: no cap), 9 retention ms (0: keep forever)
-- Returns the DLQ entry id, or -1 when the lease was lost.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local record = redis.call('HGET', KEYS[2], ARGV[2]) or ''
local id = dead_letter(KEYS[6], ARGV[8], 'kind', 'effect', 'member_id', ARGV[3],
  'chat_id', ARGV[4], 'effect_id', ARGV[2], 'entry', record, 'error', ARGV[5],
  'attempts', ARGV[6], 'failed_ms', ARGV[7])
redis.call('HSET', KEYS[3], ARGV[2], 'dead')
redis.call('LREM', KEYS[4], 1, ARGV[2])
redis.call('HDEL', KEYS[5], 'f:' .. ARGV[2], 'x:' .. ARGV[2])
retain(7, ARGV[9])
return id
