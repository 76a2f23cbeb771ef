"""A Redis that comes back empty is noticed, said aloud and healed where it can be.

Redis restarted without persistence (or flushed, or failed over to a replica that had nothing)
answers every command as before: acknowledged events, the portal registry and the credentials
are gone without an error anywhere. So Redis carries a marker, the epoch (`<prefix>:epoch`, a
random id written once with SET NX), that the ingress and every worker learn at start and check
every `REDIS_EPOCH_CHECK_S`; the ingress also keeps it in a file beside its spool, so a Redis
emptied while the ingress itself was down is noticed at its next start.

A missing or changed epoch is a loss: an error line (`redis_data_lost`), `ol_redis_data_losses`
+1, a new epoch, a record of the loss in Redis (`<prefix>:data-loss`: when, the old and new
epoch, who noticed first), and the portals the settings name registered again at once. The
record stays until an operator acknowledges it (`orchestrator redis ack-loss`): until then
`/readyz` reports it and `ol_redis_data_loss_unacknowledged` is 1 in every process, so the loss
is visible, not silent. What is lost stays lost: events acknowledged before the loss, dialog
state, and OAuth portals (their tokens lived only there; each must install the app again).

At start, each process reads Redis's persistence settings (`CONFIG GET`, where allowed) and
warns when acknowledged events live only in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError, ResponseError

from orchestrator.observe import metrics
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.queue import now_ms
from orchestrator.redis.client import aw

__all__ = ["EpochWatch", "Loss", "acknowledge_loss", "persistence_mode", "read_loss"]

log = structlog.get_logger(__name__)

# Redis out of reach: the check waits for the next tick (an outage is not a loss).
_DOWN = (RedisError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Loss:
    """One noticed loss of Redis's data."""

    detected_ms: int
    previous_epoch: str
    epoch: str
    noticed_by: str

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Loss:
        """Parse the stored form."""
        return cls(**json.loads(raw))


async def read_loss(redis: aioredis.Redis, keys: Keys) -> Loss | None:
    """The unacknowledged loss, if any."""
    raw = await aw(redis.get(keys.data_loss))
    return Loss.from_json(raw) if raw else None


async def acknowledge_loss(redis: aioredis.Redis, keys: Keys) -> Loss | None:
    """Clear the loss record (an operator has seen it); returns what was acknowledged."""
    loss = await read_loss(redis, keys)
    if loss is not None:
        await aw(redis.delete(keys.data_loss))
    return loss


async def persistence_mode(redis: aioredis.Redis) -> str:
    """`aof`, `rdb`, `none`, or `unknown` when CONFIG is not allowed (managed Redis)."""
    try:
        aof = await aw(redis.config_get("appendonly"))
        save = await aw(redis.config_get("save"))
    except ResponseError:
        return "unknown"
    if _text(aof.get("appendonly", aof.get(b"appendonly", ""))) == "yes":
        return "aof"
    return "rdb" if _text(save.get("save", save.get(b"save", ""))).strip() else "none"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class EpochWatch:
    """Learns the epoch at start, then checks it; a loss calls `on_loss` (re-registration)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        who: str,
        on_loss: Callable[[], Awaitable[None]] | None = None,
        marker: Path | None = None,
        interval_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.who = who
        self.on_loss = on_loss
        self.marker = marker
        self.interval_s = interval_s
        self.epoch: str | None = None
        self.unacknowledged: Loss | None = None  # as of the last check (read by /readyz)

    async def run(self, stopping: asyncio.Event | None = None) -> None:
        """Start (once Redis answers), then check every interval until stopped or cancelled."""
        stopping = stopping or asyncio.Event()
        reachable: bool | None = None  # said once per change: an outage is one line, not many
        while not stopping.is_set():
            try:
                await (self.check() if self.epoch else self.start())
            except _DOWN as exc:
                if reachable is not False:
                    log.warning("redis_unreachable", error=repr(exc), by=self.who)
                reachable = False
            else:
                if reachable is False:
                    log.info("redis_reachable_again", by=self.who)
                reachable = True
            # asyncio.timeout, not wait_for: on 3.11 a cancel that meets wait_for's own timeout
            # comes out as TimeoutError, and the task would never stop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await stopping.wait()

    async def start(self) -> None:
        """Learn the epoch (creating it on a first start) and report Redis's persistence."""
        current = await self._ensure()
        remembered = await asyncio.to_thread(self._remembered)
        self.epoch = current
        if remembered and remembered != current:
            await self._lost(remembered)
        else:
            await asyncio.to_thread(self._remember, current)
            self.unacknowledged = await read_loss(self.redis, self.keys)
        await self._report_persistence()

    async def check(self) -> None:
        """One look at the epoch; a missing or changed one is a loss."""
        seen = await aw(self.redis.get(self.keys.epoch))
        if seen is None or seen.decode() != self.epoch:
            assert self.epoch is not None
            await self._lost(self.epoch)
        else:
            self.unacknowledged = await read_loss(self.redis, self.keys)
        metrics.REDIS_DATA_LOSS_UNACKNOWLEDGED.set(self.unacknowledged is not None)

    async def _ensure(self) -> str:
        """The epoch in Redis; a new one when there is none."""
        await aw(self.redis.set(self.keys.epoch, secrets.token_hex(8), nx=True))
        raw = await aw(self.redis.get(self.keys.epoch))
        return str(raw.decode())

    async def _lost(self, previous: str) -> None:
        current = await self._ensure()
        loss = Loss(now_ms(), previous, current, self.who)
        await aw(self.redis.set(self.keys.data_loss, loss.to_json(), nx=True))  # first notice
        self.epoch = current
        await asyncio.to_thread(self._remember, current)
        metrics.REDIS_DATA_LOSSES.inc()
        log.error(
            "redis_data_lost",
            previous_epoch=previous,
            epoch=current,
            advice="events acknowledged before it and dialog state are gone; portals from "
            "settings are registered again; OAuth portals must install the app again; "
            "acknowledge with `orchestrator redis ack-loss`",
        )
        self.unacknowledged = await read_loss(self.redis, self.keys) or loss
        metrics.REDIS_DATA_LOSS_UNACKNOWLEDGED.set(1)
        if self.on_loss is not None:
            await self.on_loss()

    async def _report_persistence(self) -> None:
        mode = await persistence_mode(self.redis)
        for each in ("aof", "rdb", "none", "unknown"):
            metrics.REDIS_PERSISTENCE.labels(mode=each).set(each == mode)
        if mode == "none":
            log.warning(
                "redis_not_persistent",
                advice="acknowledged events live only in Redis's memory: a restart loses them "
                "(run Redis with appendonly yes)",
            )
        elif mode == "rdb":
            log.warning(
                "redis_persistence_weak",
                advice="snapshots only: a restart loses what was acknowledged since the last "
                "one (run Redis with appendonly yes)",
            )
        else:
            log.info("redis_persistence", mode=mode)

    def _remembered(self) -> str | None:
        if self.marker is None:
            return None
        with contextlib.suppress(OSError):
            return self.marker.read_text().strip() or None
        return None

    def _remember(self, epoch: str) -> None:
        if self.marker is None:
            return
        try:
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.write_text(epoch)
        except OSError as exc:  # a read-only volume: the in-process check still works
            log.warning("epoch_marker_unwritable", path=str(self.marker), error=str(exc))
