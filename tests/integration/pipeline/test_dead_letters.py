"""Poison events: retried, then dead-lettered; the dialog goes on; `dlq replay` brings them back."""

from __future__ import annotations

import argparse

import aiohttp
import redis.asyncio as aioredis

from orchestrator.cli.admin import run_dlq
from orchestrator.pipeline.dlq import DeadLetters
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import FORM, eventually, form, message_payload
from tests.integration.recording import RecordingHandler


async def test_poison_event_lands_in_dlq_and_replay_brings_it_back(
    ingress_url: str,
    http: aiohttp.ClientSession,
    redis: aioredis.Redis,
    recording: RecordingHandler,
    inproc_worker: None,
    fast_settings: Settings,
) -> None:
    """A failing event is dead-lettered after max_attempts, later ones still run, replay runs it."""
    texts = ["one", "poison pill", "three"]
    for n, text in enumerate(texts, start=1):
        async with http.post(
            f"{ingress_url}/b24/events", headers=FORM, data=form(message_payload(42, 500 + n, text))
        ) as resp:
            assert resp.status == 200
    dlq = DeadLetters(redis, fast_settings)

    async def settled() -> bool:
        return await redis.llen(recording.log_key) == 2 and await dlq.count() == 1

    await eventually(settled)
    [letter] = await dlq.entries()
    assert (letter.kind, letter.chat_id, letter.ref) == ("event", "42", "2")
    assert letter.attempts == fast_settings.max_attempts
    assert "poison event msg:502:add" in letter.error
    log = await redis.lrange(recording.log_key, 0, -1)
    assert [line.split(b"|")[3] for line in log] == [b"one", b"three"]

    recording.poisoned = False  # the bug got fixed; the operator replays
    args = argparse.Namespace(dlq_command="replay", entry_ids=[letter.entry_id], all=False)
    assert await run_dlq(args, fast_settings) == 0

    async def replayed() -> bool:
        return await redis.llen(recording.log_key) == 3

    await eventually(replayed)
    assert await dlq.count() == 0
    last = (await redis.lrange(recording.log_key, -1, -1))[0].split(b"|")
    assert (last[0], last[2], last[3]) == (b"42", b"msg:502:add", b"poison pill")
    # a second replay of the same entry finds nothing: it cannot run twice
    assert await dlq.replay(letter.entry_id) is False
