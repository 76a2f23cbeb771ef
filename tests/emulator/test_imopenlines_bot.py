"""`imopenlines.bot.session.finish|message.send|operator|transfer` (docs/bitrix24.md §5.1-§5.4)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.primitives import RestError
from tests.emulator._domain import BOT, OPERATORS, call, make_portal

OP = OPERATORS[0]


def _error(portal: Any, name: str, params: dict[str, Any], **kw: Any) -> RestError:
    with pytest.raises(RestError) as err:
        call(portal, name, params, **kw)
    return err.value


def _webhook_bot(portal: Any, client_id: str = "hookbot") -> int:
    return int(
        call(
            portal,
            "imbot.register",
            {
                "CODE": f"code_{client_id}",
                "TYPE": "O",
                "EVENT_HANDLER": "http://hooks.test/wh",
                "PROPERTIES": {"NAME": "Hook bot"},
                "CLIENT_ID": client_id,
            },
            webhook=True,
        )
    )


# ---- finish ---------------------------------------------------------------------------------


def test_finish_bot_answers_then_finishes() -> None:
    """finish: the bot becomes the operator (humans evicted) and the session waits for the vote."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    call(portal, "imopenlines.bot.session.operator", {"CHAT_ID": first["chat_id"]})
    portal.operator_answer(first["chat_id"], OP)
    assert call(portal, "imopenlines.bot.session.finish", {"chat_id": first["chat_id"]}) is True
    session = portal.sessions[first["session_id"]]
    chat = portal.chats[first["chat_id"]]
    assert session.operator_id == BOT
    assert chat.author_id == BOT
    assert OP not in chat.members
    assert session.status == 50


def test_finish_errors() -> None:
    """finish: CHAT_ID_EMPTY, ACCESS_DENIED (webhook without CLIENT_ID), BOT_ID_ERROR."""
    portal, _ = make_portal()
    assert _error(portal, "imopenlines.bot.session.finish", {}).code == "CHAT_ID_EMPTY"
    err = _error(portal, "imopenlines.bot.session.finish", {"CHAT_ID": 1}, webhook=True)
    assert (err.code, err.status) == ("ACCESS_DENIED", 403)
    err = _error(
        portal,
        "imopenlines.bot.session.finish",
        {"CHAT_ID": 1, "CLIENT_ID": "nobody"},
        webhook=True,
    )
    assert err.code == "BOT_ID_ERROR"


def test_finish_is_lenient_about_the_chat() -> None:
    """finish returns true for a chat that does not exist or has no open session."""
    portal, _ = make_portal()
    assert call(portal, "imopenlines.bot.session.finish", {"CHAT_ID": 4242}) is True


def test_finish_by_webhook_bot_with_client_id() -> None:
    """A webhook bot is found through 'custom' + CLIENT_ID (case-insensitive key)."""
    portal, _ = make_portal()
    bot_id = _webhook_bot(portal)
    first = portal.client_message(1, "Hello")
    call(
        portal,
        "imopenlines.bot.session.finish",
        {"chat_id": first["chat_id"], "client_id": "hookbot"},
        webhook=True,
    )
    assert portal.sessions[first["session_id"]].operator_id == bot_id


# ---- message.send ---------------------------------------------------------------------------


def test_message_send_default_posts_a_system_message() -> None:
    """NAME=DEFAULT posts MESSAGE as a system message delivered to the connector."""
    portal, sink = make_portal()
    first = portal.client_message(1, "Hello")
    assert (
        call(
            portal,
            "imopenlines.bot.session.message.send",
            {"chat_id": first["chat_id"], "name": "DEFAULT", "message": "Auto text"},
        )
        is True
    )
    last = portal.messages[portal.last_message_id(first["chat_id"])]
    assert last.text == "Auto text"
    assert last.system
    assert last.params["IMPORTANT_CONNECTOR"] == "Y"
    out = sink.events("ONOPENLINEMESSAGEADD")[-1]["data"]
    assert out["DATA"]["message"]["text"] == "Auto text"


def test_message_send_welcome_and_unknown_names() -> None:
    """NAME=WELCOME posts the line's welcome text; another NAME posts nothing but returns true."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    before = len(portal.messages)
    assert (
        call(
            portal,
            "imopenlines.bot.session.message.send",
            {"CHAT_ID": first["chat_id"], "NAME": "OTHER", "MESSAGE": "x"},
        )
        is True
    )
    assert len(portal.messages) == before
    call(
        portal,
        "imopenlines.bot.session.send.message",
        {"CHAT_ID": first["chat_id"], "NAME": "WELCOME"},
    )
    assert (
        portal.messages[portal.last_message_id(first["chat_id"])].text
        == portal.lines[1].welcome_message
    )


def test_message_send_checks_only_the_chat_id() -> None:
    """message.send: CHAT_ID_EMPTY; a chat without session still returns true."""
    portal, _ = make_portal()
    assert (
        _error(portal, "imopenlines.bot.session.message.send", {"NAME": "DEFAULT"}).code
        == "CHAT_ID_EMPTY"
    )
    assert (
        call(
            portal,
            "imopenlines.bot.session.message.send",
            {"CHAT_ID": 999, "NAME": "DEFAULT", "MESSAGE": "x"},
        )
        is True
    )


# ---- operator -------------------------------------------------------------------------------


def test_operator_hands_the_dialog_to_the_queue() -> None:
    """bot.session.operator: bot leaves, status 5, chat AUTHOR_ID 0."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    assert call(portal, "imopenlines.bot.session.operator", {"chat_id": first["chat_id"]}) is True
    assert portal.sessions[first["session_id"]].status == 5
    assert portal.chats[first["chat_id"]].author_id == 0


def test_operator_wrong_chat_when_a_human_leads() -> None:
    """bot.session.operator: WRONG_CHAT when the operator is not a bot or the chat is unknown."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    call(portal, "imopenlines.bot.session.operator", {"CHAT_ID": first["chat_id"]})
    portal.operator_answer(first["chat_id"], OP)
    err = _error(portal, "imopenlines.bot.session.operator", {"CHAT_ID": first["chat_id"]})
    assert (err.code, err.description) == ("WRONG_CHAT", "Operator is not a bot")
    assert _error(portal, "imopenlines.bot.session.operator", {"CHAT_ID": 999}).code == "WRONG_CHAT"
    assert _error(portal, "imopenlines.bot.session.operator", {}).code == "CHAT_ID_EMPTY"


# ---- transfer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "CHAT_ID_EMPTY"),
        ({"chat_id": 1, "USER_ID": 2}, "CHAT_ID_EMPTY"),  # keys are case-sensitive
        ({"CHAT_ID": 1, "USER_ID": 0}, "USER_ID_EMPTY"),
        ({"CHAT_ID": 1, "QUEUE_ID": "0"}, "QUEUE_ID_EMPTY"),
        ({"CHAT_ID": 1, "TRANSFER_ID": "queue0"}, "QUEUE_ID_EMPTY"),
        ({"CHAT_ID": 1}, "TRANSFER_ID_EMPTY"),
        ({"CHAT_ID": 1, "TRANSFER_ID": "0", "USER_ID": 2}, "USER_ID_EMPTY"),
        ({"CHAT_ID": 1, "USER_ID": 99}, "OPERATOR_WRONG"),
        ({"CHAT_ID": 1, "USER_ID": BOT}, "OPERATOR_WRONG"),
        ({"CHAT_ID": 1, "QUEUE_ID": 7}, "OPERATOR_WRONG"),
    ],
)
def test_transfer_validation(params: dict[str, Any], code: str) -> None:
    """transfer validates in the documented order and reports the documented codes."""
    portal, _ = make_portal()
    portal.client_message(1, "Hello")
    assert _error(portal, "imopenlines.bot.session.transfer", params).code == code


def test_transfer_webhook_needs_client_id_after_target_checks() -> None:
    """transfer: ACCESS_DENIED for a webhook without CLIENT_ID comes after the target checks."""
    portal, _ = make_portal()
    assert (
        _error(portal, "imopenlines.bot.session.transfer", {"CHAT_ID": 1}, webhook=True).code
        == "TRANSFER_ID_EMPTY"
    )
    assert (
        _error(
            portal, "imopenlines.bot.session.transfer", {"CHAT_ID": 1, "USER_ID": 2}, webhook=True
        ).code
        == "ACCESS_DENIED"
    )
    assert (
        _error(
            portal,
            "imopenlines.bot.session.transfer",
            {"CHAT_ID": 1, "USER_ID": 2, "client_id": "zzz"},
            webhook=True,
        ).code
        == "BOT_ID_ERROR"
    )


def test_transfer_to_user_answers_for_the_target() -> None:
    """transfer to a user: the target operates at once (status kept); LEAVE=Y drops the bot."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    assert (
        call(
            portal,
            "imopenlines.bot.session.transfer",
            {"CHAT_ID": first["chat_id"], "USER_ID": OP, "LEAVE": "Y"},
        )
        is True
    )
    session = portal.sessions[first["session_id"]]
    chat = portal.chats[first["chat_id"]]
    assert session.operator_id == OP
    assert session.status == 20  # the client is still waiting; only < 10 is raised to 10
    assert chat.author_id == OP
    assert BOT not in chat.members
    assert OP in chat.members


def test_numeric_transfer_id_overrides_user_id() -> None:
    """A numeric TRANSFER_ID overwrites USER_ID; USER_ID beats QUEUE_ID."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    call(
        portal,
        "imopenlines.bot.session.transfer",
        {
            "CHAT_ID": first["chat_id"],
            "USER_ID": OPERATORS[1],
            "TRANSFER_ID": str(OP),
            "QUEUE_ID": 1,
        },
    )
    assert portal.sessions[first["session_id"]].operator_id == OP


def test_transfer_to_queue_of_another_line() -> None:
    """transfer to queue<N>: no operator, status 5, new line; the bot stays (LEAVE ignored)."""
    portal, _ = make_portal()
    other = portal.add_line("Sales", [OPERATORS[2]])
    first = portal.client_message(1, "Hello")
    call(
        portal,
        "imopenlines.bot.session.transfer",
        {"CHAT_ID": first["chat_id"], "TRANSFER_ID": f"queue{other.id}", "LEAVE": "Y"},
    )
    session = portal.sessions[first["session_id"]]
    assert (session.status, session.operator_id, session.config_id) == (5, 0, other.id)
    assert BOT in portal.chats[first["chat_id"]].members
    texts = [m.text for m in portal.messages.values() if m.system]
    assert any("redirected" in t for t in texts)


def test_transfer_to_own_queue_without_leave_keeps_the_bot() -> None:
    """transfer to the same line's queue with LEAVE=N: 'rejected', the bot stays a member."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    call(portal, "imopenlines.bot.session.transfer", {"CHAT_ID": first["chat_id"], "QUEUE_ID": 1})
    assert BOT in portal.chats[first["chat_id"]].members
    assert portal.sessions[first["session_id"]].status == 5
    texts = [m.text for m in portal.messages.values() if m.system]
    assert any("rejected" in t for t in texts)
