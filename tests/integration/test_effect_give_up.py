"""Effects the machine can work around are given up after the pipeline's retries: a transient
failure comes back as EffectFailed on the last attempt instead of a dead letter; effects with
lasting consequences (the queue handoff) keep failing so they are dead-lettered for replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from orchestrator.bitrix.client import BitrixClient
from orchestrator.effect_runner import EffectExecutor
from orchestrator.effects import HandToQueue, SendMessage, effect_payload
from orchestrator.errors import OutcomeUnknown
from orchestrator.inputs import EffectFailed, input_from_record
from orchestrator.settings import Settings
from orchestrator.store import EffectRecord
from orchestrator.timers import INPUT_EVENT_PREFIX, TimerStore
from tests.integration.client_support import control, oauth_client


@pytest.fixture
async def executor(
    settings: Settings, emulator: Any, redis: aioredis.Redis
) -> AsyncIterator[EffectExecutor]:
    """The production executor on an OAuth client of the emulated portal (3 attempts)."""
    client: BitrixClient = await oauth_client(
        settings.model_copy(update={"max_attempts": 3}), emulator.credentials
    )
    yield EffectExecutor(client, TimerStore(redis, settings.key_prefix))
    await client.close()


async def _chat(emulator: Any) -> int:
    answer = await control(
        emulator.url, "POST", "client-message", {"line_id": 1, "text": "Hi", "name": "Ann Lee"}
    )
    return int(answer["chat_id"])


def _record(emulator: Any, chat_id: int, effect: Any) -> EffectRecord:
    member = emulator.credentials["member_id"]
    return EffectRecord(f"{member}:{chat_id}:1:3:0", effect.kind, effect_payload(effect))


async def _fail(emulator: Any, method: str) -> None:
    await control(emulator.url, "POST", "faults", {"error_rate": {method: 1.0}})


async def test_bot_message_failing_on_every_try_becomes_effect_failed_on_the_last(
    executor: EffectExecutor, emulator: Any
) -> None:
    """The pipeline's tries raise (so it retries) until the last one, which hands the machine
    an EffectFailed for the bot's message."""
    chat_id = await _chat(emulator)
    await _fail(emulator, "imopenlines.bot.session.message.send")
    record = _record(emulator, chat_id, SendMessage(chat_id=chat_id, text="Hello"))
    with pytest.raises(OutcomeUnknown):
        await executor.run(record)
    follow_ups = await executor.run(record)
    assert len(follow_ups) == 1
    assert follow_ups[0].name == INPUT_EVENT_PREFIX + "effect_failed"
    failed = input_from_record("effect_failed", follow_ups[0].payload)
    assert isinstance(failed, EffectFailed)
    assert (failed.effect_kind, failed.error_code) == ("SendMessage", "OutcomeUnknown")


async def test_queue_handoff_failing_keeps_raising_for_the_dead_letter_queue(
    executor: EffectExecutor, emulator: Any
) -> None:
    """A queue handoff is never given up here: every try raises, the pipeline dead-letters it."""
    chat_id = await _chat(emulator)
    await _fail(emulator, "imopenlines.bot.session.operator")
    record = _record(emulator, chat_id, HandToQueue(chat_id=chat_id))
    for _ in range(3):
        with pytest.raises(OutcomeUnknown):
            await executor.run(record)
