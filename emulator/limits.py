"""The portal's two throttles: the cloud front's per-portal leaky bucket (503) and the REST
module's per-(app or webhook, method) operating-time budget (429).

Both read the portal's Clock, so `advance-time` drains the bucket and expires budget windows
without a test having to wait in real time.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.primitives import Clock

# plan -> (bucket size X, drain rate Y per second) [docs/bitrix24.md §2.1]
PLANS: dict[str, tuple[float, float]] = {
    "standard": (50.0, 2.0),
    "enterprise": (250.0, 5.0),
}


class LeakyBucket:
    """Each request adds 1; the level drains at a fixed rate; over capacity is rejected."""

    def __init__(self, capacity: float, drain_per_s: float, clock: Clock) -> None:
        self.capacity = capacity
        self.drain_per_s = drain_per_s
        self._clock = clock
        self._level = 0.0
        self._at = clock.now()

    @property
    def level(self) -> float:
        self._drain()
        return self._level

    def _drain(self) -> None:
        now = self._clock.now()
        self._level = max(0.0, self._level - (now - self._at) * self.drain_per_s)
        self._at = now

    def try_acquire(self) -> bool:
        """Admit one request, or refuse it without filling the bucket."""
        self._drain()
        if self._level + 1 > self.capacity:
            return False
        self._level += 1
        return True


BudgetKey = tuple[str, str, str]  # (auth type, app client_id or webhook id, method)


@dataclass
class _Bucket:
    seconds: float
    expire_at: float


class OperatingBudget:
    """10 buckets x 60 s of execution seconds per key, as the REST module's LoadLimiter."""

    BUCKET_SIZE_S = 60
    BUCKET_COUNT = 10
    MINIMAL_FIX_S = 0.1

    def __init__(self, limit_s: float, clock: Clock) -> None:
        self.limit_s = limit_s
        self._clock = clock
        self._buckets: dict[BudgetKey, dict[int, _Bucket]] = {}

    def _live(self, key: BudgetKey) -> list[_Bucket]:
        """Buckets of the last ten minutes that have not expired, oldest first."""
        now = self._clock.now()
        current = int(now // self.BUCKET_SIZE_S)
        buckets = self._buckets.get(key, {})
        for num in [n for n in buckets if n <= current - self.BUCKET_COUNT]:
            del buckets[num]
        window = range(current - self.BUCKET_COUNT + 1, current + 1)
        return [b for n in window if (b := buckets.get(n)) and b.expire_at > now]

    def used(self, key: BudgetKey) -> float:
        """Seconds accumulated by `key` in the live window (`time.operating`)."""
        return sum(b.seconds for b in self._live(key))

    def blocked(self, key: BudgetKey) -> bool:
        """True when the sum is greater than the limit: the call is refused with 429."""
        return self.used(key) > self.limit_s

    def record(self, key: BudgetKey, started_at: float, seconds: float) -> None:
        """Charge a finished call; calls of 0.1 s or less are not counted."""
        if seconds <= self.MINIMAL_FIX_S:
            return
        num = int(self._clock.now() // self.BUCKET_SIZE_S)
        buckets = self._buckets.setdefault(key, {})
        bucket = buckets.get(num)
        if bucket is None or bucket.expire_at <= self._clock.now():
            window = self.BUCKET_COUNT * self.BUCKET_SIZE_S
            bucket = buckets[num] = _Bucket(0.0, started_at + window)
        bucket.seconds += seconds

    def reset_at(self, key: BudgetKey, started_at: float) -> int:
        """When the oldest live bucket expires (`time.operating_reset_at`)."""
        live = [b for b in self._live(key) if b.seconds > 0]
        if live:
            return int(live[0].expire_at)
        return int(started_at + self.BUCKET_COUNT * self.BUCKET_SIZE_S)

    def report(self, key: BudgetKey, started_at: float) -> tuple[float, int]:
        """(operating, operating_reset_at) for the `time` block."""
        return self.used(key), self.reset_at(key, started_at)
