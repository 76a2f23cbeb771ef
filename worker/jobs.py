"""arq job functions: thin — bind the log context, call the runner, time the job.

A drain that loses Redis midway is asked to run again (arq's `Retry`) rather than failed: the
inbox and the lease it worked on live in Redis, so nothing is lost, and arq would otherwise log
the outage as a failed job with a traceback. If Redis stays away, arq's own next step fails too
and the worker is rebuilt (worker/main.py); the sweeper re-queues whatever is left."""

from __future__ import annotations

import time
from typing import Any

import structlog
from arq import Retry
from redis.exceptions import RedisError
from structlog.contextvars import bound_contextvars

from orchestrator.observe import metrics
from orchestrator.pipeline.runner import Runner

__all__ = ["REDIS_DOWN", "drain"]

log = structlog.get_logger(__name__)

# How Redis going away shows: a connection error, or a WatchError when the connection died
# between a WATCH and its EXEC (OSError: a refused connect).
REDIS_DOWN = (RedisError, OSError)
REDIS_RETRY_S = 1.0  # before a drain that lost Redis runs again


async def drain(ctx: dict[str, Any], member_id: str, chat_id: str) -> str:
    """Drain one dialog's inbox (the job the ingest, handbacks and the sweeper queue)."""
    runner: Runner = ctx["runner"]
    started = time.perf_counter()
    outcome = "error"  # what a raised (or cancelled) drain is counted as
    try:
        with bound_contextvars(member_id=member_id, chat_id=chat_id, job_id=ctx.get("job_id")):
            outcome = (await runner.drain(member_id, chat_id)).value
    except REDIS_DOWN as exc:
        outcome = "redis_down"
        log.warning("drain_lost_redis", member_id=member_id, chat_id=chat_id, error=repr(exc))
        raise Retry(defer=REDIS_RETRY_S) from exc
    finally:
        metrics.JOB_SECONDS.labels(outcome=outcome).observe(time.perf_counter() - started)
    return outcome
