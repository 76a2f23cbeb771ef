"""Effects the machine can work around are given up once out of tries: the runner asks the
production executor, which hands the machine an EffectFailed instead of a dead letter - whether
the tries failed cleanly or were used up by killed workers. Effects with lasting consequences
(the queue handoff) are dead-lettered for replay. Real Redis, the emulated portal, the runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from orchestrator.bitrix.client import BitrixClient
from orchestrator.dialog.effects import HandToQueue, SendMessage, effect_payload
from orchestrator.dialog.inputs import EffectFailed, input_from_record
from orchestrator.handler.executor import EffectExecutor
from orchestrator.pipeline.dlq import DeadLetters
from orchestrator.pipeline.records import EffectRecord, StoredEvent
from orchestrator.pipeline.runner import Decision, FollowUp, Runner
from orchestrator.pipeline.store import Store
from orchestrator.pipeline.timers import INPUT_EVENT_PREFIX, TimerStore
from orchestrator.settings import Settings
from tests.integration.client_support import control, oauth_client


class _OneEffect:
    """The first event of a dialog commits `effect`; later events (the follow-ups) are kept."""

    def __init__(self, executor: EffectExecutor, effect: EffectRecord) -> None:
        self.executor, self.effect = executor, effect
        self.follow_ups: list[StoredEvent] = []

    def decide(self, state: bytes | None, event: StoredEvent) -> Decision:
        if state is None:
            return Decision(b"started", [self.effect])
        self.follow_ups.append(event)
        return Decision(state, [])

    async def execute(self, effect: EffectRecord) -> list[FollowUp]:
        return await self.executor.run(effect)

    def give_up(self, effect: EffectRecord, error_code: str) -> list[FollowUp] | None:
        return self.executor.give_up(effect, error_code)


@pytest.fixture
def quick(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_attempts": 3, "patient_max_attempts": 3})


@pytest.fixture
async def executor(
    quick: Settings, emulator: Any, redis: aioredis.Redis
) -> AsyncIterator[EffectExecutor]:
    """The production executor on an OAuth client of the emulated portal."""
    client: BitrixClient = await oauth_client(quick, emulator.credentials)
    yield EffectExecutor(client.api, Store(redis, quick), TimerStore(redis, quick.key_prefix))
    await client.close()


async def _chat(emulator: Any) -> int:
    answer = await control(
        emulator.url, "POST", "client-message", {"line_id": 1, "text": "Hi", "name": "Ann Lee"}
    )
    return int(answer["chat_id"])


async def _fail(emulator: Any, method: str) -> None:
    await control(emulator.url, "POST", "faults", {"error_rate": {method: 1.0}})


async def _drain_one(
    redis: aioredis.Redis, quick: Settings, emulator: Any, executor: EffectExecutor, effect: Any
) -> _OneEffect:
    """Commit `effect` for a new chat and drain until the dialog is quiet."""
    member = emulator.credentials["member_id"]
    chat = str(effect.chat_id)
    record = EffectRecord(
        f"{member}:{chat}:1:1:0",
        effect.kind,
        effect_payload(effect),
        patient=effect.kind == "HandToQueue",
    )
    handler = _OneEffect(executor, record)
    store = Store(redis, quick)
    runner = Runner(store, handler, quick, owner="t", backoff_base_s=0.001)
    await store.ingest(member, chat, "e1", "ONIMBOTMESSAGEADD", 1, {})
    assert await runner.drain(member, chat) == "done"
    return handler


def _failure(handler: _OneEffect) -> EffectFailed:
    [event] = handler.follow_ups
    assert event.name == INPUT_EVENT_PREFIX + "effect_failed"
    failed = input_from_record("effect_failed", event.payload)
    assert isinstance(failed, EffectFailed)
    return failed


async def test_a_bot_message_failing_every_try_comes_back_as_effect_failed(
    redis: aioredis.Redis, quick: Settings, emulator: Any, executor: EffectExecutor
) -> None:
    """Every try raises (the runner retries); out of tries the machine gets an EffectFailed."""
    chat_id = await _chat(emulator)
    await _fail(emulator, "imopenlines.bot.session.message.send")
    effect = SendMessage(chat_id=chat_id, text="Hello")
    handler = await _drain_one(redis, quick, emulator, executor, effect)
    failed = _failure(handler)
    assert (failed.effect_kind, failed.error_code) == ("SendMessage", "OutcomeUnknown")
    assert await DeadLetters(redis, quick).count() == 0


async def test_a_bot_message_whose_tries_were_used_up_by_kills_is_given_up_too(
    redis: aioredis.Redis, quick: Settings, emulator: Any, executor: EffectExecutor
) -> None:
    """Tries cut short by killed workers count: past the limit the message is not sent again
    and the machine gets an EffectFailed, not a dead letter that would leave it waiting."""
    chat_id = await _chat(emulator)
    member = emulator.credentials["member_id"]
    effect_id = f"{member}:{chat_id}:1:1:0"
    store = Store(redis, quick)
    d = store.dialog(member, str(chat_id))
    await redis.hset(d.attempts, f"f:{effect_id}", quick.max_attempts)  # three crashed tries
    handler = await _drain_one(
        redis, quick, emulator, executor, SendMessage(chat_id=chat_id, text="Hello")
    )
    failed = _failure(handler)
    assert (failed.effect_kind, failed.error_code) == ("SendMessage", "crashed_while_running")
    assert await DeadLetters(redis, quick).count() == 0
    state = await control(emulator.url, "GET", "state")
    assert not [m for m in state["messages"] if m["chat_id"] == chat_id and m["text"] == "Hello"]


async def test_a_queue_handoff_out_of_tries_is_dead_lettered_for_replay(
    redis: aioredis.Redis, quick: Settings, emulator: Any, executor: EffectExecutor
) -> None:
    """No way round a handoff: out of tries it waits in the DLQ, and the machine hears nothing."""
    chat_id = await _chat(emulator)
    await _fail(emulator, "imopenlines.bot.session.operator")
    handler = await _drain_one(redis, quick, emulator, executor, HandToQueue(chat_id=chat_id))
    assert handler.follow_ups == []
    [letter] = await DeadLetters(redis, quick).entries()
    assert letter.kind == "effect"
    assert letter.attempts == quick.patient_max_attempts
