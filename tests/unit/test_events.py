"""parse_event: every event we bind, as the portal sends it; malformed and unknown ones refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from orchestrator.errors import InvalidEvent
from orchestrator.events import models as ev
from orchestrator.events.models import parse_event
from tests.unit import b24_payloads as p

CASES: list[tuple[Callable[[], dict[str, Any]], type, str | None, str]] = [
    (p.bot_message, ev.BotMessageAdd, "901", "msg:70001:add"),
    (
        lambda: p.bot_message(event="ONIMBOTMESSAGEUPDATE"),
        ev.BotMessageUpdate,
        "901",
        f"msg:70001:update:{p.TS}",
    ),
    (
        lambda: p.bot_message(event="ONIMBOTMESSAGEDELETE"),
        ev.BotMessageDelete,
        "901",
        "msg:70001:delete",
    ),
    (p.bot_join, ev.BotJoinChat, "901", f"join:901:77:{p.TS}"),
    (p.bot_delete, ev.BotDelete, None, "botdelete:77"),
    (p.openline_message_in, ev.OpenLineMessageAdd, "901", "msg:70001:add"),
    (p.openline_message_out, ev.OpenLineMessageAdd, "901", "msg:70002:add"),
    (p.session_event, ev.SessionStart, "901", f"onsessionstart:chat:901:{p.TS}"),
    (
        lambda: p.session_event("ONSESSIONFINISH"),
        ev.SessionFinish,
        "901",
        f"onsessionfinish:chat:901:{p.TS}",
    ),
    (p.session_event_docs, ev.SessionFinish, "901", "onsessionfinish:session:512"),
    (p.app_install, ev.AppInstall, None, f"onappinstall:{p.MEMBER}:{p.TS}"),
    (p.app_uninstall, ev.AppUninstall, None, f"onappuninstall:{p.MEMBER}:{p.TS}"),
]


@pytest.mark.parametrize(("build", "cls", "dialog_id", "dedup_key"), CASES)
def test_every_event_parses_from_the_wire_with_its_keys(
    build: Callable[[], dict[str, Any]], cls: type, dialog_id: str | None, dedup_key: str
) -> None:
    """Each event, form-encoded as the portal sends it, parses with its dialog id and dedup key."""
    event = parse_event(p.over_the_wire(build()))
    assert isinstance(event, cls)
    assert event.name == build()["event"]
    assert (event.member_id, event.domain, event.application_token) == (
        p.MEMBER,
        p.DOMAIN,
        p.APP_TOKEN,
    )
    assert event.ts == p.TS
    assert event.dialog_id == dialog_id
    assert event.dedup_key == dedup_key


def test_bot_and_openline_bindings_of_one_message_share_a_dedup_key() -> None:
    """One client message seen by both bindings counts once."""
    bot = parse_event(p.over_the_wire(p.bot_message(message_id=42)))
    line = parse_event(p.over_the_wire(p.openline_message_in(message_id=42)))
    assert bot.dedup_key == line.dedup_key
    assert bot.dialog_id == line.dialog_id


def test_openline_message_with_only_external_ids_is_portal_level() -> None:
    """Without `im` or message.chat_id the packet names no portal chat: no dialog, own key."""
    payload = p.openline_message_in()
    del payload["data"]["DATA"]["im"]
    event = parse_event(p.over_the_wire(payload))
    assert event.dialog_id is None
    assert event.dedup_key == "olmsg:telegrambot|3|123456789:555"


def test_message_fields_are_typed() -> None:
    """Ids become ints, Y/N flags booleans, and the Open Lines context is derived."""
    event = parse_event(p.over_the_wire(p.bot_message("Hello", from_user=12, connector=False)))
    assert isinstance(event, ev.BotMessageAdd)
    params = event.data.PARAMS
    assert (params.MESSAGE, params.FROM_USER_ID, params.chat_id) == ("Hello", 12, 901)
    assert params.is_lines
    assert params.SYSTEM is False
    assert (params.session_id, params.line_id) == (512, 3)
    assert params.user_code == "telegrambot|3|123456789|4567"
    assert event.data.USER is not None
    assert event.data.USER.IS_CONNECTOR is False
    assert event.bot_ids == [77]


def test_event_name_is_upper_cased() -> None:
    """A lower-case event name is accepted and reported upper-case."""
    payload = p.bot_delete() | {"event": "onImBotDelete"}
    assert parse_event(payload).name == "ONIMBOTDELETE"


def test_json_payload_with_numbers_parses_too() -> None:
    """A JSON body (numbers instead of strings) parses like the form body."""
    payload = p.bot_message()
    payload["ts"] = p.TS
    payload["data"]["PARAMS"]["MESSAGE_ID"] = 70001
    payload["data"]["PARAMS"]["MESSAGE"] = 12345
    event = parse_event(payload)
    assert isinstance(event, ev.BotMessageAdd)
    assert event.data.PARAMS.MESSAGE == "12345"


def test_install_keeps_tokens_out_of_repr() -> None:
    """ONAPPINSTALL exposes its token pair but never prints it."""
    event = parse_event(p.over_the_wire(p.app_install()))
    assert isinstance(event, ev.AppInstall)
    assert event.auth.refresh_token == "rt"
    assert "rt" not in repr(event.auth).replace("client_endpoint", "")
    assert p.APP_TOKEN not in repr(event)


def test_private_chat_message_is_keyed_by_dialog() -> None:
    """A private-chat message (no chat id) still gets a queue key of its own."""
    payload = p.bot_message()
    params = payload["data"]["PARAMS"]
    for key in ("CHAT_ID", "TO_CHAT_ID", "CHAT_ENTITY_TYPE", "CHAT_ENTITY_ID"):
        params.pop(key)
    params |= {"DIALOG_ID": "4567", "MESSAGE_TYPE": "P"}
    event = parse_event(p.over_the_wire(payload))
    assert event.dialog_id == "dm4567"


def _without(path: str) -> dict[str, Any]:
    payload = p.bot_message()
    node = payload
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[key]
    node.pop(leaf)
    return payload


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        ({"event": "ONCRMLEADADD", "auth": p.auth()}, 422, "ONCRMLEADADD"),
        ({"event": "ONIMCOMMANDADD", "auth": p.auth()}, 422, "unsupported"),
        ({"auth": p.auth()}, 400, "event"),
        ({"event": ["x"]}, 400, "event"),
        (_without("auth.application_token"), 400, "auth.application_token"),
        (_without("auth.member_id"), 400, "auth.member_id"),
        (_without("ts"), 400, "ts"),
        (_without("data.PARAMS.MESSAGE_ID"), 400, "data.PARAMS.MESSAGE_ID"),
        (_without("data.PARAMS"), 400, "data.PARAMS"),
        (p.bot_message() | {"ts": "yesterday"}, 400, "ts"),
        (p.bot_delete() | {"data": {"BOT_ID": "-5"}}, 400, "data.BOT_ID"),
        ({**p.session_event(), "data": {"DATA": {"chat": {}}}}, 400, "chat id"),
        ({**p.openline_message_in(), "data": {"DATA": {"connector": {}}}}, 400, "message"),
        ({**p.openline_message_in(), "data": {"DATA": {"message": {"text": "x"}}}}, 400, "id"),
    ],
)
def test_malformed_or_unknown_events_are_refused(
    payload: dict[str, Any], status: int, fragment: str
) -> None:
    """Unknown names give 422; missing or invalid fields give 400 naming the first bad field."""
    with pytest.raises(InvalidEvent) as info:
        parse_event(payload)
    assert info.value.status == status
    assert fragment in info.value.reason
