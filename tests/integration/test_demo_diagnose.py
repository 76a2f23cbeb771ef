"""harness/demo/diagnose.py: where an unfinished dialog waits in our pipeline, read from Redis."""

from __future__ import annotations

import redis.asyncio as aioredis

from harness.demo.diagnose import pipeline_notes
from orchestrator.dialog.state import DialogState, DialogStatus
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings


async def test_an_unfinished_dialog_says_what_waits_and_a_finished_one_nothing(
    redis: aioredis.Redis, settings: Settings
) -> None:
    store = Store(redis, settings)
    queue = f"{settings.key_prefix}:queue"  # not the shared default queue
    stuck = store.dialog("m1", "5")
    await redis.rpush(stuck.inbox, b"event-1", b"event-2")
    await redis.set(stuck.lease, b"3:worker-a")
    await redis.set(stuck.sched, b"job-1")
    await redis.zadd(queue, {b"job-1": 10**15})  # far in the future
    states = {
        5: DialogState(member_id="m1", chat_id=5, status=DialogStatus.OPERATOR_QUEUE),
        6: DialogState(member_id="m1", chat_id=6, status=DialogStatus.LEAD),
    }
    try:
        [note] = await pipeline_notes(store, "m1", queue, states)
    finally:
        await redis.delete(queue)
    assert note.startswith("chat 5: ours operator_queue; inbox 2; outbox empty;")
    assert "lease 3:worker-a" in note
    assert "drain job due in" in note
