-- The exit handshake: with nothing left to do, clear sched, lease and pending together, so an
-- ingest either sees sched set (and we see its event here) or sets sched itself and wakes a drain.
-- KEYS: 1 lease, 2 inbox, 3 outbox, 4 sched, 5 pending
-- ARGV: 1 token, 2 pending member
-- Returns 1 exited, 0 work arrived (keep going), -1 lease lost.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('LLEN', KEYS[2]) > 0 or redis.call('LLEN', KEYS[3]) > 0 then return 0 end
redis.call('DEL', KEYS[4], KEYS[1])
redis.call('ZREM', KEYS[5], ARGV[2])
return 1
