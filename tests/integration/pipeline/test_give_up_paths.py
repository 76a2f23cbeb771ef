"""The two ways a dialog's work is given up without losing the dialog: an event that keeps
crashing its workers is dead-lettered and the dialog goes on; a drain stuck past the shutdown
grace is cancelled, and the dialog is finished by another worker with nothing run twice."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import redis.asyncio as aioredis

from orchestrator.pipeline.dlq import DeadLetters
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import (
    FORM,
    MEMBER,
    WorkerSpawner,
    eventually,
    form,
    message_payload,
)
from tests.integration.recording import RecordingHandler
from worker.main import build_worker


async def test_an_event_that_crashed_every_try_is_dead_lettered_and_the_dialog_goes_on(
    redis: aioredis.Redis, fast_settings: Settings, recording: RecordingHandler
) -> None:
    """Tries that died without failing cleanly (SIGKILL mid-handling: the try is counted, no
    error comes back) are counted too: past the limit the event goes to the DLQ as "crashed
    while handling" with its attempts, and the events after it are handled."""
    store = Store(redis, fast_settings)
    d = store.dialog(MEMBER, "43")
    for n, text in enumerate(["kills its worker", "two", "three"], start=1):
        await store.ingest(MEMBER, "43", f"e{n}", "ONIMBOTMESSAGEADD", n, _payload(43, n, text))
    for _ in range(fast_settings.max_attempts):  # each crashed drain had counted its try
        peeked = await store.peek(d)
        assert peeked is not None
        assert peeked.event.event_id == "e1"

    worker = build_worker(fast_settings, lambda _s, _r: recording, handle_signals=False)
    task = asyncio.create_task(worker.async_run())
    dlq = DeadLetters(redis, fast_settings)
    try:

        async def settled() -> bool:
            return await redis.llen(recording.log_key) == 2 and await dlq.count() == 1

        await eventually(settled)
    finally:
        worker.handle_sig(signal.SIGTERM)
        await asyncio.wait([task], timeout=10)
        await worker.close()
    [letter] = await dlq.entries()
    assert (letter.kind, letter.chat_id, letter.ref) == ("event", "43", "1")
    assert letter.error == "crashed while handling"
    assert letter.attempts == fast_settings.max_attempts + 1
    log = await redis.lrange(recording.log_key, 0, -1)
    assert [line.split(b"|")[3] for line in log] == [b"two", b"three"]


def _payload(chat: int, n: int, text: str) -> dict[str, object]:
    payload = message_payload(chat, n, text)
    del payload["auth"]  # as stored: the ingress keeps no token
    return payload


async def test_a_drain_stuck_past_the_grace_is_cancelled_and_another_worker_finishes(
    ingress_url: str,
    http: aiohttp.ClientSession,
    redis: aioredis.Redis,
    recording: RecordingHandler,
    spawn_worker: WorkerSpawner,
    fast_settings: Settings,
) -> None:
    """SIGTERM while an effect hangs: the worker gives it the grace, cancels it, exits 0; the
    dialog's lease expires, the sweeper hands it to a new worker, and every event is handled
    once, in order, each effect recorded once."""
    for i in range(3):
        body = form(message_payload(78, 78000 + i, str(i)))
        async with http.post(f"{ingress_url}/b24/events", data=body, headers=FORM) as resp:
            assert resp.status == 200
    stuck = spawn_worker("tests.integration.recording:stuck_factory")
    store = Store(redis, fast_settings)
    d = store.dialog(MEMBER, "78")

    async def first_committed() -> bool:
        return (await store.state(d)).version >= 1  # its effect is now hanging

    await eventually(first_committed)
    stuck.send_signal(signal.SIGTERM)
    # a liveness bound: the grace is 2 s, the effect would hang for 60 s
    assert await asyncio.to_thread(stuck.wait, 30) == 0
    assert await redis.llen(recording.log_key) == 0  # the hanging effect never completed
    spawn_worker()

    async def all_handled() -> bool:
        return await redis.llen(recording.log_key) == 3

    await eventually(all_handled)
    lines = [line.split(b"|") for line in await redis.lrange(recording.log_key, 0, -1)]
    assert [line[3] for line in lines] == [b"0", b"1", b"2"]
    assert set(await redis.hvals(recording.runs_key)) == {b"1"}
    state = await store.state(d)
    assert (state.version, state.seq) == (3, 3)
