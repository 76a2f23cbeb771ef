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
