"""End to end on the v2 bot in fetch mode, as a new deployment runs: the portal starts without a
bot, `register-bot --api v2` registers ours, binds the Open Lines events offline and makes it
both lines' welcome bot; the workers' poller fetches the bot's events and the offline consumer
the session events. Judged by the portal's records: what our bot wrote, the session's head
vote, the lead, and an empty event log (every event confirmed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from harness.demo.actors import Persona
from harness.demo.stack import Stack, StackOptions, run_stack
from orchestrator.dialog.state import DialogStatus
from orchestrator.settings import Settings
from tests.e2e.conftest import drop_arq_jobs, eventually
from tests.e2e.test_lifecycle_e2e import _final_state, _leads_of, _play, _session


@pytest.fixture
async def v2_stack(e2e_settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Stack]:
    """The stack on a fresh portal with our v2 fetch-mode bot, polled briskly."""
    fast = e2e_settings.model_copy(
        update={
            "fetch_busy_s": 0.2,
            "fetch_idle_min_s": 0.2,
            "fetch_idle_max_s": 0.5,
            "poller_discover_s": 0.2,
        }
    )
    async with run_stack(fast, StackOptions(workers=1, in_process=True, bot="v2")) as running:
        yield running
    await drop_arq_jobs(redis, fast.queue_name)


async def test_a_v2_fetch_dialog_runs_to_its_lead(v2_stack: Stack) -> None:
    portal = v2_stack.emu.portals[0].portal
    [bot_id] = [b for b, rec in portal.bots_v2.bots.items() if rec.event_mode == "fetch"]
    assert portal.lines[1].welcome_bot_id == bot_id
    run = await _play(v2_stack, 1, Persona.OPERATOR)
    state = await _final_state(v2_stack, run.chat_id)
    assert state.status is DialogStatus.LEAD
    session = _session(v2_stack, run.chat_id)
    assert session.vote_head == state.vote
    assert [lead["ID"] for lead in _leads_of(v2_stack, run.chat_id, session.id)] == [state.lead_id]
    # our bot spoke through imbot.v2, and the portal's log for it is confirmed to the end
    assert any(m.author_id == bot_id for m in portal.messages.values())

    async def confirmed() -> bool:
        return portal.fetch_queue.pending(bot_id) == []

    await eventually(confirmed, within_s=10)
