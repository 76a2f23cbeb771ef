-- GCRA (the meter form of the portal's leaky bucket), one call per REST request.
-- KEYS[1]  the portal's theoretical arrival time (TAT), integer microseconds of Redis TIME
-- ARGV[1]  mode: "acquire" or "penalize"
-- ARGV[2]  emission interval, microseconds (1e6 / drain per second)
-- ARGV[3]  burst: requests that may go at once (capacity minus the safety margin)
-- ARGV[4]  acquire: the longest wait we reserve a slot for (us); penalize: extra slots to wait
-- Returns {granted (1|0), wait_us, now_us}: granted -> the slot at now_us + wait_us is reserved,
-- sleep wait_us then send; not granted -> nothing reserved, sleep wait_us and ask again.
-- The clock is Redis TIME so every host of the fleet measures against the same clock.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tau = (burst - 1) * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end

local function store(value)
  local ttl_ms = math.floor((value - now) / 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.0f', value), 'PX', ttl_ms)
end

if ARGV[1] == 'penalize' then
  -- The portal said its bucket is full: make ours full too, plus a few slots of drain, so the
  -- whole fleet pauses instead of each process discovering the 503 on its own.
  local full = now + tau + interval * (1 + tonumber(ARGV[4]))
  if full > tat then tat = full end
  store(tat)
  return {1, math.floor(tat - tau - now), now}
end

local wait = tat - tau - now
if wait < 0 then wait = 0 end
if wait > tonumber(ARGV[4]) then
  return {0, math.floor(wait), now}
end
store(tat + interval)
return {1, math.floor(wait), now}
