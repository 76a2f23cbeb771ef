"""Event payloads as built for the sink (docs/bitrix24.md §8): envelope, auth, BOT/PARAMS/USER,
join/delete, Open Lines session and message events."""

from __future__ import annotations

from typing import Any

from emulator import messaging
from tests.emulator._domain import APP_TOKEN, BOT, EVENT_URL, OPERATORS, call, make_portal

OP = OPERATORS[0]


def test_envelope_and_top_level_auth() -> None:
    """Every event has event, event_handler_id, data, ts (strings) and an auth block, once."""
    portal, sink = make_portal()
    portal.client_message(1, "Hello")
    assert [url for url, _ in sink.posts] == [EVENT_URL] * 4
    for _, payload in sink.posts:
        assert set(payload) == {"event", "event_handler_id", "data", "ts", "auth"}
        assert payload["event_handler_id"].isdigit()
        assert payload["ts"].isdigit()
        assert payload["auth"]["application_token"] == APP_TOKEN
        assert payload["auth"]["member_id"] == "member-1"
        assert payload["auth"]["domain"] == "acme.example.com"
        assert "access_token" not in payload["auth"]


def test_onimbotmessageadd_for_a_client_message() -> None:
    """ONIMBOTMESSAGEADD: BOT keyed by id with auth + BOT_ID/BOT_CODE, PARAMS of an L message."""
    portal, sink = make_portal()
    first = portal.client_message(
        1, "Need help", user_code="telegrambot|1|900|4567", name="Jane Roe"
    )
    (payload,) = sink.events("ONIMBOTMESSAGEADD")
    data = payload["data"]
    bot = data["BOT"][str(BOT)]
    assert (bot["BOT_ID"], bot["BOT_CODE"]) == (str(BOT), "support_bot")
    assert bot["client_id"] == portal.app_client_id
    assert bot["application_token"] == APP_TOKEN
    assert bot["AUTH"]["user_id"] == str(BOT)
    params = data["PARAMS"]
    chat = portal.chats[first["chat_id"]]
    assert params["MESSAGE"] == "Need help"
    assert (params["MESSAGE_TYPE"], params["CHAT_TYPE"]) == ("L", "L")
    assert params["DIALOG_ID"] == f"chat{chat.id}"
    assert params["TO_CHAT_ID"] == params["CHAT_ID"] == str(chat.id)
    assert (params["FROM_USER_ID"], params["AUTHOR_ID"]) == (str(first["user_id"]),) * 2
    assert params["CHAT_ENTITY_TYPE"] == "LINES"
    assert params["CHAT_ENTITY_ID"] == "telegrambot|1|900|4567"
    assert params["CHAT_ENTITY_DATA_1"] == chat.entity_data_1
    assert params["CHAT_ENTITY_DATA_2"] == chat.entity_data_2
    assert params["MESSAGE_ID"] == str(first["message_id"])
    assert params["SYSTEM"] == "N"
    assert "BOT_ID" not in params
    assert data["USER"] == {
        "ID": str(first["user_id"]),
        "NAME": "Jane Roe",
        "FIRST_NAME": "Jane",
        "LAST_NAME": "Roe",
        "WORK_POSITION": "",
        "GENDER": "",
        "IS_BOT": "N",
        "IS_CONNECTOR": "Y",
        "IS_NETWORK": "N",
        "IS_EXTRANET": "N",
    }


def test_token_issuer_fills_the_bot_tokens() -> None:
    """When the platform sets token_issuer, data[BOT][id] carries the bot user's tokens."""
    portal, sink = make_portal()
    portal.token_issuer = lambda user_id, app: {
        "access_token": f"tok{user_id}",
        "refresh_token": "rt",
        "expires_in": "3600",
    }
    portal.client_message(1, "Hello")
    bot = sink.events("ONIMBOTMESSAGEADD")[0]["data"]["BOT"][str(BOT)]
    assert bot["access_token"] == f"tok{BOT}"
    assert bot["AUTH"]["access_token"] == f"tok{BOT}"


def test_webhook_bot_events_carry_client_id_as_application_token() -> None:
    """A webhook bot: data[BOT] has only BOT_ID/BOT_CODE, auth.application_token is CLIENT_ID."""
    portal, sink = make_portal(event_url=None)
    bot_id = call(
        portal,
        "imbot.register",
        {
            "CODE": "hook",
            "TYPE": "O",
            "EVENT_HANDLER": "http://h.test/bot",
            "PROPERTIES": {"NAME": "Hook"},
            "CLIENT_ID": "secret-cid",
        },
        webhook=True,
    )
    portal.lines[1].welcome_bot_enable = True
    portal.lines[1].welcome_bot_id = bot_id
    portal.client_message(1, "Hello")
    url, payload = next((u, p) for u, p in sink.posts if p["event"] == "ONIMBOTMESSAGEADD")
    assert url == "http://h.test/bot?CLIENT_ID=secret-cid"
    assert payload["data"]["BOT"] == {str(bot_id): {"BOT_ID": str(bot_id), "BOT_CODE": "hook"}}
    assert payload["auth"]["application_token"] == "secret-cid"


def test_onimbotjoinchat_payload() -> None:
    """ONIMBOTJOINCHAT: PARAMS with chat/entity/dialog ids and BOT_ID; USER without IS_* flags."""
    portal, sink = make_portal()
    first = portal.client_message(1, "Hello", name="Jane Roe")
    (payload,) = sink.events("ONIMBOTJOINCHAT")
    params = payload["data"]["PARAMS"]
    assert params["BOT_ID"] == str(BOT)
    assert params["CHAT_ID"] == str(first["chat_id"])
    assert params["DIALOG_ID"] == f"chat{first['chat_id']}"
    assert (params["CHAT_TYPE"], params["CHAT_ENTITY_TYPE"]) == ("L", "LINES")
    assert params["CHAT_ENTITY_ID"] == first["user_code"]
    assert params["USER_ID"] == str(first["user_id"])
    assert set(payload["data"]["USER"]) == {
        "ID",
        "NAME",
        "FIRST_NAME",
        "LAST_NAME",
        "WORK_POSITION",
        "GENDER",
    }
    assert str(BOT) in payload["data"]["BOT"]


def test_session_start_and_finish_follow_the_code_shape() -> None:
    """OnSessionStart/Finish: {"DATA": {"connector": {...}, "chat": {...}, "line": {...}}}."""
    portal, sink = make_portal(event_url=None)
    call(portal, "event.bind", {"event": "ONSESSIONSTART", "handler": "http://h.test/s"})
    call(portal, "event.bind", {"event": "ONSESSIONFINISH", "handler": "http://h.test/s"})
    portal.lines[1].vote_message = False
    first = portal.client_message(1, "Hello")
    portal.operator_answer(first["chat_id"], OP)
    portal.operator_finish(first["chat_id"], OP)
    expected: dict[str, Any] = {
        "DATA": {
            "connector": {
                "connector_id": "livechat",
                "line_id": "1",
                "chat_id": str(first["chat_id"]),
                "user_id": str(first["user_id"]),
            },
            "chat": {"chat_id": str(first["chat_id"])},
            "line": {"id": "1", "name": "Support"},
        }
    }
    assert sink.events("ONSESSIONSTART")[0]["data"] == expected
    assert sink.events("ONSESSIONFINISH")[0]["data"] == expected


def test_openline_message_add_client_and_outgoing_shapes() -> None:
    """OnOpenLineMessageAdd: client messages carry DATA.connector/chat/message; replies add
    CONNECTOR and LINE on top."""
    portal, sink = make_portal()
    first = portal.client_message(1, "Hi", user_code="telegrambot|1|900|4567")
    call(portal, "imbot.message.add", {"DIALOG_ID": f"chat{first['chat_id']}", "MESSAGE": "Hello!"})
    incoming, outgoing = (p["data"] for p in sink.events("ONOPENLINEMESSAGEADD"))
    connector = {"connector_id": "telegrambot", "line_id": "1", "chat_id": "900", "user_id": "4567"}
    assert incoming["DATA"]["connector"] == connector
    assert incoming["DATA"]["message"]["text"] == "Hi"
    assert incoming["DATA"]["message"]["id"] == str(first["message_id"])
    assert (outgoing["CONNECTOR"], outgoing["LINE"]) == ("telegrambot", "1")
    assert outgoing["DATA"]["message"]["text"] == "Hello!"
    assert outgoing["DATA"]["message"]["user_id"] == str(BOT)


def test_message_update_and_delete_events_for_an_operator_message() -> None:
    """ONIMBOTMESSAGEUPDATE/DELETE reach OPENLINE bots with ID/MESSAGE/CHAT_* params."""
    portal, sink = make_portal()
    portal.lines[1].welcome_bot_left = "close"
    first = portal.client_message(1, "Hello")
    call(portal, "imopenlines.bot.session.transfer", {"CHAT_ID": first["chat_id"], "USER_ID": OP})
    message_id = portal.operator_message(first["chat_id"], OP, "typo")["message_id"]
    message = portal.messages[message_id]
    message.text = "fixed"
    messaging.message_changed(portal, message, deleted=False)
    messaging.message_changed(portal, message, deleted=True)
    (update,) = sink.events("ONIMBOTMESSAGEUPDATE")
    (delete,) = sink.events("ONIMBOTMESSAGEDELETE")
    assert update["data"]["PARAMS"]["MESSAGE"] == "fixed"
    assert update["data"]["PARAMS"]["ID"] == str(message_id)
    assert update["data"]["PARAMS"]["DIALOG_ID"] == f"chat{first['chat_id']}"
    assert delete["data"]["PARAMS"]["MESSAGE_ID"] == str(message_id)
    assert "PLATFORM_CONTEXT" not in delete["data"]["PARAMS"]


def test_bot_authored_changes_notify_no_bot() -> None:
    """Editing a bot's own message fires no bot event (bots never trigger bot events)."""
    portal, sink = make_portal()
    first = portal.client_message(1, "Hello")
    message_id = call(
        portal, "imbot.message.add", {"DIALOG_ID": f"chat{first['chat_id']}", "MESSAGE": "v1"}
    )
    call(portal, "imbot.message.update", {"MESSAGE_ID": message_id, "MESSAGE": "v2"})
    assert sink.events("ONIMBOTMESSAGEUPDATE") == []


def test_event_counts_per_name() -> None:
    """The portal counts every event it sends, by name."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    portal.client_message(1, "Again", user_code=first["user_code"])
    assert portal.event_counts["ONIMBOTMESSAGEADD"] == 2
    assert portal.event_counts["ONSESSIONSTART"] == 1
