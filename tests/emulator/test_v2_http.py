"""imbot.v2 over real HTTP: business errors are 400, the journal names the v2 methods, and a
webhook-mode bot's events reach a receiver form-encoded with every scalar a string and the two
auth blocks (docs/bitrix24-bots-v2.md §1.6, §4.2)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from emulator.server import RunningEmulator
from tests.emulator._platform import call, control, hook
from tests.emulator._v2 import TOKEN
from tests.emulator.test_delivery import Receiver, receiver

__all__ = ["receiver"]


async def _v2(
    emu: RunningEmulator, http: aiohttp.ClientSession, name: str, **body: Any
) -> tuple[int, Any]:
    return await call(http, hook(emu, name), json={"botToken": TOKEN, **body})


@pytest.fixture
async def welcome(emu: RunningEmulator, http: aiohttp.ClientSession, receiver: Receiver) -> int:
    """A webhook-mode v2 open-line bot registered over the webhook, made line 1's welcome bot."""
    status, body = await _v2(
        emu,
        http,
        "imbot.v2.Bot.register",
        fields={
            "code": "acme_ol_bot",
            "type": "openline",
            "eventMode": "webhook",
            "webhookUrl": receiver.url,
            "properties": {"name": "Acme"},
        },
    )
    assert status == 200, body
    bot_id = int(body["result"]["bot"]["id"])
    emu.portals[0].portal.lines[1].welcome_bot_id = bot_id
    return bot_id


async def test_business_errors_are_http_400(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, hook(emu, "imbot.v2.Bot.list"), json={})
    assert (status, body["error"]) == (400, "BOT_TOKEN_NOT_SPECIFIED")
    status, body = await _v2(emu, http, "imbot.v2.Event.get", botId=999)
    assert (status, body["error"]) == (400, "BOT_NOT_FOUND")


async def test_webhook_bot_event_on_the_wire(
    emu: RunningEmulator, http: aiohttp.ClientSession, receiver: Receiver, welcome: int
) -> None:
    status, first = await control(http, emu.url, "client-message", {"line_id": 1, "text": "Hi"})
    assert status == 200
    await emu.settle()
    names = [b["event"] for b in receiver.bodies]
    assert names == ["ONIMBOTV2JOINCHAT", "ONIMBOTV2MESSAGEADD"]
    add = receiver.bodies[1]
    assert add["data[bot][id]"] == str(welcome)
    assert not [k for k in add if k.startswith("data[bot][auth]")]  # webhook-token bot: none
    assert add["auth[application_token]"] == "custom" + TOKEN
    assert add["data[message][isSystem]"] == "0"
    assert add["data[message][chat_id]"] == str(first["chat_id"])
    assert add["data[chat][entityType]"] == "LINES"
    assert add["data[user][connector]"] == "1"
    assert "data[message][forward]" not in add  # null dropped
    assert "data[message][params]" not in add  # empty array dropped
    journal = emu.portals[0].journal
    posted = [e for e in journal.entries("event_posted") if e["name"].startswith("ONIMBOTV2")]
    assert [e["name"] for e in posted] == names
    assert all(e["ok"] for e in posted)
    assert journal.entries("event_queued") == []  # nothing queued for a webhook bot


async def test_v2_send_is_journaled_with_the_method_as_via(
    emu: RunningEmulator, http: aiohttp.ClientSession, welcome: int
) -> None:
    _, first = await control(http, emu.url, "client-message", {"line_id": 1, "text": "Hi"})
    status, body = await _v2(
        emu,
        http,
        "imbot.v2.Chat.Message.send",
        botId=welcome,
        dialogId=f"chat{first['chat_id']}",
        fields={"message": "Hello from v2"},
    )
    assert status == 200, body
    entry = emu.portals[0].journal.entries("message")[-1]
    assert (entry["message_id"], entry["via"], entry["author"]) == (
        body["result"]["id"],
        "imbot.v2.chat.message.send",
        "bot",
    )
    status, history = await call(
        http,
        hook(emu, "imopenlines.session.history.get"),
        json={"CHAT_ID": first["chat_id"], "SESSION_ID": first["session_id"]},
    )
    assert status == 200
    assert "Hello from v2" in str(history["result"])


async def test_oauth_bot_gets_the_apps_token_and_bot_auth(
    emu: RunningEmulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    creds = emu.credentials
    status, body = await call(
        http,
        f"{emu.url}/rest/imbot.v2.Bot.register",
        json={
            "auth": creds["access_token"],
            "fields": {
                "code": "app_bot",
                "type": "openline",
                "eventMode": "webhook",
                "webhookUrl": receiver.url,
                "properties": {"name": "App bot"},
            },
        },
    )
    assert status == 200, body
    emu.portals[0].portal.lines[1].welcome_bot_id = int(body["result"]["bot"]["id"])
    await control(http, emu.url, "client-message", {"line_id": 1, "text": "Hi"})
    await emu.settle()
    add = receiver.bodies[-1]
    assert add["event"] == "ONIMBOTV2MESSAGEADD"
    assert add["auth[application_token]"] == creds["application_token"]
    assert add["data[bot][auth][access_token]"]
    assert add["data[bot][auth][user_id]"] == str(body["result"]["bot"]["id"])


async def test_fetch_rows_are_journaled_as_event_queued(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    _, body = await _v2(
        emu,
        http,
        "imbot.v2.Bot.register",
        fields={"code": "fetcher", "type": "openline", "properties": {"name": "F"}},
    )
    bot_id = int(body["result"]["bot"]["id"])
    emu.portals[0].portal.lines[1].welcome_bot_id = bot_id
    _, first = await control(http, emu.url, "client-message", {"line_id": 1, "text": "Hi"})
    queued = emu.portals[0].journal.entries("event_queued")
    assert [(e["name"], e["bot_id"], e["chat_id"]) for e in queued] == [
        ("ONIMBOTV2JOINCHAT", bot_id, first["chat_id"]),
        ("ONIMBOTV2MESSAGEADD", bot_id, first["chat_id"]),
    ]
    assert queued[1]["via"] == "client"
    _, page = await _v2(emu, http, "imbot.v2.Event.get", botId=bot_id)
    assert [e["eventId"] for e in page["result"]["events"]] == [e["event_id"] for e in queued]
