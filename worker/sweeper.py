"""The sweeper: re-schedules dialogs whose drainer vanished (recovery in seconds, not arq's
in-progress timeout). Every worker runs one; the per-dialog Lua check makes that harmless."""

from __future__ import annotations

import asyncio
import random

import structlog
from redis.exceptions import RedisError

from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings

__all__ = ["sweep_forever"]

log = structlog.get_logger(__name__)


async def sweep_forever(store: Store, settings: Settings, stopping: asyncio.Event) -> None:
    """Every `sweep_interval_s` (jittered so workers do not sweep in lockstep), until stopping."""
    # pending entries are refreshed by every lease take/renew; one silent lease period means
    # the drainer is gone, or its job has not started yet: sweep.lua tells the two apart by the
    # job sched names (still waiting in arq's queue: left alone, no second job)
    stale_ms = settings.lease_ms
    while not stopping.is_set():
        delay = settings.sweep_interval_s * random.uniform(0.75, 1.25)
        try:
            await asyncio.wait_for(stopping.wait(), timeout=delay)
            return
        except TimeoutError:
            pass
        try:
            woken = await store.sweep(stale_ms)
        except RedisError as exc:
            log.warning("sweep_failed", error=str(exc))
            continue
        if woken:
            log.info("dialogs_rescheduled", count=woken)
