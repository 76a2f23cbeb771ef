"""The trouble a chaos run makes while the clients play: a worker SIGKILLed every few seconds
(and started again), Redis SIGKILLed once, an ingress SIGKILLed once, the portals failing
(`FAULTS`) and their tokens expiring; and the counts of what was done."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from harness.bench.play import PortalPlay
from harness.chaos.agents import (
    RecoveryWatch,
    WorkerKeeper,
    WorkerKiller,
    expire_tokens,
    restart_redis,
)
from harness.demo.stack import Stack

__all__ = ["FAULTS", "Trouble", "TroubleOptions", "make_trouble"]

FAULTS: dict[str, Any] = {
    "error_rate": {"*": 0.10},
    "timeout_rate": {"*": 0.01},
    "html_rate": {"*": 0.02},
    # applied, then the answer lost (a held request, a reset, a 502/503/504 page): the case that
    # makes duplicates on a real portal, inside batches too
    "lost_answer_rate": {"*": 0.02},
}


class TroubleOptions(Protocol):
    """What the trouble needs of the run's options (harness/chaos/run.py's ChaosOptions)."""

    dialogs: int
    arrivals_per_s: float
    kill_every_s: float
    redis_down_s: float
    expire_every_s: float
    faults: bool
    seed: int


@dataclass
class Trouble:
    killer: WorkerKiller
    watch: RecoveryWatch
    keeper: WorkerKeeper
    tasks: list[asyncio.Task[Any]]
    redis_down_s: float = 0.0
    redis_kills: int = 0
    ingress_down_s: float = 0.0
    ingress_kills: int = 0

    @property
    def worker_kills(self) -> int:
        """Workers SIGKILLed so far."""
        return len(self.killer.kills)


async def make_trouble(
    stack: Stack, plays: list[PortalPlay], opts: TroubleOptions, stop: asyncio.Event
) -> Trouble:
    import random

    rng = random.Random(opts.seed)
    if opts.faults:
        for n, play in enumerate(plays):
            await play.control.faults({**FAULTS, "seed": opts.seed + n})
    killer = WorkerKiller(stack, opts.kill_every_s, rng)
    trouble = Trouble(killer, RecoveryWatch(stack, killer), WorkerKeeper(stack), [])
    # Redis is SIGKILLed once a third of the way through the arrivals, the ingress at two
    # thirds, while the portals are posting
    arrivals_s = opts.dialogs / opts.arrivals_per_s

    async def redis_once() -> None:
        await asyncio.sleep(arrivals_s / 3)
        trouble.redis_down_s = await restart_redis(stack, opts.redis_down_s)
        trouble.redis_kills += 1

    async def ingress_once() -> None:
        await asyncio.sleep(arrivals_s * 2 / 3)
        trouble.ingress_down_s = await stack.kill_ingress()
        trouble.ingress_kills += 1

    trouble.tasks = [
        asyncio.create_task(killer.run(stop)),
        asyncio.create_task(expire_tokens(plays, stop, opts.expire_every_s)),
        asyncio.create_task(redis_once()),
        asyncio.create_task(ingress_once()),
    ]
    return trouble
