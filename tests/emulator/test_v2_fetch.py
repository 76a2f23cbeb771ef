"""`imbot.v2.Event.get` and who gets which v2 event (docs/bitrix24-bots-v2.md §1.5, §3, §4.1)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.portal import Portal
from emulator.primitives import RestError
from tests.emulator._domain import ALL_SCOPES, BOT, RecordingSink, call, make_portal
from tests.emulator._v2 import HOOK_URL, TOKEN, register, v2, v2_error

OPERATOR = 2


def _line_with_v2_welcome_bot(**fields: Any) -> tuple[Portal, RecordingSink, int]:
    """A portal whose line 1 has a v2 open-line bot as welcome bot (instead of the v1 one)."""
    portal, sink = make_portal()
    bot_id = register(portal, **fields)["bot"]["id"]
    portal.lines[1].welcome_bot_id = bot_id
    return portal, sink, bot_id


def _get(portal: Portal, bot_id: int, token: str = TOKEN, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = v2(
        portal, "imbot.v2.Event.get", {"botId": bot_id, **params}, token=token
    )
    return result


def test_a_line_message_reaches_the_fetch_bot_as_v2_rows() -> None:
    """The welcome bot's join and the client's message are queued as ONIMBOTV2JOINCHAT and
    ONIMBOTV2MESSAGEADD with the LINES chat markers and the full bot object; no v1 event."""
    portal, sink, bot_id = _line_with_v2_welcome_bot()
    first = portal.client_message(1, "Hello, where is my order?", name="Jane Roe")
    page = _get(portal, bot_id)
    assert [e["type"] for e in page["events"]] == ["ONIMBOTV2JOINCHAT", "ONIMBOTV2MESSAGEADD"]
    join, add = (e["data"] for e in page["events"])
    assert join["dialogId"] == f"chat{first['chat_id']}"
    assert join["user"]["id"] == first["user_id"]
    assert add["bot"]["eventMode"] == "fetch"
    assert "auth" not in add["bot"]
    chat = add["chat"]
    assert (chat["entityType"], chat["type"], chat["messageType"]) == ("LINES", "lines", "L")
    assert chat["entityId"] == first["user_code"]
    message = add["message"]
    assert message["id"] == first["message_id"]
    assert message["chatId"] == message["chat_id"] == first["chat_id"]
    assert message["authorId"] == message["author_id"] == first["user_id"]
    assert message["text"] == "Hello, where is my order?"
    assert add["user"]["connector"] is True
    assert add["user"]["lastActivityDate"] is False
    assert not [n for n in sink.names() if n.startswith("ONIMBOT")]


def test_ids_are_global_so_one_bots_ids_have_gaps() -> None:
    """Two fetch bots in one line chat: the ids interleave, each bot sees gaps."""
    portal, _, first_bot = _line_with_v2_welcome_bot()
    second_bot = register(portal, "second", token="second-token")["bot"]["id"]
    chat_id = portal.client_message(1, "one")["chat_id"]
    portal.chats[chat_id].members.append(second_bot)
    portal.client_message(1, "two", user_code=portal.chats[chat_id].entity_id)
    portal.client_message(1, "three", user_code=portal.chats[chat_id].entity_id)
    ids_a = [e["eventId"] for e in _get(portal, first_bot)["events"]]
    ids_b = [e["eventId"] for e in _get(portal, second_bot, token="second-token")["events"]]
    assert len(ids_a) == 4  # join + three messages
    assert len(ids_b) == 2
    assert not set(ids_a) & set(ids_b)
    assert ids_a[-1] - ids_a[-2] == 2  # a gap where the other bot's row is


def test_offset_deletes_for_every_reader_and_same_offset_rereads() -> None:
    portal, _, bot_id = _line_with_v2_welcome_bot()
    portal.client_message(1, "Hi")
    first = _get(portal, bot_id)
    again = _get(portal, bot_id)  # nothing confirmed yet: the same rows again
    assert [e["eventId"] for e in again["events"]] == [e["eventId"] for e in first["events"]]
    confirm = _get(portal, bot_id, offset=first["nextOffset"])
    assert confirm["events"] == []
    # A second poller that never confirmed anything starts from 0: the rows are gone for it too.
    assert _get(portal, bot_id, offset=0)["events"] == []
    assert portal.fetch_queue.pending(bot_id) == []


def test_next_offset_and_has_more_exactly_as_the_code() -> None:
    portal, _, bot_id = _line_with_v2_welcome_bot()
    empty = _get(portal, bot_id)
    assert (empty["events"], empty["nextOffset"], empty["hasMore"]) == ([], 0, False)
    portal.client_message(1, "Hi")  # two rows: join + message
    full = _get(portal, bot_id, limit=2)
    ids = [e["eventId"] for e in full["events"]]
    assert full["hasMore"] is True  # exactly full, though nothing follows
    assert full["nextOffset"] == ids[-1] + 1
    after = _get(portal, bot_id, offset=full["nextOffset"], limit=2)
    assert (after["events"], after["hasMore"]) == ([], False)
    assert after["nextOffset"] == full["nextOffset"]  # max(offset, ...) with no rows
    far = _get(portal, bot_id, offset=full["nextOffset"] + 50)
    assert far["nextOffset"] == full["nextOffset"] + 50


def test_limit_is_clamped_not_rejected() -> None:
    portal, _, bot_id = _line_with_v2_welcome_bot()
    portal.client_message(1, "Hi")
    zero = _get(portal, bot_id, limit=0)
    assert (len(zero["events"]), zero["hasMore"]) == (1, True)
    huge = _get(portal, bot_id, limit=5000)
    assert (len(huge["events"]), huge["hasMore"]) == (2, False)


def test_rows_expire_after_24_hours_on_the_portal_clock() -> None:
    portal, _, bot_id = _line_with_v2_welcome_bot()
    portal.client_message(1, "Hi")
    portal.clock.advance(24 * 3600 - 5)
    assert len(_get(portal, bot_id)["events"]) == 2
    portal.clock.advance(10)
    assert _get(portal, bot_id)["events"] == []


def test_only_the_owner_reads_and_user_events_errors() -> None:
    portal, _, bot_id = _line_with_v2_welcome_bot()
    err = v2_error(portal, "imbot.v2.Event.get", {"botId": bot_id}, token="someone")
    assert (err.code, err.status) == ("BOT_OWNERSHIP_ERROR", 400)
    err = v2_error(portal, "imbot.v2.Event.get", {})
    assert err.code == "BOT_ID_REQUIRED"
    params = {"botId": bot_id, "botToken": TOKEN, "withUserEvents": True}
    no_im = ALL_SCOPES - {"im"}
    for scopes, code in ((no_im, "SCOPE_ERROR"), (ALL_SCOPES, "USER_NOT_SUBSCRIBED")):
        with pytest.raises(RestError) as err:
            call(portal, "imbot.v2.Event.get", params, webhook=True, scopes=scopes)
        assert (err.value.code, err.value.status) == (code, 400)


def test_nothing_is_queued_for_a_webhook_bot_and_fetch_to_webhook_purges() -> None:
    portal, sink, bot_id = _line_with_v2_welcome_bot()
    portal.client_message(1, "Hi")
    assert len(portal.fetch_queue.pending(bot_id)) == 2
    update = {"botId": bot_id, "fields": {"eventMode": "webhook", "webhookUrl": HOOK_URL}}
    v2(portal, "imbot.v2.Bot.update", update)
    assert portal.fetch_queue.pending(bot_id) == []  # purged on the switch
    chat_id = portal.chats[max(portal.chats)].id
    portal.client_message(1, "Again", user_code=portal.chats[chat_id].entity_id)
    assert portal.fetch_queue.pending(bot_id) == []
    assert _get(portal, bot_id)["events"] == []  # not an error, just nothing
    assert sink.names().count("ONIMBOTV2MESSAGEADD") == 1


def test_unregister_writes_delete_then_purges_it() -> None:
    portal, _, bot_id = _line_with_v2_welcome_bot()
    portal.client_message(1, "Hi")
    v2(portal, "imbot.v2.Bot.unregister", {"botId": bot_id})
    queued = [e for e in portal.journal.entries("event_queued") if e["bot_id"] == bot_id]
    assert [e["name"] for e in queued][-1] == "ONIMBOTV2DELETE"
    assert portal.fetch_queue.pending(bot_id) == []


def test_recipients_openline_members_only_and_never_for_bot_authors() -> None:
    """An OPENLINE=N member bot gets nothing in a LINES chat; an operator's message reaches the
    open-line bot; the bot's own message (v1 imbot.message.add) reaches no bot."""
    portal, _, bot_id = _line_with_v2_welcome_bot()
    plain = register(portal, "plain", token="plain-token", type="bot")["bot"]["id"]
    first = portal.client_message(1, "Hi")
    portal.chats[first["chat_id"]].members.append(plain)
    portal.chats[first["chat_id"]].members.append(OPERATOR)
    portal.operator_message(first["chat_id"], OPERATOR, "Operator here")
    call(
        portal,
        "imbot.message.add",
        {
            "BOT_ID": bot_id,
            "DIALOG_ID": f"chat{first['chat_id']}",
            "MESSAGE": "bot text",
            "CLIENT_ID": TOKEN,
        },
        webhook=True,
    )
    rows = portal.fetch_queue.pending(bot_id)
    texts = [r.data["message"]["text"] for r in rows if r.type == "ONIMBOTV2MESSAGEADD"]
    assert texts == ["Hi", "Operator here"]
    assert portal.fetch_queue.pending(plain) == []


def test_a_v1_bot_keeps_v1_events_beside_a_v2_bot() -> None:
    portal, sink = make_portal()
    v2_bot = register(portal)["bot"]["id"]
    first = portal.client_message(1, "Hi")  # the seeded v1 bot is the welcome bot
    portal.chats[first["chat_id"]].members.append(v2_bot)
    portal.client_message(1, "Again", user_code=first["user_code"])
    assert [e["data"]["PARAMS"]["MESSAGE"] for e in sink.events("ONIMBOTMESSAGEADD")] == [
        "Hi",
        "Again",
    ]
    assert all(str(BOT) in e["data"]["BOT"] for e in sink.events("ONIMBOTMESSAGEADD"))
    assert [r.data["message"]["text"] for r in portal.fetch_queue.pending(v2_bot)] == ["Again"]
