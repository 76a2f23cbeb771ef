"""The production handler's effects against the emulated portal: the lead step's paths, the head
vote, the transcript, refusals fed back as EffectFailed, and the timer effects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from orchestrator.bitrix.client import BitrixClient
from orchestrator.dialog.effects import (
    CreateLead,
    FetchTranscript,
    HandToQueue,
    SaveHeadVote,
    ScheduleTimer,
    effect_payload,
)
from orchestrator.dialog.evaluation import ORIGINATOR_ID
from orchestrator.dialog.inputs import (
    EffectFailed,
    LeadCreated,
    TranscriptFetched,
    VoteSaved,
    input_from_record,
)
from orchestrator.handler import leads
from orchestrator.handler.executor import EffectExecutor
from orchestrator.pipeline.records import EffectRecord
from orchestrator.pipeline.store import Store
from orchestrator.pipeline.timers import INPUT_EVENT_PREFIX, TimerStore
from orchestrator.settings import Settings
from tests.integration.client_support import control, method_counts, oauth_client

ADMIN = 1  # the OAuth app's user on the seeded portal (admin, supervisor rights)


@pytest.fixture
async def client(
    settings: Settings, emulator: Any, redis: aioredis.Redis
) -> AsyncIterator[BitrixClient]:
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


async def _open_dialog(emulator: Any, *, crm: bool) -> tuple[int, int]:
    """A client writes to line 1 (no bot on it: the dialog waits in the queue)."""
    emulator.portals[0].portal.lines[1].crm_create = "lead" if crm else "none"
    answer = await control(
        emulator.url, "POST", "client-message", {"line_id": 1, "text": "Hello", "name": "Ann Lee"}
    )
    return int(answer["chat_id"]), int(answer["session_id"])


def _lead(emulator: Any, chat_id: int, session_id: int) -> CreateLead:
    member = emulator.credentials["member_id"]
    return CreateLead(
        session_id=session_id,
        chat_id=chat_id,
        fields={"TITLE": "Open Lines: Ann", "NAME": "Ann"},
        originator_id=ORIGINATOR_ID,
        origin_id=f"{member}:{chat_id}:{session_id}",
    )


def _record(emulator: Any, chat_id: int, session_id: int, effect: Any) -> EffectRecord:
    member = emulator.credentials["member_id"]
    return EffectRecord(f"{member}:{chat_id}:{session_id}:3:0", effect.kind, effect_payload(effect))


async def test_a_first_try_adds_the_lead_in_two_calls_and_a_retry_finds_it(
    client: BitrixClient, emulator: Any
) -> None:
    """No lead in the chat: the first try reads the chat's binding and adds the lead with
    ORIGINATOR_ID/ORIGIN_ID (no lookup: nothing earlier can have made it; no
    imopenlines.crm.lead.create: after the close it cannot work); a retry looks up and finds it
    instead of adding another."""
    chat_id, session_id = await _open_dialog(emulator, crm=False)
    api = client.api(emulator.credentials["member_id"])
    effect = _lead(emulator, chat_id, session_id)
    first = await leads.ensure_lead(api, effect, retried=False)
    assert first is not None
    assert (await method_counts(emulator.url, "crm.lead.list"))["calls"] == 0
    again = await leads.ensure_lead(api, effect, retried=True)
    assert again == first
    assert (await method_counts(emulator.url, "crm.lead.list"))["calls"] == 1
    assert (await method_counts(emulator.url, "imopenlines.crm.lead.create"))["calls"] == 0
    assert (await method_counts(emulator.url, "crm.lead.add"))["calls"] == 1
    stored = emulator.portals[0].portal.leads[first].fields
    assert stored["ORIGIN_ID"] == effect.origin_id
    assert stored["NAME"] == "Ann"


async def test_lead_is_the_chats_crm_binding_when_the_line_made_one(
    client: BitrixClient, emulator: Any
) -> None:
    """A line with CRM_CREATE bound the chat to a lead at the session start: that lead is the
    session's lead, and nothing is created."""
    chat_id, session_id = await _open_dialog(emulator, crm=True)
    bound = emulator.portals[0].portal.chats[chat_id].crm_entity_id
    api = client.api(emulator.credentials["member_id"])
    assert (
        await leads.ensure_lead(api, _lead(emulator, chat_id, session_id), retried=False) == bound
    )
    assert (await method_counts(emulator.url, "crm.lead.add"))["calls"] == 0
    assert (await method_counts(emulator.url, "imopenlines.crm.lead.create"))["calls"] == 0


def _collected(emulator: Any, chat_id: int, session_id: int) -> CreateLead:
    """The lead effect of a dialog where the bot collected a name, an e-mail and a phone."""
    base = _lead(emulator, chat_id, session_id)
    fields = {
        **base.fields,
        "NAME": "Ann Lee-Smith",
        "EMAIL": [{"VALUE": "ann@example.com", "VALUE_TYPE": "WORK"}],
        "PHONE": [{"VALUE": "+1 555 0100", "VALUE_TYPE": "WORK"}],
    }
    return CreateLead(
        session_id=session_id,
        chat_id=chat_id,
        fields=fields,
        originator_id=base.originator_id,
        origin_id=base.origin_id,
    )


def _contact(lead: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    return (
        lead["NAME"],
        [e["VALUE"] for e in lead.get("EMAIL", [])],
        [p["VALUE"] for p in lead.get("PHONE", [])],
    )


async def test_the_lines_own_lead_gets_the_collected_fields_once(
    client: BitrixClient, emulator: Any
) -> None:
    """The line made the lead from the client's profile (NAME "Ann", an e-mail of the profile
    already there): the step writes the collected name, e-mail and phone into it with one
    crm.lead.update, keeps what the lead had, and a retry of the step writes nothing again."""
    chat_id, session_id = await _open_dialog(emulator, crm=True)
    portal = emulator.portals[0].portal
    bound = portal.chats[chat_id].crm_entity_id
    portal.leads[bound].fields["EMAIL"] = portal.multifield("EMAIL", [{"VALUE": "ANN@example.com"}])
    api = client.api(emulator.credentials["member_id"])
    effect = _collected(emulator, chat_id, session_id)
    assert await leads.ensure_lead(api, effect, retried=False) == bound
    assert await leads.ensure_lead(api, effect, retried=True) == bound
    assert _contact(portal.leads[bound].fields) == (
        "Ann Lee-Smith",
        ["ANN@example.com"],
        ["+1 555 0100"],
    )
    assert (await method_counts(emulator.url, "crm.lead.update"))["calls"] == 1
    assert (await method_counts(emulator.url, "crm.lead.add"))["calls"] == 0
    assert portal.leads[bound].fields["TITLE"].startswith("Ann Lee")  # the line's title stays


async def test_a_lead_an_operator_made_in_the_chat_is_completed_not_doubled(
    client: BitrixClient, emulator: Any
) -> None:
    """The operator made the lead from the chat (imopenlines.crm.lead.create, while the session
    was open): it is the session's lead, and the step writes the e-mail and phone it lacks."""
    chat_id, session_id = await _open_dialog(emulator, crm=False)
    await control(emulator.url, "POST", "operator-answer", {"chat_id": chat_id, "user_id": ADMIN})
    api = client.api(emulator.credentials["member_id"])
    assert await api.crm_lead_create(chat_id)  # as the operator (our user is the admin)
    bound = emulator.portals[0].portal.chats[chat_id].crm_entity_id
    lead_id = await leads.ensure_lead(api, _collected(emulator, chat_id, session_id), retried=False)
    assert lead_id == bound
    assert len(emulator.portals[0].portal.leads) == 1
    fields = emulator.portals[0].portal.leads[lead_id].fields
    assert _contact(fields) == ("Ann Lee-Smith", ["ann@example.com"], ["+1 555 0100"])
    assert (await method_counts(emulator.url, "crm.lead.add"))["calls"] == 0


async def test_a_lead_we_added_is_not_read_nor_updated(client: BitrixClient, emulator: Any) -> None:
    """crm.lead.add carried the collected fields: found again, it costs no crm.lead.get."""
    chat_id, session_id = await _open_dialog(emulator, crm=False)
    api = client.api(emulator.credentials["member_id"])
    effect = _collected(emulator, chat_id, session_id)
    first = await leads.ensure_lead(api, effect, retried=False)
    assert await leads.ensure_lead(api, effect, retried=True) == first
    assert first is not None
    fields = emulator.portals[0].portal.leads[first].fields
    assert _contact(fields) == ("Ann Lee-Smith", ["ann@example.com"], ["+1 555 0100"])
    assert (await method_counts(emulator.url, "crm.lead.get"))["calls"] == 0
    assert (await method_counts(emulator.url, "crm.lead.update"))["calls"] == 0


async def test_executor_returns_lead_created_as_a_follow_up_input(
    executor: EffectExecutor, emulator: Any
) -> None:
    """The CreateLead effect comes back as a lead_created input for the same dialog."""
    chat_id, session_id = await _open_dialog(emulator, crm=False)
    record = _record(emulator, chat_id, session_id, _lead(emulator, chat_id, session_id))
    [follow] = await executor.run(record)
    assert follow.chat_id == str(chat_id)
    inp = input_from_record(follow.name.removeprefix(INPUT_EVENT_PREFIX), follow.payload)
    assert isinstance(inp, LeadCreated)
    assert inp.session_id == session_id
    assert inp.lead_id in emulator.portals[0].portal.leads


async def test_head_vote_saves_rating_and_comment_together(
    executor: EffectExecutor, emulator: Any
) -> None:
    """SaveHeadVote stores both the rating and the comment on the session, then VoteSaved."""
    chat_id, session_id = await _open_dialog(emulator, crm=False)
    vote = SaveHeadVote(session_id=session_id, rating=4, comment="Client vote: like.")
    [follow] = await executor.run(_record(emulator, chat_id, session_id, vote))
    session = emulator.portals[0].portal.sessions[session_id]
    assert (session.vote_head, session.comment_head) == (4, "Client vote: like.")
    assert follow.name == INPUT_EVENT_PREFIX + VoteSaved.kind


async def test_a_refused_handoff_comes_back_as_effect_failed_with_the_portals_code(
    executor: EffectExecutor, emulator: Any
) -> None:
    """imopenlines.bot.session.operator on a dialog no bot leads answers WRONG_CHAT: the machine
    gets EffectFailed(HandToQueue, WRONG_CHAT) instead of a retried exception."""
    chat_id, session_id = await _open_dialog(emulator, crm=False)
    [follow] = await executor.run(
        _record(emulator, chat_id, session_id, HandToQueue(chat_id=chat_id))
    )
    inp = input_from_record(follow.name.removeprefix(INPUT_EVENT_PREFIX), follow.payload)
    assert isinstance(inp, EffectFailed)
    assert (inp.effect_kind, inp.error_code, inp.session_id) == (
        "HandToQueue",
        "WRONG_CHAT",
        session_id,
    )


async def test_transcript_names_the_operator_and_the_first_answer(
    executor: EffectExecutor, emulator: Any
) -> None:
    """FetchTranscript reads the session history: the first human to write and when."""
    chat_id, session_id = await _open_dialog(emulator, crm=False)
    await control(emulator.url, "POST", "operator-answer", {"chat_id": chat_id, "user_id": 2})
    await control(
        emulator.url,
        "POST",
        "operator-message",
        {"chat_id": chat_id, "user_id": 2, "text": "Hi, Olga here"},
    )
    effect = FetchTranscript(session_id=session_id, chat_id=chat_id)
    [follow] = await executor.run(_record(emulator, chat_id, session_id, effect))
    inp = input_from_record(follow.name.removeprefix(INPUT_EVENT_PREFIX), follow.payload)
    assert isinstance(inp, TranscriptFetched)
    assert inp.operator_id == 2
    answered = emulator.portals[0].portal.sessions[session_id].date_first_answer
    assert inp.first_operator_response_at == pytest.approx(answered, abs=1.0)


async def test_schedule_timer_effect_arms_the_dialogs_timer(
    executor: EffectExecutor, emulator: Any, redis: aioredis.Redis, settings: Settings
) -> None:
    """ScheduleTimer arms the timer under the dialog's key; no follow-up comes back."""
    member = emulator.credentials["member_id"]
    effect = ScheduleTimer(name="silence", delay_s=60.0, token="silence:0:3")
    assert await executor.run(_record(emulator, 77, 5, effect)) == []
    armed = await TimerStore(redis, settings.key_prefix).armed(member)
    assert armed == {"77|silence": "silence:0:3"}
