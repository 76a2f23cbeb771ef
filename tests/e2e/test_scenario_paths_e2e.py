"""End to end, one scenario path each: portal events -> ingress -> worker -> the emulated portal.

FAQ by keyword, an invalid e-mail asked again, the client typing 0, unanswered questions, a
transfer chosen by rule with the operator's note, the accept timeout, the bot failing, and a
line that owns the vote and the lead. Every test checks the portal's own state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml

from harness.demo.portal_setup import SUPPORT_LINE, demo_scenario
from harness.demo.stack import Stack, StackOptions, run_stack
from orchestrator.dialog.state import DialogStatus
from orchestrator.settings import Settings
from tests.e2e.chat_client import (
    TIMEOUT_S,
    Client,
    calls,
    ends_with_one_lead,
    messages,
    operator_closes,
    our_leads,
)
from tests.e2e.conftest import drop_arq_jobs, eventually

pytestmark = pytest.mark.timeout(60)

Edit = Callable[[dict[str, Any]], None]
OPERATOR = 3  # the second operator of the seeded line (users: admin 1, operators 2-4)


@asynccontextmanager
async def _stack(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path, edit: Edit | None = None
) -> AsyncIterator[Stack]:
    """The whole stack with one in-process worker and the demo scenario changed by `edit`."""
    document = demo_scenario()
    if edit is not None:
        edit(document["default"])
    path = tmp_path / "paths-scenario.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    settings = e2e_settings.model_copy(update={"scenario_path": str(path)})
    async with run_stack(settings, StackOptions(workers=1, in_process=True)) as running:
        yield running
    await drop_arq_jobs(redis, settings.queue_name)


# --- the bot's side ----------------------------------------------------------------------------


async def test_faq_keyword_is_answered_and_the_question_asked_again(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """A message with a FAQ keyword gets the FAQ answer, then the pending data prompt again;
    it does not count as an unanswered question nor as the client's name."""
    async with _stack(e2e_settings, redis, tmp_path) as stack:
        client = Client(stack)
        await client.say("Hi there", expect="How may I call you?")
        await client.say("What is the delivery time?", expect="We deliver within 3 working days.")
        texts = client.texts()
        assert texts[-2:] == ["We deliver within 3 working days.", "How may I call you?"]
        st = await client.state(DialogStatus.BOT)
        assert st.data.name is None
        assert st.unanswered == 0
        assert client.session().operator_is_bot


async def test_invalid_email_is_asked_again_then_accepted_and_the_vote_reaches_the_rating(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """A malformed e-mail gets the scenario's 'invalid' reply and the question again; the valid
    one is stored, the lead carries it, and the client's like (read from the close message)
    is in the saved head vote."""
    async with _stack(e2e_settings, redis, tmp_path) as stack:
        client = Client(stack)
        invalid = "That does not look like an e-mail address, e.g. jane@example.com."
        await client.say("Hello", expect="How may I call you?")
        await client.say("Anna Smith", expect="What is your e-mail?")
        await client.say("anna at example", expect=invalid)
        await client.say("anna@example.com", expect="And your phone number?")
        await client.say("+1 555 010 2030", expect="Connecting you with an operator, please wait.")
        assert client.texts().count(invalid) == 1
        await client.queued()
        await operator_closes(client, OPERATOR, vote="like")
        st = await ends_with_one_lead(client)
        assert (st.data.email, st.handoff_reason, st.client_vote) == (
            "anna@example.com",
            "collected",
            5,
        )
        lead = our_leads(client)[0]
        assert lead.fields["EMAIL"][0]["VALUE"] == "anna@example.com"
        session = client.session()
        assert session.vote == 5
        assert session.comment_head.startswith("Client vote: like.")
        assert session.vote_head == st.vote


async def test_client_typing_zero_goes_to_the_queue_without_our_handoff_call(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """'0' makes the portal end the bot session itself: the dialog waits in the line's queue,
    we never call imopenlines.bot.session.operator, and an operator completes it."""
    async with _stack(e2e_settings, redis, tmp_path) as stack:
        client = Client(stack)
        await client.say("Hello", expect="How may I call you?")
        await client.say("0")
        await client.queued()
        st = await client.state(DialogStatus.OPERATOR_QUEUE)
        assert st.handoff_reason == "client_zero"
        await operator_closes(client, OPERATOR)
        await ends_with_one_lead(client)
        assert calls(stack, "imopenlines.bot.session.operator") == 0


def _no_collection(scenario: dict[str, Any]) -> None:
    scenario["collect"]["fields"] = []


async def test_questions_the_bot_cannot_answer_hand_off_after_the_limit(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """With nothing to collect, each question the bot cannot answer gets the fallback; the
    scenario's max_unanswered-th hands the dialog to the queue with a note for the operator."""
    async with _stack(e2e_settings, redis, tmp_path, _no_collection) as stack:
        client = Client(stack)
        fallback = "Sorry, I did not understand. Type 'operator' to talk to a person."
        await client.say("Hello there")
        await client.say("Can I pay with seashells?", expect=fallback)
        await client.say(
            "Is the moon made of cheese?", expect="Connecting you with an operator, please wait."
        )
        assert client.texts().count(fallback) == 1
        await client.queued()
        st = await client.state(DialogStatus.OPERATOR_QUEUE)
        assert st.handoff_reason == "unanswered"
        assert any(t.startswith("Bot handoff (unanswered).") for t in client.texts())
        assert calls(stack, "imopenlines.bot.session.operator") == 1
        await operator_closes(client, OPERATOR)
        await ends_with_one_lead(client)


def _route_invoices_to_operator(scenario: dict[str, Any]) -> None:
    scenario["handoff"]["routes"] = [{"keywords": ["invoice"], "target": {"user_id": OPERATOR}}]


async def test_transfer_by_rule_goes_to_the_chosen_operator_with_a_context_note(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """A handoff whose last message matches a route is transferred
    (imopenlines.bot.session.transfer) to that operator, who answers it at once; the note
    with the reason and the client's words is in the chat for the operator only."""
    async with _stack(e2e_settings, redis, tmp_path, _route_invoices_to_operator) as stack:
        assert OPERATOR in stack.view.operators(SUPPORT_LINE)
        client = Client(stack)
        await client.say("Hello", expect="How may I call you?")
        words = "Operator please, my invoice is wrong"
        await client.say(words, expect="Connecting you with an operator, please wait.")

        async def transferred() -> bool:
            return bool(client.session().operator_id == OPERATOR)

        await eventually(transferred, TIMEOUT_S)
        st = await client.state(DialogStatus.OPERATOR)
        assert (st.operator_id, st.handoff_reason) == (OPERATOR, "keyword")
        notes = [m for m in messages(client) if m.text.startswith("Bot handoff (keyword).")]
        assert len(notes) == 1
        assert notes[0].text.endswith(f"Last message: {words}")
        assert calls(stack, "imopenlines.bot.session.transfer") == 1
        assert calls(stack, "imopenlines.bot.session.operator") == 0
        await operator_closes(client, OPERATOR)
        await ends_with_one_lead(client)


def _accept_fallback_to_line_2(scenario: dict[str, Any]) -> None:
    scenario["timers"].update({"accept_timeout_s": 2, "accept_fallback": {"queue_id": 2}})


async def test_nobody_accepting_in_time_transfers_the_dialog_to_the_fallback_line(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """A handoff nobody accepts within accept_timeout_s is transferred to the fallback line's
    queue; an operator there completes it."""
    async with _stack(e2e_settings, redis, tmp_path, _accept_fallback_to_line_2) as stack:
        client = Client(stack)
        await client.say("Hello", expect="How may I call you?")
        await client.say("operator", expect="Connecting you with an operator, please wait.")
        await client.queued()

        async def moved() -> bool:
            return bool(client.session().config_id == 2)

        await eventually(moved, TIMEOUT_S)
        st = await client.state(DialogStatus.OPERATOR_QUEUE)
        assert st.handoff_reason == "keyword+accept_timeout"
        assert any("to queue" in m.text for m in messages(client) if m.system)
        assert calls(stack, "imopenlines.bot.session.transfer") == 1
        await client.queued()
        await operator_closes(client, OPERATOR)
        await ends_with_one_lead(client)


async def test_bot_failing_after_its_retries_hands_the_dialog_to_the_queue(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """With the greeting method failing every time, the bot gives up on it and hands the
    dialog to the line's queue (reason bot_failure); an operator completes it."""
    async with _stack(e2e_settings, redis, tmp_path) as stack:
        await stack.control.faults({"error_rate": {"imopenlines.bot.session.message.send": 1.0}})
        client = Client(stack)
        await client.say("Hello")
        await client.queued()
        st = await client.state(DialogStatus.OPERATOR_QUEUE)
        assert st.handoff_reason == "bot_failure"
        counters = stack.emu.portals[0].method_counters["imopenlines.bot.session.message.send"]
        assert counters["errors"] >= 1
        assert not [m for m in messages(client) if m.text.startswith("Hello! I am the support")]
        await stack.control.clear_faults()
        await operator_closes(client, OPERATOR)
        await ends_with_one_lead(client)


# --- ownership ---------------------------------------------------------------------------------


def _line_owns_vote_and_lead(scenario: dict[str, Any]) -> None:
    scenario["evaluation"].update({"vote_owner": "line", "lead_owner": "line"})


async def test_line_that_owns_vote_and_lead_gets_neither_from_us(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """When the line's own settings rate and create the lead, we save no head vote, create no
    lead and look none up; the portal's single lead and the client's vote stand alone."""
    async with _stack(e2e_settings, redis, tmp_path, _line_owns_vote_and_lead) as stack:
        portal: Any = stack.emu.portals[0].portal
        portal.lines[SUPPORT_LINE].crm_create = "lead"  # the line's CRM_CREATE, set by its admin
        client = Client(stack)
        await client.say("Hello", expect="How may I call you?")
        await client.say("operator", expect="Connecting you with an operator, please wait.")
        await client.queued()
        await operator_closes(client, OPERATOR, vote="dislike")
        st = await client.state(DialogStatus.LEAD, DialogStatus.FAILED)
        assert st.status is DialogStatus.LEAD
        assert (st.lead_id, st.lead_done, st.vote_saved, st.vote) == (None, False, False, None)
        await asyncio.sleep(0.5)  # anything we would wrongly do after the close has run by now
        session = client.session()
        assert (session.vote, session.vote_head, session.comment_head) == (1, 0, "")
        chat = portal.get_chat(client.chat_id)
        assert chat.crm_entity_type == "LEAD"
        assert [lead.id for lead in portal.leads.values()] == [chat.crm_entity_id]
        for method in (
            "imopenlines.session.head.vote",
            "imopenlines.session.history.get",
            "imopenlines.crm.lead.create",
            "crm.lead.add",
            "crm.lead.list",
        ):
            assert calls(stack, method) == 0, method
