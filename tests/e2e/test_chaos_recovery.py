"""The chaos run's recovery measure on a real Redis: which dialogs a killed worker held (its pid
in their lease tokens at the kill), when each resumed (a new lease: the fence counter moved) and
when each progressed (its next commit)."""

from __future__ import annotations

import random
import time
from types import SimpleNamespace
from typing import cast

import redis.asyncio as aioredis

from harness.chaos.agents import RecoveryWatch, WorkerKiller, held_by, recovery_report
from harness.demo.stack import Stack
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings

MEMBER = "m-chaos"
DEAD = 4242


async def _event(store: Store, chat: str, n: int) -> None:
    await store.ingest(MEMBER, chat, f"ev-{chat}-{n}", "ONIMBOTMESSAGEADD", 1, {"n": n})


async def test_a_held_dialog_resumes_on_a_new_lease_and_progresses_on_its_next_commit(
    redis: aioredis.Redis, settings: Settings
) -> None:
    """Only the dead pid's leases count (not a pid that merely ends in its digits, not another
    worker's); one leased with nothing to do is idle, not timed; the lease lapsing alone is no
    resume, another drainer's lease is, and its commit is the progress."""
    store = Store(redis, settings)
    busy, idle, other, lookalike = (store.dialog(MEMBER, c) for c in ("1", "2", "3", "4"))
    for chat in ("1", "3", "4"):
        await _event(store, chat, 1)
    token = await store.take_lease(busy, f"host-a:{DEAD}")
    assert token is not None
    assert await store.take_lease(idle, f"host-a:{DEAD}")
    assert await store.take_lease(other, "host-b:77")
    assert await store.take_lease(lookalike, f"host-b:1{DEAD}")
    stack = cast(Stack, SimpleNamespace(redis=redis, settings=settings))

    kill = await held_by(stack, DEAD, time.monotonic())
    killer = WorkerKiller(stack, 1.0, random.Random(1), [kill])
    watch = RecoveryWatch(stack, killer)
    assert list(kill.held) == [busy]
    assert kill.held[busy].fence == int(token.split(":")[0])
    assert kill.idle == 1

    await redis.delete(busy.lease)  # the dead worker's lease lapsed: nobody drains yet
    await watch.check()
    assert kill.held[busy].resumed_at is None

    resumed = await store.take_lease(busy, "host-b:77")
    assert resumed is not None
    await watch.check()
    assert kill.held[busy].resumed_at is not None
    assert kill.held[busy].progressed_at is None

    peeked = await store.peek(busy)
    assert peeked is not None
    assert await store.commit(busy, resumed, peeked.event, b"{}", [])
    await watch.check()
    assert kill.held[busy].progressed_at is not None

    report = recovery_report([kill])
    assert report["dialogs_held_at_kills"] == 1
    assert report["held_idle_at_kills"] == 1
    assert (report["unresumed"], report["unprogressed"], report["unrecovered_kills"]) == (0, 0, 0)
    assert report["recovery_p99_s"] is not None
    assert report["progress_p99_s"] is not None
    assert report["recovery_p99_s"] <= report["progress_p99_s"]


async def test_a_dialog_never_resumed_counts_as_unrecovered(
    redis: aioredis.Redis, settings: Settings
) -> None:
    """A held dialog nobody took over is reported unresumed, its kill unrecovered, untimed."""
    store = Store(redis, settings)
    busy = store.dialog(MEMBER, "9")
    await _event(store, "9", 1)
    assert await store.take_lease(busy, f"host-a:{DEAD}")
    stack = cast(Stack, SimpleNamespace(redis=redis, settings=settings))
    kill = await held_by(stack, DEAD, time.monotonic())
    await RecoveryWatch(stack, WorkerKiller(stack, 1.0, random.Random(1), [kill])).check()
    report = recovery_report([kill])
    assert (report["unresumed"], report["unprogressed"], report["unrecovered_kills"]) == (1, 1, 1)
    assert report["recovery_p99_s"] is None
