"""An independent client agrees with the emulator: the official Bitrix24 Python SDK (`b24pysdk`,
pinned in the `dev` extra), used the way its README shows, registers a fetch-mode v2 bot, reads
its events with `imbot.v2.Event.get`, confirms them by the offset and answers with a keyboard —
and the emulator's journal and state show each effect.

How the SDK is pointed at the emulator: `BitrixWebhook(domain=..., webhook_token="<user>/<code>")`
and `Client(...)`, its public API. The SDK fixes the scheme (`https://{domain}/rest/...`, in
`b24pysdk/api/callers/call_method.py`), so it cannot reach a plain-http emulator; the test puts a
loopback TLS front before it (tests/emulator/_tls.py) and the SDK trusts that front's certificate
through `REQUESTS_CA_BUNDLE`, the ordinary `requests` setting. Nothing in the SDK is patched.

Every call goes through the SDK's typed wrappers (`client.imbot.v2.bot.register`, `.bot.get`,
`.event.get`, `.command.register`, `.chat.message.send`); no generic call was needed. Its
`bot.register` has no `bot_token` argument, so the token travels as `fields.botToken`, which the
docs allow (docs/bitrix24-bots-v2.md, "Owner and token"). The SDK is synchronous (`requests`), so
its calls run in a thread while the emulator serves on the test's loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from b24pysdk import BitrixWebhook, Client
from b24pysdk.errors import BitrixAPIBadRequest

from emulator.server import RunningEmulator
from tests.emulator._platform import control
from tests.emulator._tls import self_signed_cert, tls_front
from tests.emulator._v2 import TOKEN

T = TypeVar("T")

KEYBOARD = [
    {"TEXT": "Track my order", "COMMAND": "track", "COMMAND_PARAMS": "42", "BG_COLOR": "#29619b"},
    {"TYPE": "NEWLINE"},
    {"TEXT": "Open the help page", "LINK": "https://example.test/help"},
]


@pytest.fixture
async def sdk(
    emu: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    """A b24pysdk client over the emulator's seeded inbound webhook, through the TLS front."""
    cert, key = self_signed_cert(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # loopback only, whatever proxy is configured
    hook = emu.portals[0].webhook
    async with tls_front(emu.listen_url, cert, key) as port:
        token = BitrixWebhook(
            domain=f"127.0.0.1:{port}", webhook_token=f"{hook.user_id}/{hook.code}"
        )
        yield Client(token)


async def _run(request: Callable[[], T]) -> T:
    """Run one blocking SDK call off the loop the emulator serves on."""
    return await asyncio.to_thread(request)


async def test_sdk_registers_fetches_confirms_and_sends_a_keyboard(
    emu: RunningEmulator, http: aiohttp.ClientSession, sdk: Any
) -> None:
    runtime = emu.portals[0]
    portal, journal = runtime.portal, runtime.journal

    # 1. Bot.register: a fetch-mode open-line bot owned by "custom" + token.
    registered = await _run(
        lambda: (
            sdk.imbot.v2.bot.register(
                fields={
                    "code": "sdk_ol_bot",
                    "type": "openline",
                    "eventMode": "fetch",
                    "botToken": TOKEN,
                    "properties": {"name": "SDK Assistant"},
                }
            ).response
        )
    )
    bot = registered.result["bot"]
    bot_id = int(bot["id"])
    assert bot["code"] == "sdk_ol_bot"
    assert registered.time.duration >= 0  # the SDK parsed the time block strictly
    [entry] = journal.entries("bot_registered")[-1:]
    assert (entry["bot_id"], entry["code"], entry["api"]) == (bot_id, "sdk_ol_bot", "v2")
    assert entry["app_id"] == "custom" + TOKEN
    assert portal.bots[bot_id].app_id == "custom" + TOKEN

    seen = await _run(lambda: sdk.imbot.v2.bot.get(bot_id=bot_id, bot_token=TOKEN).result)
    assert seen["bot"]["id"] == bot_id
    assert seen["bot"]["eventMode"] == "fetch"

    # 2. A client writes to line 1, whose welcome bot is the SDK's bot: rows are queued.
    portal.lines[1].welcome_bot_id = bot_id
    status, first = await control(
        http, emu.url, "client-message", {"line_id": 1, "text": "Where is my order?"}
    )
    assert status == 200, first
    queued = [e for e in journal.entries("event_queued") if e["bot_id"] == bot_id]
    assert [e["name"] for e in queued] == ["ONIMBOTV2JOINCHAT", "ONIMBOTV2MESSAGEADD"]

    # 3. Event.get reads them in id order; nothing is deleted by a read without offset.
    page = await _run(lambda: sdk.imbot.v2.event.get(bot_id, bot_token=TOKEN).result)
    events = page["events"]
    assert [e["type"] for e in events] == ["ONIMBOTV2JOINCHAT", "ONIMBOTV2MESSAGEADD"]
    assert [e["eventId"] for e in events] == [e["event_id"] for e in queued]
    add = events[1]["data"]
    assert add["message"]["text"] == "Where is my order?"
    assert add["chat"]["entityType"] == "LINES"
    chat_id = add["chat"]["id"]
    assert chat_id == first["chat_id"]
    assert page["hasMore"] is False
    assert page["nextOffset"] == queued[-1]["event_id"] + 1
    assert [r.id for r in portal.fetch_queue.pending(bot_id)] == [e["event_id"] for e in queued]

    # 4. Command.register, then Chat.Message.send with a keyboard whose button sends it.
    registered_command = await _run(
        lambda: (
            sdk.imbot.v2.command.register(
                bot_id, {"command": "track", "title": {"en": "Track"}}, bot_token=TOKEN
            ).result
        )
    )
    assert registered_command["command"]["command"] == "/track"
    sent = await _run(
        lambda: (
            sdk.imbot.v2.chat.message.send(
                bot_id,
                f"chat{chat_id}",
                {"message": "Choose, please:", "keyboard": KEYBOARD},
                bot_token=TOKEN,
            ).result
        )
    )
    message_id = int(sent["id"])
    stored = portal.messages[message_id]
    assert (stored.chat_id, stored.author_id, stored.text) == (chat_id, bot_id, "Choose, please:")
    buttons = stored.params["KEYBOARD"]
    assert [b.get("TEXT") for b in buttons] == ["Track my order", None, "Open the help page"]
    assert (buttons[0]["COMMAND"], buttons[0]["BOT_ID"]) == ("track", bot_id)
    assert buttons[1] == {"TYPE": "NEWLINE"}
    said = [e for e in journal.entries("message") if e["message_id"] == message_id]
    assert len(said) == 1
    assert (said[0]["via"], said[0]["author"], said[0]["bot_id"]) == (
        "imbot.v2.chat.message.send",
        "bot",
        bot_id,
    )
    assert said[0]["to_client"] is True  # a LINES chat: the bot's answer reaches the client

    # 5. The client clicks the button; the next read confirms the first two rows by the offset,
    # which deletes them, and brings only the click.
    status, click = await control(
        http,
        emu.url,
        "client-command",
        {"chat_id": chat_id, "message_id": message_id, "command": "track"},
    )
    assert status == 200, click
    assert click["bot_id"] == bot_id
    offset = page["nextOffset"]
    after = await _run(
        lambda: sdk.imbot.v2.event.get(bot_id, bot_token=TOKEN, offset=offset).result
    )
    [clicked] = after["events"]
    assert clicked["type"] == "ONIMBOTV2COMMANDADD"
    assert clicked["eventId"] >= offset
    command = clicked["data"]["command"]
    assert (command["command"], command["params"], command["context"]) == (
        "/track",
        "42",
        "keyboard",
    )
    assert [r.id for r in portal.fetch_queue.pending(bot_id)] == [clicked["eventId"]]

    # 6. Confirming the click leaves the bot's log empty, and the next read is empty too.
    last = after["nextOffset"]
    assert last == clicked["eventId"] + 1
    empty = await _run(lambda: sdk.imbot.v2.event.get(bot_id, bot_token=TOKEN, offset=last).result)
    assert (empty["events"], empty["nextOffset"], empty["hasMore"]) == ([], last, False)
    assert portal.fetch_queue.pending(bot_id) == []


async def test_a_business_error_reaches_the_sdk_as_its_400_error(
    emu: RunningEmulator, sdk: Any
) -> None:
    """The emulator's v2 error envelope (HTTP 400, `error`, `error_description`) is one the SDK
    turns into its typed exception with the portal's code: a bot of another owner."""
    fields = {"code": "sdk_bot", "botToken": TOKEN, "properties": {"name": "SDK"}}
    bot_id = (await _run(lambda: sdk.imbot.v2.bot.register(fields=fields).result))["bot"]["id"]
    with pytest.raises(BitrixAPIBadRequest) as err:
        await _run(lambda: sdk.imbot.v2.event.get(bot_id, bot_token="someone-else").result)
    assert (err.value.status_code, err.value.error) == (400, "BOT_OWNERSHIP_ERROR")
    assert emu.portals[0].portal.bots[bot_id].app_id == "custom" + TOKEN
