"""bench e2e's light phase: one dialog at a time on a fresh stack, the warm-up not counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

from harness.bench.light import WARM_UP, light_replies
from harness.demo.stack import Stack, StackOptions, run_stack
from orchestrator.settings import Settings
from tests.e2e.conftest import drop_arq_jobs


async def test_light_replies_counts_only_the_dialogs_after_the_warm_up(
    e2e_settings: Settings, redis: aioredis.Redis
) -> None:
    stacks: list[Stack] = []

    @asynccontextmanager
    async def new_stack() -> AsyncIterator[Stack]:
        async with run_stack(e2e_settings, StackOptions(workers=1, in_process=True)) as stack:
            stacks.append(stack)
            yield stack

    report = await light_replies(new_stack, 3)
    await drop_arq_jobs(redis, e2e_settings.queue_name)
    assert len(stacks) == 1
    assert (report["dialogs"], report["warm_up"], report["failed"]) == (3, WARM_UP, 0)
    # after the warm-up: FAQ (1 reply awaited), contact data (3: the phone is not answered
    # at once), operator (1)
    assert report["replies"] == 5
    assert 0 < report["light_reply_p50_ms"] <= report["light_reply_p99_ms"]
    portal = stacks[0].emu.portals[0].portal
    assert len(portal.chats) == WARM_UP + 3  # every client played, one at a time
