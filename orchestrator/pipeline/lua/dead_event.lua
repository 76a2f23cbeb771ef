-- Move the head event to the DLQ (fenced like a commit) so the dialog can go on; re-arm the
-- dialog's retention like a commit (a dialog whose events all fail is forgotten too).
-- KEYS: 1 lease, 2 inbox, 3 attempts, 4 dlq, 5 history, 6.. the retained keys (DialogKeys)
-- ARGV: 1 token, 2 seq, 3 member id, 4 chat id, 5 error, 6 attempts, 7 now ms, 8 history record,
--       9 history cap, 10 DLQ max length (0: no cap), 11 retention ms (0: keep forever)
-- Returns the DLQ entry id, -1 lease lost, -2 the head is not this event any more.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local head = redis.call('LINDEX', KEYS[2], 0)
if not head or entry_seq(head) ~= tonumber(ARGV[2]) then return -2 end
local id = dead_letter(KEYS[4], ARGV[10], 'kind', 'event', 'member_id', ARGV[3],
  'chat_id', ARGV[4], 'seq', ARGV[2], 'entry', head, 'error', ARGV[5], 'attempts', ARGV[6],
  'failed_ms', ARGV[7])
redis.call('LPOP', KEYS[2])
redis.call('HDEL', KEYS[3], 'e:' .. ARGV[2])
redis.call('RPUSH', KEYS[5], ARGV[8])
redis.call('LTRIM', KEYS[5], -tonumber(ARGV[9]), -1)
retain(6, ARGV[11])
return id
