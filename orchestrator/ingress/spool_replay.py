"""Feeds the spool back into Redis once it answers again, through the normal verify + ingest.

Redis out of reach is the normal state of an outage and stays quiet (the next tick tries
again); a spool failure is not, and is always logged and counted. A file that could not be read
or deleted is given back or left for adoption, so the next tick tries it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator.errors import InvalidEvent, SpoolUnavailable
from orchestrator.ingress.intake import Intake, parse_body
from orchestrator.ingress.spool import Spool, report
from orchestrator.observe import metrics
from orchestrator.settings import Settings

__all__ = ["SpoolReplayer"]

log = structlog.get_logger(__name__)

# Redis out of reach. OSError is here for the socket errors redis-py lets through unwrapped; the
# spool's failures are SpoolUnavailable, never an OSError, so none of them can hide in it.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


class SpoolReplayer:
    """A background loop: register the configured portal, then replay spooled events."""

    def __init__(
        self,
        spool: Spool,
        lock: asyncio.Lock,
        intake: Intake,
        redis: aioredis.Redis,
        settings: Settings,
        *,
        interval_s: float = 0.5,
    ) -> None:
        self.spool, self.lock, self.intake, self.redis = spool, lock, intake, redis
        self.settings = settings
        self.interval_s = interval_s
        self._portal_done = False

    async def run(self, stopping: asyncio.Event | None = None) -> None:
        """Until `stopping` is set (or the task is cancelled)."""
        stopping = stopping or asyncio.Event()
        while not stopping.is_set():
            try:
                await self._register_portal()
                if await asyncio.to_thread(self.spool.has_backlog):
                    await self.redis.ping()
                    await self.replay_once()
            except UNREACHABLE:
                pass  # still down: the next tick tries again
            except SpoolUnavailable as exc:
                report(exc)
            except Exception:
                log.exception("spool_replay_failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await stopping.wait()

    async def _register_portal(self) -> None:
        """The single-portal webhook setup from Settings, once Redis is reachable (a Redis that
        loses it later gets it back from the epoch watch, or at the portal's next event)."""
        if not self._portal_done:
            await self.intake.ensure_configured()
            self._portal_done = True

    async def replay_once(self) -> int:
        """Replay every sealed spool file; returns the records fed in."""
        async with self.lock:
            files = await asyncio.to_thread(self.spool.claim)
        fed = 0
        for index, path in enumerate(files):
            try:
                fed += await self._replay_file(path)
            except SpoolUnavailable as exc:  # unreadable: given back, tried again next tick
                report(exc, file=path.name)
                await self._give_back([path])
                continue
            except Exception:  # Redis down again (or worse): the rest waits for a later tick
                await self._give_back(files[index:])
                raise
            try:
                await asyncio.to_thread(self.spool.discard, path)
            except SpoolUnavailable as exc:  # adopted and replayed again: dedup absorbs it
                report(exc, file=path.name)
        if fed:
            log.info("spool_replayed", records=fed)
        return fed

    async def _give_back(self, files: list[Path]) -> None:
        for path in files:
            try:
                await asyncio.to_thread(self.spool.release, path)
            except SpoolUnavailable as exc:  # left `.replaying` and unlocked: adopted later
                report(exc, file=path.name)

    async def _replay_file(self, path: Path) -> int:
        records = await asyncio.to_thread(lambda: list(Spool.read(path)))
        for record in records:
            try:
                _, event = parse_body(record.body, record.content_type)
                await self.intake.accept(event, record.received_ms)
            except InvalidEvent as exc:
                # verified only now (the registry was out of reach): a forged one is dropped here
                metrics.SPOOL_REPLAYED.labels(outcome="rejected").inc()
                log.warning("spooled_event_rejected", status=exc.status, reason=exc.reason)
                continue
            metrics.SPOOL_REPLAYED.labels(outcome="accepted").inc()
        return len(records)
