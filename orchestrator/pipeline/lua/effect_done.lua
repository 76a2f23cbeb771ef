-- Mark an effect done (it ran; truthful whoever holds the lease now): it never runs again; and
-- re-arm the dialog's retention, as a commit does (it counts from the dialog's last step).
-- KEYS: 1 fxstatus, 2 outbox, 3 attempts, 4.. the dialog's retained keys (DialogKeys.retained)
-- ARGV: 1 effect id, 2 retention ms (0: keep forever)
redis.call('HSET', KEYS[1], ARGV[1], 'done')
redis.call('LREM', KEYS[2], 1, ARGV[1])
redis.call('HDEL', KEYS[3], 'f:' .. ARGV[1], 'x:' .. ARGV[1])
retain(4, ARGV[2])
return 1
