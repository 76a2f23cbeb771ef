"""`imbot.register|unregister|message.add|update|delete|chat.sendTyping` (docs/bitrix24.md §6)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.portal import Portal
from emulator.primitives import RestError
from tests.emulator._domain import BOT, call, make_portal

URL = "http://hooks.test/bot"


def _register_params(**extra: Any) -> dict[str, Any]:
    return {
        "CODE": "echo",
        "EVENT_MESSAGE_ADD": URL,
        "EVENT_WELCOME_MESSAGE": URL,
        "EVENT_BOT_DELETE": URL,
        "PROPERTIES": {"NAME": "Echo"},
        **extra,
    }


def _error(portal: Portal, name: str, params: dict[str, Any], **kw: Any) -> RestError:
    with pytest.raises(RestError) as err:
        call(portal, name, params, **kw)
    return err.value


# ---- register / unregister --------------------------------------------------------------------


def test_register_returns_the_bot_user_id_and_is_idempotent_on_code() -> None:
    """register creates a bot user; the same CODE again returns the same id, handlers rebound."""
    portal, _ = make_portal()
    bot_id = call(portal, "imbot.register", _register_params(type="O"))
    bot = portal.bots[bot_id]
    assert portal.users[bot_id].is_bot
    assert (bot.type, bot.openline, bot.app_id) == ("O", True, portal.app_client_id)
    again = call(
        portal, "imbot.register", _register_params(EVENT_MESSAGE_ADD="http://hooks.test/new")
    )
    assert again == bot_id
    assert portal.bots[bot_id].handlers["ONIMBOTMESSAGEADD"].url == "http://hooks.test/new"


def test_register_openline_flag_without_type_o() -> None:
    """OPENLINE=Y makes a TYPE B bot receive open-line messages; the default is N."""
    portal, _ = make_portal()
    plain = call(portal, "imbot.register", _register_params(CODE="plain"))
    lines = call(portal, "imbot.register", _register_params(CODE="lines", OPENLINE="Y"))
    assert not portal.bots[plain].openline
    assert portal.bots[lines].openline


def test_register_webhook_bot_appends_client_id() -> None:
    """A webhook bot's app id is 'custom'+CLIENT_ID and its URLs carry ?CLIENT_ID= / &CLIENT_ID=."""
    portal, _ = make_portal()
    bot_id = call(
        portal,
        "imbot.register",
        _register_params(EVENT_MESSAGE_ADD=URL + "?x=1", client_id="abc"),
        webhook=True,
    )
    bot = portal.bots[bot_id]
    assert bot.app_id == "customabc"
    assert bot.handlers["ONIMBOTMESSAGEADD"].url == URL + "?x=1&CLIENT_ID=abc"
    assert bot.handlers["ONIMBOTDELETE"].url == URL + "?CLIENT_ID=abc"


def test_register_event_handler_fills_every_handler() -> None:
    """EVENT_HANDLER alone is copied into all six handler params."""
    portal, _ = make_portal()
    bot_id = call(
        portal,
        "imbot.register",
        {"CODE": "all", "EVENT_HANDLER": URL, "PROPERTIES": {"LAST_NAME": "Only"}},
    )
    assert len(portal.bots[bot_id].handlers) == 6


@pytest.mark.parametrize(
    ("drop", "extra", "code"),
    [
        ("EVENT_MESSAGE_ADD", {}, "EVENT_MESSAGE_ADD_ERROR"),
        ("EVENT_WELCOME_MESSAGE", {}, "EVENT_WELCOME_MESSAGE_ERROR"),
        ("EVENT_BOT_DELETE", {}, "EVENT_BOT_DELETE_ERROR"),
        (None, {"EVENT_MESSAGE_UPDATE": "not a url"}, "EVENT_MESSAGE_UPDATE_ERROR"),
        ("CODE", {}, "CODE_ERROR"),
        ("PROPERTIES", {}, "NAME_ERROR"),
    ],
)
def test_register_validation(drop: str | None, extra: dict[str, Any], code: str) -> None:
    """register reports each missing/invalid piece with its own code."""
    portal, _ = make_portal()
    params = _register_params(**extra)
    if drop:
        params.pop(drop)
    assert _error(portal, "imbot.register", params).code == code


def test_register_webhook_without_client_id_is_denied() -> None:
    """A webhook call without CLIENT_ID is 403 ACCESS_DENIED."""
    portal, _ = make_portal()
    err = _error(portal, "imbot.register", _register_params(), webhook=True)
    assert (err.code, err.status) == ("ACCESS_DENIED", 403)


def test_unregister_fires_onimbotdelete_and_removes_the_bot() -> None:
    """unregister sends ONIMBOTDELETE {BOT_ID, BOT_CODE} to the bot's handler and deletes it."""
    portal, sink = make_portal()
    bot_id = call(portal, "imbot.register", _register_params())
    assert call(portal, "imbot.unregister", {"bot_id": bot_id}) is True
    (event,) = sink.events("ONIMBOTDELETE")
    assert event["data"] == {"BOT_ID": str(bot_id), "BOT_CODE": "echo"}
    assert bot_id not in portal.bots


def test_unregister_errors() -> None:
    """unregister: BOT_ID_ERROR (missing/unknown), APP_ID_ERROR (another app's bot)."""
    portal, _ = make_portal()
    hook_bot = call(portal, "imbot.register", _register_params(CLIENT_ID="w"), webhook=True)
    assert _error(portal, "imbot.unregister", {}).code == "BOT_ID_ERROR"
    assert _error(portal, "imbot.unregister", {"BOT_ID": 999}).code == "BOT_ID_ERROR"
    assert _error(portal, "imbot.unregister", {"BOT_ID": hook_bot}).code == "APP_ID_ERROR"


# ---- messages -----------------------------------------------------------------------------------


def test_message_add_into_the_lines_chat() -> None:
    """message.add into chat<N> returns the new id and goes out to the connector."""
    portal, sink = make_portal()
    first = portal.client_message(1, "Hello")
    message_id = call(
        portal, "imbot.message.add", {"dialog_id": f"chat{first['chat_id']}", "message": "  Hi!  "}
    )
    assert isinstance(message_id, int)
    assert portal.messages[message_id].text == "Hi!"
    assert portal.messages[message_id].author_id == BOT
    assert sink.events("ONOPENLINEMESSAGEADD")[-1]["data"]["CONNECTOR"] == "livechat"


def test_message_add_skip_connector_stays_internal() -> None:
    """SKIP_CONNECTOR=Y: no OnOpenLineMessageAdd for the client side."""
    portal, sink = make_portal()
    first = portal.client_message(1, "Hello")
    before = len(sink.events("ONOPENLINEMESSAGEADD"))
    call(
        portal,
        "imbot.message.add",
        {"DIALOG_ID": f"chat{first['chat_id']}", "MESSAGE": "note", "SKIP_CONNECTOR": "Y"},
    )
    assert len(sink.events("ONOPENLINEMESSAGEADD")) == before


def test_message_add_private_and_system_pair() -> None:
    """DIALOG_ID <user> posts privately; FROM_USER_ID+TO_USER_ID forces a system message."""
    portal, _ = make_portal()
    private = call(portal, "imbot.message.add", {"DIALOG_ID": "2", "MESSAGE": "psst"})
    assert portal.chats[portal.messages[private].chat_id].type == "P"
    pair = call(
        portal, "imbot.message.add", {"FROM_USER_ID": 2, "TO_USER_ID": 3, "MESSAGE": "note"}
    )
    assert portal.messages[pair].system


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"MESSAGE": "x"}, "DIALOG_ID_EMPTY"),
        ({"DIALOG_ID": "abc", "MESSAGE": "x"}, "DIALOG_ID_EMPTY"),
        ({"DIALOG_ID": "2", "MESSAGE": "   "}, "MESSAGE_EMPTY"),
        ({"DIALOG_ID": "2"}, "MESSAGE_EMPTY"),
        ({"DIALOG_ID": "chat999", "MESSAGE": "x"}, "WRONG_REQUEST"),
        ({"DIALOG_ID": "2", "MESSAGE": "x", "KEYBOARD": [{"COMMAND": "a"}]}, "KEYBOARD_ERROR"),
        ({"DIALOG_ID": "2", "MESSAGE": "x", "KEYBOARD": "{broken"}, "KEYBOARD_ERROR"),
        ({"DIALOG_ID": "2", "MESSAGE": "x", "ATTACH": "{broken"}, "ATTACH_ERROR"),
        (
            {"DIALOG_ID": "2", "MESSAGE": "x", "ATTACH": [{"MESSAGE": "y" * 31_000}]},
            "ATTACH_OVERSIZE",
        ),
        ({"DIALOG_ID": "2", "MESSAGE": "x", "BOT_ID": 999}, "BOT_ID_ERROR"),
    ],
)
def test_message_add_errors(params: dict[str, Any], code: str) -> None:
    """message.add reports the documented codes."""
    portal, _ = make_portal()
    assert _error(portal, "imbot.message.add", params).code == code


def test_message_add_keyboard_is_kept() -> None:
    """A valid KEYBOARD ({BUTTONS: [...]} or JSON) is stored with the message."""
    portal, _ = make_portal()
    keyboard = json.dumps({"BUTTONS": [{"TEXT": "Yes", "COMMAND": "yes"}, {"TYPE": "NEWLINE"}]})
    message_id = call(
        portal, "imbot.message.add", {"DIALOG_ID": "2", "MESSAGE": "Choose", "KEYBOARD": keyboard}
    )
    assert portal.messages[message_id].params["KEYBOARD"][0]["TEXT"] == "Yes"


def test_message_update_and_delete() -> None:
    """update replaces the text; delete leaves a stub; COMPLETE=Y removes the message."""
    portal, _ = make_portal()
    message_id = call(portal, "imbot.message.add", {"DIALOG_ID": "2", "MESSAGE": "v1"})
    assert call(portal, "imbot.message.update", {"MESSAGE_ID": message_id, "MESSAGE": "v2"}) is True
    assert portal.messages[message_id].text == "v2"
    assert call(portal, "imbot.message.delete", {"MESSAGE_ID": message_id}) is True
    assert portal.messages[message_id].deleted
    other = call(portal, "imbot.message.add", {"DIALOG_ID": "2", "MESSAGE": "v3"})
    call(portal, "imbot.message.delete", {"MESSAGE_ID": other, "COMPLETE": "Y"})
    assert other not in portal.messages


def test_message_update_delete_errors() -> None:
    """update/delete: MESSAGE_ID_ERROR; CANT_EDIT_MESSAGE (403) for someone else's message."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    for name in ("imbot.message.update", "imbot.message.delete"):
        assert _error(portal, name, {"MESSAGE": "x"}).code == "MESSAGE_ID_ERROR"
        err = _error(portal, name, {"MESSAGE_ID": first["message_id"], "MESSAGE": "x"})
        assert (err.code, err.status) == ("CANT_EDIT_MESSAGE", 403)


def test_send_typing() -> None:
    """sendTyping: true for a valid DIALOG_ID, DIALOG_ID_EMPTY otherwise."""
    portal, _ = make_portal()
    assert call(portal, "imbot.chat.sendTyping", {"DIALOG_ID": "chat1"}) is True
    assert _error(portal, "imbot.chat.sendTyping", {}).code == "DIALOG_ID_EMPTY"
