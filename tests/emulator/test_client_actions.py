"""The client's widget: pressing a button by its label (COMMAND and SEND buttons), editing and
deleting its own message, and what the chat's bots are told of each."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.client_actions import DELETED_TEXT
from emulator.portal import Portal
from emulator.primitives import RestError
from emulator.state import Message
from tests.emulator._domain import RecordingSink, make_portal


@pytest.fixture
def seeded() -> tuple[Portal, RecordingSink]:
    """The seeded portal (its v1 bot welcomes line 1) and what it POSTed."""
    return make_portal()


@pytest.fixture
def portal(seeded: tuple[Portal, RecordingSink]) -> Portal:
    return seeded[0]


@pytest.fixture
def chat(portal: Any) -> dict[str, Any]:
    """A client's first message on line 1."""
    return dict(portal.client_message(1, "Hello", name="Ann Lee"))


def _bot_message(portal: Any, chat_id: int, keyboard: list[dict[str, Any]]) -> Message:
    bot = next(iter(portal.bots.values()))
    message: Message = portal.post_message(portal.chats[chat_id], bot.id, "Pick one")
    message.params["KEYBOARD"] = keyboard
    return message


def test_a_send_button_posts_its_value_as_the_clients_message(
    portal: Any, chat: dict[str, Any]
) -> None:
    message = _bot_message(
        portal, chat["chat_id"], [{"TEXT": "Prices", "ACTION": "SEND", "ACTION_VALUE": "Prices"}]
    )
    pressed = portal.client_press(chat["chat_id"], message.id, "Prices")
    sent = portal.messages[pressed["sent"]["message_id"]]
    assert (sent.text, sent.author_id, sent.chat_id) == ("Prices", chat["user_id"], chat["chat_id"])


def test_a_press_of_a_label_no_button_has_is_refused(portal: Any, chat: dict[str, Any]) -> None:
    message = _bot_message(portal, chat["chat_id"], [{"TEXT": "Docs", "LINK": "https://x.test"}])
    with pytest.raises(RestError) as missing:
        portal.client_press(chat["chat_id"], message.id, "Prices")
    assert missing.value.code == "BUTTON_NOT_FOUND"
    with pytest.raises(RestError) as link:
        portal.client_press(chat["chat_id"], message.id, "Docs")
    assert link.value.code == "BUTTON_NOT_PRESSABLE"


def test_the_client_edits_and_deletes_its_own_message_only(
    seeded: tuple[Portal, RecordingSink], chat: dict[str, Any]
) -> None:
    portal, sink = seeded
    chat_id, own = chat["chat_id"], chat["message_id"]
    portal.client_edit(chat_id, own, "Hello there")
    assert portal.messages[own].text == "Hello there"
    portal.client_delete(chat_id, own)
    assert (portal.messages[own].deleted, portal.messages[own].text) == (True, DELETED_TEXT)
    changes = portal.journal.entries("message_updated") + portal.journal.entries("message_deleted")
    assert [e["message_id"] for e in changes] == [own, own]
    [updated] = sink.events("ONIMBOTMESSAGEUPDATE")
    assert updated["data"]["PARAMS"]["MESSAGE"] == "Hello there"
    assert len(sink.events("ONIMBOTMESSAGEDELETE")) == 1
    other = _bot_message(portal, chat_id, [{"TEXT": "x", "LINK": "https://x.test"}])
    with pytest.raises(RestError) as refused:
        portal.client_edit(chat_id, other.id, "mine now")
    assert refused.value.code == "CANT_EDIT_MESSAGE"
    with pytest.raises(RestError):
        portal.client_delete(chat_id, own)  # gone already
