"""The reconcile check against the emulated portal: CheckSession reads imopenlines.dialog.get and
comes back as SessionChecked naming the chat's current session; many at once share batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from orchestrator.bitrix.client import BitrixClient
from orchestrator.dialog.effects import CheckSession, effect_payload
from orchestrator.dialog.inputs import EffectFailed, SessionChecked, input_from_record
from orchestrator.handler.executor import EffectExecutor
from orchestrator.pipeline.records import EffectRecord
from orchestrator.pipeline.store import Store
from orchestrator.pipeline.timers import INPUT_EVENT_PREFIX, TimerStore
from orchestrator.settings import Settings
from tests.integration.client_support import control, method_counts, oauth_client

OPERATOR = 2  # an operator of line 1 on the seeded portal


@pytest.fixture
async def client(settings: Settings, emulator: Any) -> AsyncIterator[BitrixClient]:
    """A REST client on the emulated portal over OAuth, as an installed app."""
    bitrix = await oauth_client(settings, emulator.credentials)
    yield bitrix
    await bitrix.close()


@pytest.fixture
def executor(client: BitrixClient, redis: aioredis.Redis, settings: Settings) -> EffectExecutor:
    """The production effect executor on that client and the test Redis."""
    return EffectExecutor(
        client.api, Store(redis, settings), TimerStore(redis, settings.key_prefix)
    )


async def _open_dialog(emulator: Any) -> tuple[int, int]:
    emulator.portals[0].portal.lines[1].crm_create = "none"
    answer = await control(
        emulator.url, "POST", "client-message", {"line_id": 1, "text": "Hello", "name": "Ann Lee"}
    )
    return int(answer["chat_id"]), int(answer["session_id"])


async def _check(executor: EffectExecutor, emulator: Any, chat_id: int, session_id: int) -> Any:
    member = emulator.credentials["member_id"]
    effect = CheckSession(chat_id=chat_id, session_id=session_id)
    record = EffectRecord(
        f"{member}:{chat_id}:{session_id}:7:0", effect.kind, effect_payload(effect)
    )
    [follow] = await executor.run(record)
    assert follow.chat_id == str(chat_id)
    return input_from_record(follow.name.removeprefix(INPUT_EVENT_PREFIX), follow.payload)


async def test_an_open_session_is_named_and_a_closed_one_is_not(
    executor: EffectExecutor, emulator: Any
) -> None:
    """While open (the vote wait too) the chat names our session; after the close it names 0."""
    chat_id, session_id = await _open_dialog(emulator)
    member = emulator.credentials["member_id"]
    first = await _check(executor, emulator, chat_id, session_id)
    assert isinstance(first, SessionChecked)
    assert (first.session_id, first.current_session_id) == (session_id, session_id)
    assert first.effect_id == f"{member}:{chat_id}:{session_id}:7:0"
    await control(
        emulator.url, "POST", "operator-answer", {"chat_id": chat_id, "user_id": OPERATOR}
    )
    await control(
        emulator.url, "POST", "operator-finish", {"chat_id": chat_id, "user_id": OPERATOR}
    )
    portal = emulator.portals[0].portal
    assert not portal.sessions[session_id].closed  # the line asks for the vote first
    waiting = await _check(executor, emulator, chat_id, session_id)
    assert waiting.current_session_id == session_id
    await control(emulator.url, "POST", "client-vote", {"chat_id": chat_id, "vote": "like"})
    assert portal.sessions[session_id].closed
    closed = await _check(executor, emulator, chat_id, session_id)
    assert isinstance(closed, SessionChecked)
    assert closed.current_session_id == 0
    assert (await method_counts(emulator.url, "imopenlines.dialog.get"))["calls"] == 3


async def test_a_check_the_portal_refuses_comes_back_as_effect_failed(
    executor: EffectExecutor, emulator: Any
) -> None:
    """An unknown chat: ACCESS_ERROR, fed back as EffectFailed (the machine ignores it)."""
    failed = await _check(executor, emulator, 999_999, 5)
    assert isinstance(failed, EffectFailed)
    assert (failed.effect_kind, failed.error_code) == ("CheckSession", "ACCESS_ERROR")


async def test_checks_at_the_same_time_share_batch_requests(
    executor: EffectExecutor, emulator: Any
) -> None:
    """Reads of many dialogs at once are coalesced: fewer HTTP requests than checks."""
    dialogs = [await _open_dialog(emulator) for _ in range(12)]
    before = (await method_counts(emulator.url, "batch"))["calls"]
    answers = await asyncio.gather(*(_check(executor, emulator, c, s) for c, s in dialogs))
    assert [a.current_session_id for a in answers] == [s for _, s in dialogs]
    batches = (await method_counts(emulator.url, "batch"))["calls"] - before
    assert 1 <= batches < len(dialogs)
