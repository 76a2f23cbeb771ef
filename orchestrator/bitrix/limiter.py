"""The shared rate budget of a portal, in Redis: one Lua script per acquisition (docs/design.md §4).

Two budgets per portal (`member_id`), both shared by every process of the fleet:
* the request bucket (GCRA over the portal's leaky bucket, `lua/rate.lua`): the script reserves a
  slot and answers "go after Δ", so callers sleep exactly and never poll;
* the per-method operating time (`lua/operating.lua`), fed from the portal's `time.operating` and
  `time.operating_reset_at`, holding a method back before the portal would block it with a 429.
Keys carry a hash tag per portal, `{prefix}:{<member_id>}:...`, so a cluster keeps them on one slot.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.asyncio as aioredis

from orchestrator.bitrix import metrics
from orchestrator.settings import RestConfig

PLANS: dict[str, tuple[int, float]] = {"standard": (50, 2.0), "enterprise": (250, 5.0)}
# Never reserve a slot further ahead than this; a longer wait is re-asked after sleeping.
_MAX_RESERVE_S = 30.0
# Fraction of the operating limit at which a method is held back until its window moves on.
OPERATING_THRESHOLD = 0.9
# Hold a method this long after an unexpected 429 when the portal gave no reset time.
_OPERATING_PENALTY_S = 60.0
# A probe's caller may still be reporting just after its request timed out.
_PROBE_MARGIN_S = 5.0


def _script(name: str) -> str:
    return resources.files("orchestrator.bitrix").joinpath(f"lua/{name}").read_text("utf-8")


@dataclass(frozen=True)
class BucketConfig:
    """The request bucket the limiter mirrors (the plan's, or the overrides)."""

    capacity: int
    drain_per_s: float
    margin: int

    @classmethod
    def from_settings(cls, settings: RestConfig) -> BucketConfig:
        """The plan's numbers, overridden by b24_bucket_capacity / b24_drain_per_s."""
        capacity, drain = PLANS[settings.b24_plan]
        return cls(
            capacity=settings.b24_bucket_capacity or capacity,
            drain_per_s=settings.b24_drain_per_s or drain,
            margin=settings.b24_burst_margin,
        )

    @property
    def burst(self) -> int:
        """Requests that may go at once: the capacity less the safety margin, at least one."""
        return max(1, self.capacity - self.margin)

    @property
    def interval_us(self) -> int:
        """Microseconds between two requests at the drain rate."""
        return round(1_000_000 / self.drain_per_s)


@dataclass(frozen=True)
class Reservation:
    """The script's answer: reserved or not, how long to sleep, and Redis's clock when asked."""

    granted: bool
    wait_s: float
    now_s: float

    @property
    def at(self) -> float:
        """The slot's time on Redis's clock (Unix seconds)."""
        return self.now_s + self.wait_s


class Limiter:
    """Acquire request slots and operating budget for a portal; report and penalize."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        prefix: str,
        bucket: BucketConfig,
        operating_limit_s: float,
        call_timeout_s: float | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self.bucket = bucket
        self.operating_limit_s = operating_limit_s
        # how long a cold-start probe may hold its method (our request timeout plus a margin)
        self._probe_args = [] if call_timeout_s is None else [call_timeout_s + _PROBE_MARGIN_S]
        self._rate = redis.register_script(_script("rate.lua"))
        self._operating = redis.register_script(_script("operating.lua"))

    def _rate_key(self, member_id: str) -> str:
        return f"{self._prefix}:{{{member_id}}}:rate"

    def _op_key(self, member_id: str, method: str) -> str:
        return f"{self._prefix}:{{{member_id}}}:op:{method.lower()}"

    async def reserve(self, member_id: str, *, burst: int | None = None) -> Reservation:
        """Ask the script once for a request slot (no sleeping)."""
        burst_slots = min(burst or self.bucket.burst, self.bucket.burst)
        granted, wait_us, now_us = await self._rate(
            keys=[self._rate_key(member_id)],
            args=["acquire", self.bucket.interval_us, burst_slots, int(_MAX_RESERVE_S * 1e6)],
        )
        return Reservation(bool(int(granted)), int(wait_us) / 1e6, int(now_us) / 1e6)

    async def acquire(self, member_id: str, *, burst: int | None = None) -> float:
        """Wait until a request may go out; return the seconds waited.

        `burst` lowers the usable burst for background work so interactive calls keep headroom.
        """
        waited = 0.0
        while True:
            slot = await self.reserve(member_id, burst=burst)
            delay = slot.wait_s
            if delay > 0:
                metrics.THROTTLE_WAITS.labels(member_id, "rate").inc()
                metrics.THROTTLE_SECONDS.labels(member_id, "rate").inc(delay)
                await asyncio.sleep(delay)
                waited += delay
            if slot.granted:
                return waited

    async def penalize(self, member_id: str) -> float:
        """The portal answered 503/429 anyway: push the fleet's next slot back; return the pause."""
        _, wait_us, _ = await self._rate(
            keys=[self._rate_key(member_id)],
            args=["penalize", self.bucket.interval_us, self.bucket.burst, self.bucket.margin],
        )
        return int(wait_us) / 1_000_000

    async def acquire_operating(self, member_id: str, method: str) -> float:
        """Wait until `method` has operating budget left; return the seconds waited."""
        threshold = self.operating_limit_s * OPERATING_THRESHOLD
        waited = 0.0
        while True:
            granted, wait_ms = await self._operating(
                keys=[self._op_key(member_id, method)],
                args=["acquire", threshold, *self._probe_args],
            )
            if int(granted):
                return waited
            delay = int(wait_ms) / 1000
            metrics.THROTTLE_WAITS.labels(member_id, "operating").inc()
            metrics.THROTTLE_SECONDS.labels(member_id, "operating").inc(delay)
            await asyncio.sleep(delay)
            waited += delay

    async def report_operating(
        self,
        member_id: str,
        method: str,
        time: dict[str, Any] | None,
    ) -> None:
        """Feed the portal's `time` block of one call (or None when it failed) back in."""
        time = time or {}
        operating = time.get("operating")
        reset_at = time.get("operating_reset_at")
        reported = float(operating) if operating is not None and reset_at is not None else -1.0
        processing = float(time["processing"]) if time.get("processing") is not None else -1.0
        await self._operating(
            keys=[self._op_key(member_id, method)],
            args=["report", reported, float(reset_at or 0), processing],
        )

    async def penalize_operating(self, member_id: str, method: str) -> float:
        """The portal answered 429: hold `method` back fleet-wide; return the hold in seconds."""
        _, hold_ms = await self._operating(
            keys=[self._op_key(member_id, method)],
            args=["penalize", self.operating_limit_s, _OPERATING_PENALTY_S],
        )
        return int(hold_ms) / 1000
