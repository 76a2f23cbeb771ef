"""Every typed wrapper called once against the emulator, its answer parsed into its model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from emulator.server import EmulatorConfig, run_emulator
from orchestrator.bitrix.methods import PortalApi
from orchestrator.bitrix.models import Dialog, EventBinding, Lead, SessionHistory, User
from orchestrator.settings import Settings
from tests.event_receiver import event_receiver
from tests.integration.client_support import control, oauth_client


@pytest.fixture
async def event_sink() -> AsyncIterator[str]:
    """A handler URL that accepts the emulator's event POSTs (the bot needs one)."""
    async with event_receiver() as receiver:
        yield receiver.url


@pytest.fixture
async def seeded(event_sink: str) -> AsyncIterator[Any]:
    """The emulator with the app's open-line bot as the line's welcome bot."""
    async with run_emulator(EmulatorConfig(event_url=event_sink)) as emu:
        yield emu


async def _dialog(url: str, code: str) -> dict[str, Any]:
    opened: dict[str, Any] = await control(
        url, "POST", "client-message", {"line_id": 1, "text": "hello", "user_code": code}
    )
    return opened


async def _bot_side(api: PortalApi, chat_id: int) -> int:
    """The bot's methods while the bot holds the dialog; returns a posted message id."""
    assert await api.imbot_chat_send_typing(f"chat{chat_id}")
    message_id = await api.imbot_message_add(f"chat{chat_id}", "How can I help?")
    assert message_id > 0
    assert await api.imbot_message_update(message_id, "How may I help?")
    assert await api.bot_session_message_send(chat_id, "An automatic note")
    assert await api.imbot_message_delete(message_id)
    return message_id


async def _operator_side(api: PortalApi, chat_id: int, session_id: int, message_id: int) -> None:
    """The admin (the OAuth user) joins, takes over and works the dialog."""
    assert await api.session_join(chat_id)
    assert await api.session_intercept(chat_id)
    # Restarting the session from a message makes the caller its operator (§5.8).
    assert await api.message_session_start(chat_id, message_id)
    assert await api.session_start(chat_id)
    assert await api.session_mode_pin(chat_id)
    assert isinstance(await api.session_mode_unpin_all(), list)
    assert isinstance(await api.session_mode_pin_all(), list)
    assert await api.session_mode_silent(chat_id, activate=False)
    assert await api.crm_lead_create(chat_id)
    assert await api.session_head_vote(session_id, rating=5, comment="good")


async def test_every_wrapper_once(seeded: Any, settings: Settings) -> None:
    """Each wrapper reaches its method with the right key case and its model parses."""
    creds = seeded.credentials
    client = await oauth_client(settings, creds)
    api = client.api(creds["member_id"])
    try:
        first = await _dialog(seeded.url, "livechat|1|1|1")
        chat_id, session_id = int(first["chat_id"]), int(first["session_id"])
        assert (await api.session_open(first["user_code"])).chat_id == chat_id
        dialog = await api.dialog_get(chat_id=chat_id)
        assert isinstance(dialog, Dialog)
        assert dialog.id == chat_id
        history = await api.session_history_get(chat_id=chat_id)
        assert isinstance(history, SessionHistory)
        assert history.chat_id == chat_id
        message_id = await _bot_side(api, chat_id)
        assert await api.bot_session_operator(chat_id)
        await _operator_side(api, chat_id, session_id, int(first["message_id"]))

        second = await _dialog(seeded.url, "livechat|1|1|2")
        assert await api.bot_session_transfer(int(second["chat_id"]), queue_id=1)
        third = await _dialog(seeded.url, "livechat|1|1|3")
        assert await api.bot_session_finish(int(third["chat_id"]))

        users = await api.user_get(filter={"ID": 1})
        assert [u.id for u in users.items] == [1]
        assert isinstance(users.items[0], User)
        assert users.total == 1
        assert (await api.user_search(filter={"NAME": "Admin"})).items[0].name == "Admin"

        lead_id = await api.crm_lead_add({"TITLE": "From the bot"})
        lead = await api.crm_lead_get(lead_id)
        assert isinstance(lead, Lead)
        assert lead.title == "From the bot"
        assert lead_id in [x.id for x in (await api.crm_lead_list()).items]

        bindings = await api.event_get()
        assert bindings
        assert all(isinstance(b, EventBinding) for b in bindings)
        bound = bindings[0]
        assert bound.handler
        assert await api.event_unbind(bound.event, bound.handler)
        assert await api.event_bind(bound.event, bound.handler)

        bot_id = await api.imbot_register("second_bot", name="Helper", event_handler=bound.handler)
        assert bot_id > 0
        assert (
            await api.imbot_register("second_bot", name="Helper", event_handler=bound.handler)
            == bot_id
        )
        assert await api.imbot_unregister(bot_id)

        out = await api.batch(
            {"me": ("user.get", {"ID": 1}), "dlg": ("imopenlines.dialog.get", {"CHAT_ID": chat_id})}
        )
        assert out.ok
        assert int(out["dlg"]["id"]) == chat_id
        assert message_id > 0
    finally:
        await client.close()
