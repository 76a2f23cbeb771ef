"""arq job functions: thin — bind the log context, call the runner, time the job."""

from __future__ import annotations

import time
from typing import Any

from structlog.contextvars import bound_contextvars

from orchestrator.observe import metrics
from orchestrator.pipeline.runner import Runner

__all__ = ["drain"]


async def drain(ctx: dict[str, Any], member_id: str, chat_id: str) -> str:
    """Drain one dialog's inbox (the job the ingest, handbacks and the sweeper queue)."""
    runner: Runner = ctx["runner"]
    started = time.perf_counter()
    outcome = "error"  # what a raised (or cancelled) drain is counted as
    try:
        with bound_contextvars(member_id=member_id, chat_id=chat_id, job_id=ctx.get("job_id")):
            outcome = (await runner.drain(member_id, chat_id)).value
    finally:
        metrics.JOB_SECONDS.labels(outcome=outcome).observe(time.perf_counter() - started)
    return outcome
