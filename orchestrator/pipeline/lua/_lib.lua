-- Shared by the scripts below (scripts.py prepends this file to each of them).
-- Write an arq job record and queue it, exactly as arq's ArqRedis.enqueue_job would
-- (PSETEX the job key, ZADD the queue); the body is JSON (see orchestrator/jobs.py).
local function enqueue(queue, jobkey, job_id, body, ttl_ms, score)
  redis.call('PSETEX', jobkey, ttl_ms, body)
  redis.call('ZADD', queue, score, job_id)
end

-- The sequence number of an inbox entry "<seq>|<json>".
local function entry_seq(entry)
  return tonumber(string.match(entry, '^(%d+)|'))
end

-- Sliding retention: re-arm the expiry of a dialog's long-lived keys, KEYS[first] to the last
-- (DialogKeys.retained), to ttl_ms from now, so the dialog is forgotten whole once it has been
-- idle that long; 0 keeps it forever (PERSIST, so turning retention off reaches old keys too).
-- They share one expiry time, so a script never sees some of them gone and others not: above
-- all never an outbox naming effect records that expired. The inbox is not among them (it exists
-- only while it holds accepted events, and never expires), nor sched and lease.
local function retain(first, ttl_ms)
  local ttl = tonumber(ttl_ms)
  for i = first, #KEYS do
    if ttl > 0 then
      redis.call('PEXPIRE', KEYS[i], ttl)
    else
      redis.call('PERSIST', KEYS[i])
    end
  end
end

-- Append a dead letter to the DLQ stream, trimmed to about maxlen entries (oldest first; the
-- '~' trims whole stream nodes only, so it is cheap and keeps at least maxlen); 0: no cap.
local function dead_letter(stream, maxlen, ...)
  if tonumber(maxlen) > 0 then
    return redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', ...)
  end
  return redis.call('XADD', stream, '*', ...)
end
