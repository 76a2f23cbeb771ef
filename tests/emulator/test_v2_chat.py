"""`imbot.v2.Chat.*`, `Command.register`, keyboard clicks and `imopenlines.bot.session.*` for a
v2 webhook-token bot (docs/bitrix24-bots-v2.md §1.5, §5)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.portal import Portal
from emulator.primitives import RestError
from tests.emulator._domain import RecordingSink, call, make_portal
from tests.emulator._v2 import TOKEN, register, v2, v2_error


def _dialog(**fields: Any) -> tuple[Portal, RecordingSink, int, dict[str, Any]]:
    """A line chat whose welcome bot is a v2 fetch bot, after the client's first message."""
    portal, sink = make_portal()
    bot_id = register(portal, **fields)["bot"]["id"]
    portal.lines[1].welcome_bot_id = bot_id
    first = portal.client_message(1, "Hello", name="Jane Roe")
    return portal, sink, bot_id, first


def _send(portal: Portal, bot_id: int, chat_id: int, **fields: Any) -> dict[str, Any]:
    params = {"botId": bot_id, "dialogId": f"chat{chat_id}", "fields": fields}
    result: dict[str, Any] = v2(portal, "imbot.v2.Chat.Message.send", params)
    return result


def test_send_lands_in_the_chat_session_and_reaches_the_client() -> None:
    portal, sink, bot_id, first = _dialog()
    result = _send(portal, bot_id, first["chat_id"], message="Your order ships today")
    assert result == {"id": result["id"], "uuidMap": {}}
    stored = portal.messages[result["id"]]
    assert (stored.chat_id, stored.author_id) == (first["chat_id"], bot_id)
    entry = portal.journal.entries("message")[-1]
    assert entry["message_id"] == result["id"]
    assert (entry["author"], entry["to_client"], entry["session_id"]) == (
        "bot",
        True,
        first["session_id"],
    )
    assert sink.events("ONOPENLINEMESSAGEADD")[-1]["data"]["DATA"]["message"]["id"] == str(
        result["id"]
    )
    skipped = _send(portal, bot_id, first["chat_id"], message="internal", skipConnector=True)
    assert portal.journal.entries("message")[-1]["message_id"] == skipped["id"]
    assert portal.journal.entries("message")[-1]["to_client"] is False


def test_send_truncates_and_refuses_empty_and_foreign_chats() -> None:
    portal, _, bot_id, first = _dialog()
    long = _send(portal, bot_id, first["chat_id"], message="x" * 20_001)
    assert portal.messages[long["id"]].text == "x" * 20_000 + " (...)"
    err = v2_error(
        portal,
        "imbot.v2.Chat.Message.send",
        {"botId": bot_id, "dialogId": f"chat{first['chat_id']}", "fields": {"message": "  "}},
    )
    assert (err.code, err.status) == ("EMPTY_MESSAGE", 400)
    other = register(portal, "outsider", token="outsider-token")["bot"]["id"]
    err = v2_error(
        portal,
        "imbot.v2.Chat.Message.send",
        {"botId": other, "dialogId": f"chat{first['chat_id']}", "fields": {"message": "hi"}},
        token="outsider-token",
    )
    assert (err.code, err.status) == ("ACCESS_DENIED", 400)


def test_white_list_and_reply_in_same_chat_only() -> None:
    portal, _, bot_id, first = _dialog()
    sent = _send(portal, bot_id, first["chat_id"], message="hi", replyId=first["message_id"], FOO=1)
    params = portal.messages[sent["id"]].params
    assert params["REPLY_ID"] == first["message_id"]
    assert "FOO" not in params
    elsewhere = portal.client_message(1, "other client", name="Bob")
    err = v2_error(
        portal,
        "imbot.v2.Chat.Message.send",
        {
            "botId": bot_id,
            "dialogId": f"chat{first['chat_id']}",
            "fields": {"message": "hi", "replyId": elsewhere["message_id"]},
        },
    )
    assert err.code == "REPLY_ERROR"


def test_keyboard_keys_must_be_upper_case_and_an_empty_keyboard_is_refused() -> None:
    portal, _, bot_id, first = _dialog()
    sent = _send(
        portal,
        bot_id,
        first["chat_id"],
        message="Choose",
        keyboard=[
            {"TEXT": "Talk to a person", "COMMAND": "/operator", "BLOCK": "Y"},
            {"TYPE": "NEWLINE"},
            {"text": "camel", "command": "x"},  # camelCase: dropped
            {"TEXT": "Track", "LINK": "https://acme.example/track"},
            {"TEXT": "No action"},  # dropped
        ],
    )
    buttons = portal.messages[sent["id"]].params["KEYBOARD"]
    assert [b.get("TEXT") for b in buttons] == ["Talk to a person", None, "Track"]
    assert buttons[0]["COMMAND"] == "operator"
    assert buttons[0]["BOT_ID"] == bot_id
    err = v2_error(
        portal,
        "imbot.v2.Chat.Message.send",
        {
            "botId": bot_id,
            "dialogId": f"chat{first['chat_id']}",
            "fields": {"message": "x", "keyboard": [{"text": "a", "command": "b"}]},
        },
    )
    assert (err.code, err.status) == ("PARAM_KEYBOARD_ERROR", 400)


def test_command_button_click_raises_commandadd_and_blocks() -> None:
    portal, _, bot_id, first = _dialog()
    v2(
        portal,
        "imbot.v2.Command.register",
        {"botId": bot_id, "fields": {"command": "operator", "title": {"en": "Operator"}}},
    )
    sent = _send(
        portal,
        bot_id,
        first["chat_id"],
        message="Choose",
        keyboard=[
            {"TEXT": "Operator", "COMMAND": "operator", "COMMAND_PARAMS": "now", "BLOCK": "Y"}
        ],
    )
    portal.client_command(first["chat_id"], sent["id"], "operator")
    row = portal.fetch_queue.pending(bot_id)[-1]
    assert row.type == "ONIMBOTV2COMMANDADD"
    command = row.data["command"]
    assert (command["command"], command["params"], command["context"]) == (
        "/operator",
        "now",
        "keyboard",
    )
    assert row.data["user"]["id"] == first["user_id"]
    with pytest.raises(RestError):  # BLOCK=Y: the button is blocked after the click
        portal.client_command(first["chat_id"], sent["id"], "operator")


def test_command_register_is_idempotent_and_validates() -> None:
    portal, _, bot_id, _ = _dialog()
    params = {"botId": bot_id, "fields": {"command": "help", "title": {"en": "Help"}}}
    one = v2(portal, "imbot.v2.Command.register", params)
    two = v2(portal, "imbot.v2.Command.register", params)
    assert one == two
    assert one["command"]["command"] == "/help"
    bad = {"botId": bot_id, "fields": {"command": "x"}}
    assert v2_error(portal, "imbot.v2.Command.register", bad).code == "COMMAND_TITLE_REQUIRED"
    assert (
        v2_error(portal, "imbot.v2.Command.register", {"botId": bot_id, "fields": {}}).code
        == "COMMAND_REQUIRED"
    )


def test_update_and_delete_own_messages_only() -> None:
    portal, _, bot_id, first = _dialog()
    sent = _send(portal, bot_id, first["chat_id"], message="draft")
    v2(
        portal,
        "imbot.v2.Chat.Message.update",
        {"botId": bot_id, "messageId": sent["id"], "fields": {"message": "final"}},
    )
    assert portal.messages[sent["id"]].text == "final"
    assert portal.journal.entries("message_updated")[-1]["message_id"] == sent["id"]
    client_msg = {"botId": bot_id, "messageId": first["message_id"], "fields": {"message": "x"}}
    err = v2_error(portal, "imbot.v2.Chat.Message.update", client_msg)
    assert (err.code, err.status) == ("ACCESS_DENIED", 400)
    portal.bots_v2.settings.message_rules = "code"
    v2(portal, "imbot.v2.Chat.Message.update", client_msg)  # the code: any message in LINES
    err = v2_error(
        portal, "imbot.v2.Chat.Message.delete", {"botId": bot_id, "messageId": first["message_id"]}
    )
    assert err.code == "MESSAGE_ACCESS_DENIED"
    v2(portal, "imbot.v2.Chat.Message.delete", {"botId": bot_id, "messageId": sent["id"]})
    assert portal.messages[sent["id"]].deleted


def test_input_action_and_text_field() -> None:
    portal, _, bot_id, first = _dialog()
    dialog = f"chat{first['chat_id']}"
    v2(
        portal,
        "imbot.v2.Chat.InputAction.notify",
        {"botId": bot_id, "dialogId": dialog, "statusMessageCode": "IMBOT_AGENT_ACTION_THINKING"},
    )
    shown = portal.bots_v2.input_actions[(bot_id, first["chat_id"])]
    assert shown.status_message_code == "IMBOT_AGENT_ACTION_THINKING"
    v2(
        portal,
        "imbot.v2.Chat.TextField.enabled",
        {"botId": bot_id, "dialogId": dialog, "enabled": False},
    )
    portal.client_message(1, "next", user_code=first["user_code"])
    row = portal.fetch_queue.pending(bot_id)[-1]
    assert row.data["chat"]["textFieldEnabled"] == "N"


def test_bot_session_methods_take_the_raw_bot_token_as_client_id() -> None:
    """imopenlines.bot.session.finish over a webhook with CLIENT_ID=<botToken> finds the v2 bot
    (the server adds "custom"); without CLIENT_ID it is ACCESS_DENIED 403."""
    portal, _, bot_id, first = _dialog()
    with pytest.raises(RestError) as err:
        call(portal, "imopenlines.bot.session.finish", {"CHAT_ID": first["chat_id"]}, webhook=True)
    assert (err.value.code, err.value.status) == ("ACCESS_DENIED", 403)
    params = {"CHAT_ID": first["chat_id"], "CLIENT_ID": TOKEN}
    assert call(portal, "imopenlines.bot.session.finish", params, webhook=True) is True
    session = portal.sessions[first["session_id"]]
    assert (session.operator_id, session.status) == (bot_id, 50)  # finished: waits for the vote
