"""End to end: a bot message whose worker died after posting it is not posted again on the
retry, while the bot saying the same words again on purpose still reaches the chat.

The crash is staged in Redis exactly as a SIGKILL between the REST call and the done-mark leaves
it: the effect back to pending in the outbox, one try counted, no lease; the sweeper then
re-schedules the dialog and the production runner and executor run it as try 2."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import yaml

from harness.demo.portal_setup import SUPPORT_LINE, demo_scenario
from harness.demo.stack import Stack, StackOptions, run_stack
from orchestrator.dialog.effects import SendMessage
from orchestrator.pipeline.keys import DialogKeys
from orchestrator.pipeline.records import EffectRecord
from orchestrator.pipeline.store import Store
from orchestrator.redis.client import aw
from orchestrator.settings import Settings
from tests.e2e.conftest import dialog_state, drop_arq_jobs, eventually


@pytest.fixture
async def quiet_stack(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[Stack]:
    """The whole stack with one in-process worker; no timer fires during the test."""
    scenario = demo_scenario()
    scenario["default"]["timers"]["client_silence_s"] = 600
    path = tmp_path / "quiet.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    settings = e2e_settings.model_copy(update={"scenario_path": str(path)})
    async with run_stack(settings, StackOptions(workers=1, in_process=True)) as running:
        yield running
    await drop_arq_jobs(redis, settings.queue_name)


async def _settled(stack: Stack, d: DialogKeys) -> bool:
    """Nothing left to run in the dialog and no drainer on it."""
    async with stack.redis.pipeline(transaction=False) as pipe:
        pipe.llen(d.inbox)
        pipe.llen(d.outbox)
        pipe.exists(d.lease)
        inbox, outbox, leased = await pipe.execute()
    return bool(inbox == 0 and outbox == 0 and leased == 0)


def _line_messages(stack: Stack, chat_id: int, text: str) -> int:
    """Messages with `text` the line posted as the system (the greeting's voice)."""
    portal = stack.emu.portals[0].portal
    return sum(
        1
        for m in portal.messages.values()
        if m.chat_id == chat_id and m.author_id == 0 and m.text == text
    )


async def _stage_crash(stack: Stack, d: DialogKeys, record: EffectRecord, tries: int) -> None:
    """The effect pending again after `tries` tries, as a worker killed mid-call leaves it."""
    async with stack.redis.pipeline(transaction=True) as pipe:
        pipe.hset(d.effects, record.effect_id, record.to_json())
        pipe.hset(d.fxstatus, record.effect_id, "pending")
        pipe.hset(d.attempts, f"f:{record.effect_id}", str(tries))
        pipe.rpush(d.outbox, record.effect_id)
        await pipe.execute()


async def test_a_posted_message_is_not_repeated_but_a_deliberate_repeat_is_posted(
    quiet_stack: Stack,
) -> None:
    """The greeting, posted and then its worker 'killed' before the done-mark, is skipped on
    try 2; a second greeting committed after it, whose first try died before the call, is posted
    on its try 2: the chat shows the greeting exactly twice, and each check read the history."""
    stack = quiet_stack
    opened = await stack.control.client_message(SUPPORT_LINE, "Hello", name="Ann Lee")
    chat_id = int(opened["chat_id"])
    store = Store(stack.redis, stack.settings)
    d = store.dialog(stack.member_id, str(chat_id))
    greeting = demo_scenario()["default"]["greeting"]["text"]

    async def greeted() -> bool:
        state = await dialog_state(stack, chat_id)
        return state is not None and _line_messages(stack, chat_id, greeting) == 1

    await eventually(greeted)
    await eventually(lambda: _settled(stack, d))
    raw = await aw(stack.redis.hgetall(d.effects))
    records = [EffectRecord.from_json(r) for r in raw.values()]
    [posted] = [r for r in records if r.kind == "SendMessage" and r.payload.get("text") == greeting]
    assert SendMessage(**posted.payload).via == "session"
    member, chat, session, seq, _ = posted.effect_id.rsplit(":", 4)
    # after every effect of the greeting's transition; no later transition mints this index
    repeat = EffectRecord(f"{member}:{chat}:{session}:{seq}:99", posted.kind, posted.payload)
    history_calls = _calls(stack, "imopenlines.session.history.get")

    await _stage_crash(stack, d, posted, tries=1)
    await _stage_crash(stack, d, repeat, tries=1)
    # the drainer is gone: the sweeper finds the dialog pending with work and no lease
    await stack.redis.zadd(stack.settings.key_prefix + ":pending", {d.pending_member: 0})
    await eventually(lambda: _settled(stack, d))

    statuses = await aw(stack.redis.hmget(d.fxstatus, [posted.effect_id, repeat.effect_id]))
    assert statuses == [b"done", b"done"]
    assert _line_messages(stack, chat_id, greeting) == 2
    assert _calls(stack, "imopenlines.session.history.get") == history_calls + 2


def _calls(stack: Stack, method: str) -> int:
    return int(stack.emu.portals[0].method_counters.get(method, {}).get("calls", 0))
