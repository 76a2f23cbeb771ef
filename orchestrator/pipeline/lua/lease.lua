-- Take the dialog's lease (ARGV[1] empty) or renew ours (ARGV[1] = our token).
-- KEYS: 1 lease, 2 fence, 3 pending
-- ARGV: 1 token or '', 2 lease ms, 3 pending member, 4 now ms, 5 owner label
-- Returns the token held, or false when another drainer holds it (or ours expired).
local current = redis.call('GET', KEYS[1])
if ARGV[1] ~= '' then
  if current ~= ARGV[1] then return false end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[3], 'XX', ARGV[4], ARGV[3])
  return ARGV[1]
end
if current then return false end
local token = redis.call('INCR', KEYS[2]) .. ':' .. ARGV[5]
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], 'XX', ARGV[4], ARGV[3])
return token
