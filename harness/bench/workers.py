"""Load generators run in worker processes: our client, and peers pointed at the same portal.

Each worker starts at `spec.start_at` (so spawn delays do not skew the window), runs
`spec.concurrency` callers in a loop until `start_at + duration_s`, and returns its counts.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class LoadSpec:
    """What one worker process does (picklable: it crosses the process boundary)."""

    webhook_url: str
    member_id: str
    redis_url: str
    key_prefix: str
    method: str = "user.get"
    params: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 10.0
    concurrency: int = 100
    coalesce: bool = True
    plan: str = "standard"
    start_at: float = 0.0


WorkerFn = Callable[[LoadSpec], dict[str, Any]]


async def _hammer(spec: LoadSpec, call: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """Run `concurrency` loops of `call` until the deadline; count successes and error types."""
    await asyncio.sleep(max(0.0, spec.start_at - time.time()))
    deadline = spec.start_at + spec.duration_s
    ok = 0
    errors: Counter[str] = Counter()

    async def loop() -> None:
        nonlocal ok
        while time.time() < deadline:
            try:
                await call()
                ok += 1
            except Exception as exc:  # a load generator counts failures, it does not stop
                errors[type(exc).__name__] += 1
            # A call that returns without awaiting I/O (fast_bitrix24 does, when its autothrottle
            # has no free slot) would otherwise spin here and starve the whole process.
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(loop()) for _ in range(spec.concurrency)]
    await asyncio.sleep(max(0.0, deadline - time.time()))
    # Callers still waiting for a slot past the deadline are not part of the measurement.
    await asyncio.sleep(1.0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"ok": ok, "errors": dict(errors)}


async def _ours(spec: LoadSpec) -> dict[str, Any]:
    from orchestrator.bitrix.client import BitrixClient
    from orchestrator.settings import Settings

    settings = Settings(
        redis_url=spec.redis_url,
        key_prefix=spec.key_prefix,
        b24_plan=spec.plan,
        b24_webhook_url=spec.webhook_url,
        b24_member_id=spec.member_id,
    )
    async with BitrixClient.from_settings(settings, coalesce=spec.coalesce) as client:
        return await _hammer(spec, lambda: client.call(spec.method, spec.params))


def ours_worker(spec: LoadSpec) -> dict[str, Any]:
    """Process target: our BitrixClient (shared Redis limiter, coalescing per spec)."""
    return asyncio.run(_ours(spec))


async def _fast_bitrix24(spec: LoadSpec, *, lists: bool) -> dict[str, Any]:
    import aiohttp
    from fast_bitrix24 import BitrixAsync

    # It warns that *.get methods are better served by get_all(); we call single items on purpose.
    warnings.simplefilter("ignore", UserWarning)
    # Its retries log a traceback per exhausted call; the counts are what we report.
    logging.getLogger("fast_bitrix24").setLevel(logging.CRITICAL)
    # Our own session so the peer does not open and close one per call.
    async with aiohttp.ClientSession(raise_for_status=True) as session:
        bx = BitrixAsync(spec.webhook_url, verbose=False, client=session, ssl=False)
        if lists:
            # Its intended form: one caller hands it 50 items, which it packs into a batch.
            items = [dict(spec.params) for _ in range(50)]
            one = LoadSpec(**{**asdict(spec), "concurrency": 1})
            return await _hammer(one, lambda: bx.call(spec.method, items))
        # call() with one dict is its single-call form (it needs non-empty params).
        return await _hammer(spec, lambda: bx.call(spec.method, dict(spec.params)))


def fast_bitrix24_worker(spec: LoadSpec) -> dict[str, Any]:
    """Process target: fast_bitrix24's BitrixAsync, throttling in its own process only."""
    return asyncio.run(_fast_bitrix24(spec, lists=False))


def fast_bitrix24_list_worker(spec: LoadSpec) -> dict[str, Any]:
    """Process target: fast_bitrix24 called with lists of 50 items (its own batching)."""
    return asyncio.run(_fast_bitrix24(spec, lists=True))
