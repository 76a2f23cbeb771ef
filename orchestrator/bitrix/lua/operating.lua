-- Per (portal, method) operating-time budget, fed by the portal's own `time.operating` reports.
-- KEYS[1]  hash: operating (s), reset_at (unix s), cost (s per call, EWMA), inflight (calls),
--          inflight_until (unix s: after it no call counted in `inflight` can still be running)
-- ARGV[1]  mode: "acquire" | "report" | "penalize"
-- acquire:  ARGV[2] threshold (s), ARGV[3] optional: the longest one of our calls can run (s)
--                                                        -> {granted 1|0, wait_ms}
-- report:   ARGV[2] operating or -1, ARGV[3] reset_at, ARGV[4] processing (s) or -1 -> {1, 0}
-- penalize: ARGV[2] limit (s), ARGV[3] hold (s)          -> {1, hold_ms}
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local h = redis.call('HMGET', KEYS[1], 'operating', 'reset_at', 'cost', 'inflight', 'inflight_until')
local operating = tonumber(h[1]) or 0
local reset_at = tonumber(h[2]) or 0
local cost_known = h[3] ~= false
local cost = tonumber(h[3]) or 0
local inflight = tonumber(h[4]) or 0
-- A process killed between acquire and report never gives its slot back. The portal ends any
-- request within 60 s, so once the last granted call is older than that, none is in flight.
if inflight < 0 or now > (tonumber(h[5]) or 0) then inflight = 0 end
local MAX_CALL_S = 75
local mode = ARGV[1]
-- The portal keeps 10 buckets of 60 s; after that nothing we stored is still true.
local TTL = 660

if mode == 'acquire' then
  -- Until one call has told us what the method costs, calls go one at a time: a cold start of
  -- many concurrent slow calls would otherwise overshoot the budget before the first report.
  if not cost_known and inflight > 0 then
    return {0, 50}
  end
  local projected = operating + (inflight + 1) * cost
  if projected > tonumber(ARGV[2]) then
    if now < reset_at then
      return {0, math.ceil((reset_at - now) * 1000)}
    end
    -- The oldest bucket expired but we do not know how much it held: let one probe call go
    -- and wait for its report instead of releasing everyone at once.
    if inflight > 0 then
      return {0, 100}
    end
  end
  local deadline = now + MAX_CALL_S
  -- A cold-start probe is the only call in flight and cannot outlive our own request timeout:
  -- a caller killed during it then holds the method back that long, not MAX_CALL_S.
  if not cost_known and ARGV[3] then deadline = now + math.min(MAX_CALL_S, tonumber(ARGV[3])) end
  redis.call('HSET', KEYS[1], 'inflight', inflight + 1, 'inflight_until', deadline)
  redis.call('EXPIRE', KEYS[1], TTL)
  return {1, 0}
end

if mode == 'report' then
  local reported = tonumber(ARGV[2])
  local new_reset = tonumber(ARGV[3])
  local processing = tonumber(ARGV[4])
  if inflight > 0 then inflight = inflight - 1 end
  if reported >= 0 then
    -- Answers arrive out of order: within one window the larger sum is the later one.
    if new_reset > reset_at or (new_reset == reset_at and reported > operating) then
      operating = reported
      reset_at = new_reset
    end
  end
  if processing >= 0 then
    -- Only calls longer than 0.1 s are charged by the portal (docs/bitrix24.md §2.2).
    -- The estimate rises at once and decays slowly: overestimating only holds back earlier.
    local charged = 0
    if processing > 0.1 then charged = processing end
    local decayed = 0.7 * cost + 0.3 * charged
    if not cost_known or charged > decayed then cost = charged else cost = decayed end
    redis.call('HSET', KEYS[1], 'cost', cost)
  end
  redis.call('HSET', KEYS[1], 'operating', operating, 'reset_at', reset_at, 'inflight', inflight)
  redis.call('EXPIRE', KEYS[1], TTL)
  return {1, 0}
end

-- penalize: the portal answered 429 although we held back; treat the budget as spent.
local hold_until = now + tonumber(ARGV[3])
if reset_at > hold_until then hold_until = reset_at end
if inflight > 0 then inflight = inflight - 1 end
redis.call('HSET', KEYS[1], 'operating', ARGV[2], 'reset_at', hold_until, 'inflight', inflight)
redis.call('EXPIRE', KEYS[1], TTL)
return {1, math.ceil((hold_until - now) * 1000)}
