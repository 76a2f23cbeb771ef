-- The head event with the dialog's state, counting one more try of that event (counted before
-- trying, so a crash mid-try counts too) — one round trip per event for the drainer.
-- KEYS: 1 inbox, 2 state, 3 attempts
-- Returns {} when the inbox is empty, else {entry, attempts, data, seq, version, updated_ms}.
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then return {} end
local attempts = redis.call('HINCRBY', KEYS[3], 'e:' .. entry_seq(head), 1)
local st = redis.call('HMGET', KEYS[2], 'data', 'seq', 'version', 'updated_ms')
return {head, attempts, st[1], st[2], st[3], st[4]}
