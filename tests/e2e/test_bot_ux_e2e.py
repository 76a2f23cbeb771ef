"""End to end, what the client sees besides words: keyboard buttons (a v2 bot's pressed once, a
v1 bot's sending their label), an edited and a deleted answer, and a line that speaks two
languages. Portal events -> ingress (or the fetcher) -> worker -> the emulated portal; judged by
the chat, the portal's keyboard state and the lead it holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from aiohttp import web

from harness.demo.portal_setup import demo_scenario
from harness.demo.stack import Stack, StackOptions, run_stack
from orchestrator.dialog.state import DialogStatus
from orchestrator.pipeline.keys import Keys
from orchestrator.settings import Settings
from tests.answerer_fakes import answer_service
from tests.e2e.chat_client import (
    Client,
    calls,
    ends_with_one_lead,
    messages,
    operator_closes,
    our_leads,
)
from tests.e2e.conftest import dialog_state, drop_arq_jobs, eventually

pytestmark = pytest.mark.timeout(90)

OPERATOR = 3
SECRET = "ux-secret"
CONFIRM = "Is this right? {name}, {email}, {phone}"
GERMAN = {
    "collect": {
        "thanks": "Danke!",
        "fields": [
            {"prompt": "Wie darf ich Sie nennen?"},
            {"prompt": "Wie lautet Ihre E-Mail?"},
            {"prompt": "Und Ihre Telefonnummer?"},
        ],
        "confirm": {"text": "Stimmt das? {name}, {email}, {phone}", "yes": "Ja", "no": "Nein"},
    },
    "handoff": {"message": "Ich verbinde Sie mit einem Mitarbeiter."},
}


def _with_buttons(default: dict[str, Any]) -> None:
    default["buttons"] = {"operator": "Talk to a person", "faq_menu": "Popular topics:"}
    default["faq"][0]["button"] = "Prices"
    default["faq"][1]["button"] = "Delivery"
    default["collect"]["confirm"] = {"text": CONFIRM}


@asynccontextmanager
async def _stack(
    settings: Settings, redis: aioredis.Redis, tmp_path: Path, *, bot: str = "v2", **default: Any
) -> AsyncIterator[Stack]:
    """The whole stack on the demo scenario with buttons, and `default` set on its default."""
    document = demo_scenario()
    _with_buttons(document["default"])
    document["default"].update(default)
    path = tmp_path / "ux-scenario.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), "utf-8")
    # the bot's log polled briskly: a press, an edit and a deletion reach a fetch-mode bot only
    # through it (at the default cadence a press takes up to FETCH_IDLE_MIN_S, an edit up to
    # FETCH_IDLE_MAX_S; the keyboard watch is tested with the fetcher)
    brisk = {"fetch_busy_s": 0.2, "fetch_idle_min_s": 0.2, "fetch_idle_max_s": 0.5}
    settings = settings.model_copy(
        update={"scenario_path": str(path), "poller_discover_s": 0.2, **brisk}
    )
    async with run_stack(settings, StackOptions(workers=1, in_process=True, bot=bot)) as running:
        yield running
    await drop_arq_jobs(redis, settings.queue_name)


async def _stored(client: Client, **fields: str | None) -> None:
    """Wait until the dialog's collected data shows `fields`."""

    async def shown() -> bool:
        st = await dialog_state(client.stack, client.chat_id)
        return st is not None and all(st.data.get(k) == v for k, v in fields.items())

    await eventually(shown, 30)


async def _give_contacts(client: Client, email: str = "anna@example.com") -> None:
    await client.say("Anna Smith", expect="What is your e-mail?")
    await client.say(email, expect="And your phone number?")
    await client.say("+1 555 010 2030", expect="Thank you!")


def _keyboard(client: Client, text: str) -> list[dict[str, Any]]:
    [message] = [m for m in messages(client) if m.text == text]
    return list(message.params.get("KEYBOARD") or [])


async def test_a_v2_bots_buttons_are_pressed_once_and_lead_on(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """The topic menu under the greeting, a topic pressed (and then disabled by the portal),
    the collected data confirmed with Yes: handed off, rated, one lead."""
    async with _stack(e2e_settings, redis, tmp_path) as stack:
        client = Client(stack)
        await client.say("Hello", expect="How may I call you?")
        labels = [b["TEXT"] for b in _keyboard(client, "Popular topics:")]
        assert labels == ["Prices", "Delivery", "Opening hours", "Talk to a person"]
        # its presses come by the bot's log alone: the poller keeps it quick meanwhile
        watch = Keys(stack.settings.key_prefix).keyboards(stack.member_id)
        assert await stack.redis.pttl(watch) > 0
        await client.press("Delivery", expect="We deliver within 3 working days.")
        pressed = next(b for b in _keyboard(client, "Popular topics:") if b["TEXT"] == "Delivery")
        assert (pressed["BLOCK"], pressed["DISABLED"]) == ("Y", "Y")  # pressed once
        await _give_contacts(client)
        confirm = CONFIRM.format(
            name="Anna Smith", email="anna@example.com", phone="+1 555 010 2030"
        )
        assert confirm in client.texts()
        await client.press("Yes", expect="Connecting you with an operator, please wait.")
        await client.queued()
        await operator_closes(client, OPERATOR)
        st = await ends_with_one_lead(client)
        assert st.handoff_reason == "collected"
        assert calls(stack, "imbot.v2.command.register") >= 1


async def test_a_v1_bots_button_sends_its_label(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """A v1 bot's buttons post their label as the client's message: read as the press."""
    async with _stack(e2e_settings, redis, tmp_path, bot="v1") as stack:
        client = Client(stack)
        await client.say("Hello", expect="How may I call you?")
        await client.press(
            "Talk to a person", expect="Connecting you with an operator, please wait."
        )
        assert "Talk to a person" in [m.text for m in messages(client)]  # the client "said" it
        st = await client.state(DialogStatus.OPERATOR_QUEUE)
        assert st.handoff_reason == "button"


async def test_an_edited_email_ends_up_in_the_lead(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """The client corrects the typo in its e-mail after the bot moved on: the lead has the new
    one."""
    async with _stack(e2e_settings, redis, tmp_path) as stack:
        client = Client(stack)
        await client.say("Hello", expect="How may I call you?")
        await client.say("Anna Smith", expect="What is your e-mail?")
        await client.say("anna@exmaple.com", expect="And your phone number?")
        typo = client.sent[-1]
        await client.edit(typo, "anna@example.com")
        await _stored(client, email="anna@example.com")  # the edit comes by the bot's log
        await client.say("+1 555 010 2030", expect="Thank you!")
        assert "anna@example.com" in client.texts()[-1]  # the confirmation shows the edit
        await client.press("Yes", expect="Connecting you with an operator, please wait.")
        await client.queued()
        await operator_closes(client, OPERATOR)
        await ends_with_one_lead(client)
        [lead] = our_leads(client)
        assert lead.fields["EMAIL"][0]["VALUE"] == "anna@example.com"


async def test_a_deleted_answer_is_asked_again(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """The client deletes its name: the bot asks for it again after the field it is asking, and
    the lead carries the name given then."""
    async with _stack(e2e_settings, redis, tmp_path) as stack:
        client = Client(stack)
        await client.say("Hello", expect="How may I call you?")
        await client.say("Anna Smith", expect="What is your e-mail?")
        await client.delete(client.sent[-1])
        await _stored(client, name=None)  # the deletion comes by the bot's log
        await client.say("anna@example.com", expect="How may I call you?")
        await client.say("Ann Lee", expect="And your phone number?")
        await client.say("+1 555 010 2030", expect="Thank you!")
        await client.press("Yes", expect="Connecting you with an operator, please wait.")
        await client.queued()
        await operator_closes(client, OPERATOR)
        await ends_with_one_lead(client)
        [lead] = our_leads(client)
        assert lead.fields["NAME"] == "Ann Lee"


async def test_a_line_that_speaks_two_languages(
    e2e_settings: Settings,
    redis: aioredis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One line, English and German: the answerer tells each client's language, and the line's
    own prompts, confirmation and handoff follow in it; both dialogs end in a lead."""
    monkeypatch.setenv("ANSWERER_SECRET", SECRET)

    async def detect(question: dict[str, Any]) -> web.StreamResponse:
        german = any(w in question["message"].lower() for w in ("hallo", "bestellung", "ich"))
        if german:
            return web.json_response(
                {"action": "reply", "text": "Gern helfe ich Ihnen.", "language": "de"}
            )
        return web.json_response({"action": "reply", "text": "Happy to help."})

    async with answer_service(SECRET, detect) as service:
        answerer = {"kind": "http", "http": {"url": service.url}}
        async with _stack(
            e2e_settings, redis, tmp_path, answerer=answerer, translations={"de": GERMAN}
        ) as stack:
            anna, jana = Client(stack, "Anna Smith"), Client(stack, "Jana Roth")
            await anna.say("Hello, where is my order?", expect="Happy to help.")
            await jana.say("Hallo, wo ist meine Bestellung?", expect="Gern helfe ich Ihnen.")
            await jana.say("Jana Roth", expect="Wie lautet Ihre E-Mail?")
            await jana.say("jana@example.de", expect="Und Ihre Telefonnummer?")
            await jana.say("+49 30 1234567", expect="Danke!")
            assert "Stimmt das? Jana Roth, jana@example.de, +49 30 1234567" in jana.texts()
            await jana.press("Ja", expect="Ich verbinde Sie mit einem Mitarbeiter.")
            await _give_contacts(anna)
            await anna.press("Yes", expect="Connecting you with an operator, please wait.")
            for client in (anna, jana):
                await client.queued()
                await operator_closes(client, OPERATOR)
                await ends_with_one_lead(client)
            assert not any("Wie" in text or "Danke" in text for text in anna.texts())


async def test_a_v2_bot_shows_it_is_thinking_while_the_answer_is_pending(
    e2e_settings: Settings,
    redis: aioredis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An answer that takes two seconds: the client sees the v2 bot's typing indicator
    (`imbot.v2.Chat.InputAction.notify`), then the answer."""
    monkeypatch.setenv("ANSWERER_SECRET", SECRET)

    async def slow(_: dict[str, Any]) -> web.StreamResponse:
        await asyncio.sleep(2.0)
        return web.json_response({"action": "reply", "text": "Found it: it ships today."})

    async with answer_service(SECRET, slow) as service:
        answerer = {"kind": "http", "http": {"url": service.url}, "typing_after_s": 0.2}
        async with _stack(e2e_settings, redis, tmp_path, answerer=answerer) as stack:
            client = Client(stack)
            await client.say("Where is my order?", expect="Found it: it ships today.")
            assert calls(stack, "imbot.v2.chat.inputaction.notify") >= 1
            portal = stack.emu.portals[0].portal  # it records the bot's indicator per chat
            assert any(chat == client.chat_id for _, chat in portal.bots_v2.input_actions)
