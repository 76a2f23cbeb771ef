"""The pollers of one worker process: a standby for every queue we pull, holder of some.

Every worker runs `Pollers.run_forever`; it looks up the fetch-mode v2 bots we registered
(orchestrator/bitrix/bot_store.py, every `poller_discover_s`) and keeps one task per bot. A task
tries the bot's lease (lease.py) every second: the one that holds it polls (fetcher.py), the
others wait, and take over within a lease period (`poller_lease_ms`) when the holder dies. So a
fleet of N workers spends the request budget of one poller per bot, whatever N is.

A wake-up on `Keys.fetch_wake` (wake.py; a dialog timer held back by the watermark publishes
it) makes the holders of that portal's bots poll at once (fetcher.py, `min_gap_s`). A
failing poll (the portal throttles or is down, Redis is away) is logged and retried on the busy
cadence by the same holder; nothing here lets an exception end the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from orchestrator.bitrix.bot_store import BotRecord, BotStore
from orchestrator.bitrix.methods import PortalApi
from orchestrator.errors import OrchestratorError
from orchestrator.ingress.pull.fetcher import BotFetcher, Cadence
from orchestrator.ingress.pull.lease import PollLease
from orchestrator.ingress.pull.wake import listen
from orchestrator.observe import metrics
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings

__all__ = ["STANDBY_S", "Pollers", "cadence_of"]

log = structlog.get_logger(__name__)

STANDBY_S = 1.0  # how often a standby tries a lease it does not hold


def cadence_of(settings: Settings) -> Cadence:
    """The fetch cadence the settings ask for."""
    return Cadence(
        busy_s=settings.fetch_busy_s,
        idle_min_s=settings.fetch_idle_min_s,
        idle_max_s=settings.fetch_idle_max_s,
        limit=settings.fetch_limit,
    )


class Pollers:
    """Keeps a fetcher task for each fetch-mode bot; the leases decide who polls."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        api_for: Callable[[str], PortalApi],
        *,
        holder: str,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.api_for = api_for
        self.holder = holder
        self.store = Store(redis, settings)
        self.bots = BotStore(redis, prefix=settings.key_prefix)
        self.keys = Keys(settings.key_prefix)
        self.cadence = cadence_of(settings)
        self._tasks: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._fetchers: dict[tuple[str, int], BotFetcher] = {}

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Discover bots and keep their tasks until `stop`; then hand every lease over."""
        notices = asyncio.create_task(
            listen(self.redis, [self.keys.fetch_wake], self._on_notice, stop)
        )
        try:
            while not stop.is_set():
                try:
                    await self._discover(stop)
                except (RedisError, OSError) as exc:
                    log.warning("pollers_discover_failed", error=repr(exc)[:200])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.poller_discover_s)
        finally:
            notices.cancel()
            tasks = [*self._tasks.values(), notices]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)

    async def _on_notice(self, member_id: str) -> None:
        """The portal has news for this member: its bots' holders poll now (standbys ignore)."""
        for (member, _), fetcher in self._fetchers.items():
            if member == member_id and fetcher.lease.held:
                fetcher.wake.set()

    async def _discover(self, stop: asyncio.Event) -> None:
        for member_id, record in await self.bots.all():
            key = (member_id, record.bot_id)
            if record.event_mode != "fetch" or key in self._tasks:
                continue
            self._tasks[key] = asyncio.create_task(
                self._bot_loop(member_id, record, stop), name=f"fetch:{member_id}:{record.bot_id}"
            )

    async def _bot_loop(self, member_id: str, record: BotRecord, stop: asyncio.Event) -> None:
        lease = PollLease(
            self.redis,
            self.keys,
            member_id,
            f"bot-{record.bot_id}",
            holder=self.holder,
            ttl_ms=self.settings.poller_lease_ms,
        )
        bots = self.api_for(member_id).bot_v2(record.bot_token)
        fetcher = BotFetcher(self.store, lease, bots, record.bot_id, cadence=self.cadence)
        self._fetchers[(member_id, record.bot_id)] = fetcher
        try:
            while not stop.is_set():
                wait = STANDBY_S * random.uniform(0.8, 1.2)
                try:
                    held = lease.held
                    if await lease.acquire():
                        if not held:
                            metrics.POLLER_TAKEOVERS.labels(poller="bot").inc()
                            log.info("poller_lease_taken", bot_id=record.bot_id, token=lease.token)
                        await fetcher.run(stop)
                        wait = 0 if lease.held else wait
                except (OrchestratorError, RedisError, OSError) as exc:
                    # the portal throttles or is away, or Redis is: keep the lease, retry soon
                    log.warning("bot_poll_failed", bot_id=record.bot_id, error=repr(exc)[:200])
                    wait = self.cadence.busy_s
                if wait:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await lease.release()  # a clean stop hands over at once
