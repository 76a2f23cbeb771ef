"""End to end: the portal's OnSessionFinish push is lost (the emulator's push-drop plan), and
reconciliation still finishes the dialog: the head vote and the lead reach the portal, judged by
the portal's own journal, and our dialog's history shows the path (session_reconciled)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from harness.demo.stack import Stack, StackOptions, run_stack
from orchestrator.dialog.evaluation import ORIGINATOR_ID
from orchestrator.dialog.reconcile import RECONCILED
from orchestrator.dialog.state import DialogStatus
from orchestrator.settings import Settings
from tests.e2e.conftest import dialog_state, drop_arq_jobs, eventually

INTERVAL_S = 1  # RECONCILE_INTERVAL_S for the test: a check every 1-1.2 s per dialog


@pytest.fixture
async def quick_stack(e2e_settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Stack]:
    """The whole stack (one in-process worker) with a reconcile check every second."""
    settings = e2e_settings.model_copy(update={"reconcile_interval_s": INTERVAL_S})
    async with run_stack(settings, StackOptions(workers=1, in_process=True)) as running:
        yield running
    await drop_arq_jobs(redis, settings.queue_name)


async def _drop_next(stack: Stack, event: str) -> None:
    """The portal loses the next push of `event` (POST /_emulator/push-drops)."""
    url = f"{stack.emu.url}/_emulator/push-drops"
    async with stack.http.post(url, json={"next": {event: 1}}) as response:
        assert response.status == 200, await response.text()


async def _status(stack: Stack, chat_id: int) -> DialogStatus | None:
    state = await dialog_state(stack, chat_id)
    return None if state is None else state.status


async def test_a_lost_finish_push_is_found_by_reconciliation(quick_stack: Stack) -> None:
    """Queue, operator, finish, the client's like closes the session; its OnSessionFinish is
    dropped. Within a few checks the dialog is finished anyway: rated as head, one lead."""
    stack = quick_stack
    opened = await stack.control.client_message(1, "I need an operator please", name="Ann Lee")
    chat_id = int(opened["chat_id"])
    session_id = int(opened["session_id"])

    async def queued() -> bool:
        return await _status(stack, chat_id) is DialogStatus.OPERATOR_QUEUE

    await eventually(queued)
    operator = stack.view.operators(1)[0]
    await stack.control.operator_answer(chat_id, operator)
    await stack.control.operator_message(chat_id, operator, "Hello, Olga here. All sorted.")

    async def with_operator() -> bool:
        return await _status(stack, chat_id) is DialogStatus.OPERATOR

    await eventually(with_operator)
    await _drop_next(stack, "ONSESSIONFINISH")
    await stack.control.operator_finish(chat_id, operator)
    await stack.control.client_vote(chat_id, "like")

    async def done() -> bool:
        return await _status(stack, chat_id) in (DialogStatus.LEAD, DialogStatus.FAILED)

    await eventually(done, within_s=30.0)
    state = await dialog_state(stack, chat_id)
    assert state is not None
    assert state.status is DialogStatus.LEAD
    assert [h.input for h in state.history].count(RECONCILED) == 1
    closing = next(h for h in state.history if h.input == RECONCILED)
    assert (closing.from_, closing.to) == ("operator", "finished")
    assert state.client_vote == 5  # read from the close message, as after a pushed finish

    journal: list[dict[str, Any]] = (await stack.control.journal())["entries"]
    dropped = [e for e in journal if e["kind"] == "event_dropped"]
    assert [(e["name"], e.get("chat_id")) for e in dropped] == [("ONSESSIONFINISH", chat_id)]
    assert not [
        e for e in journal if e["kind"] == "event_posted" and e["name"] == "ONSESSIONFINISH"
    ]
    votes = [e for e in journal if e["kind"] == "head_vote" and e["session_id"] == session_id]
    assert [e["rating"] for e in votes] == [state.vote]
    assert votes[0]["comment"].startswith("Client vote: like.")
    origin = f"{stack.member_id}:{chat_id}:{session_id}"
    leads = [
        e
        for e in journal
        if e["kind"] == "lead_created"
        and e["fields"].get("ORIGIN_ID") == origin
        and e["fields"].get("ORIGINATOR_ID") == ORIGINATOR_ID
    ]
    assert [e["lead_id"] for e in leads] == [state.lead_id]
