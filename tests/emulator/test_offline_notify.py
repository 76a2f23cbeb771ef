"""`onOfflineEvent`: the push an app's online handler gets after a request wrote offline rows
for it, suppressed (not delayed) within `minTimeout` seconds of the last one, at most one per
request with `minTimeout: 0` (rest/lib/eventoffline.php `checkSendTime`,
rest/lib/event/provideroffline.php `finalize`)."""

from __future__ import annotations

from typing import Any

import aiohttp

from emulator.server import RunningEmulator
from tests.emulator._offline import Receiver, client_writes, control, emulator_and_receiver, ok

NOTICE = "ONOFFLINEEVENT"


async def _bind(
    http: aiohttp.ClientSession, emu: RunningEmulator, receiver: Receiver, options: Any = None
) -> None:
    await ok(http, emu, "event.bind", {"event": "OnOpenLineMessageAdd", "event_type": "offline"})
    await ok(http, emu, "event.bind", {"event": "OnSessionStart", "event_type": "offline"})
    params: dict[str, Any] = {"event": "onOfflineEvent", "handler": receiver.url}
    if options is not None:
        params["options"] = options
    await ok(http, emu, "event.bind", params)


async def _notices(emu: RunningEmulator, receiver: Receiver) -> list[dict[str, str]]:
    await emu.settle()
    return receiver.events(NOTICE)


async def test_one_notice_per_request_with_tokens_and_refresh_token() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, receiver):
        await _bind(http, emu, receiver)
        await client_writes(http, emu)  # two rows (start + message), one request
        [notice] = await _notices(emu, receiver)
        assert notice["auth[application_token]"] == emu.credentials["application_token"]
        assert notice["auth[access_token]"]
        assert notice["auth[refresh_token]"]
        assert not any(key.startswith("data") for key in notice)  # data is empty
        assert notice["ts"].isdigit()
        assert notice["event_handler_id"].isdigit()
        posted = [e for e in emu.portals[0].journal.entries("event_posted") if e["name"] == NOTICE]
        assert len(posted) == 1
        assert posted[0]["ok"] is True


async def test_default_min_timeout_suppresses_notices_within_one_second() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, receiver):
        await _bind(http, emu, receiver)
        await client_writes(http, emu, "one")
        await client_writes(http, emu, "two")  # same second: suppressed, not delayed
        assert len(await _notices(emu, receiver)) == 1
        await control(http, emu, "advance-time", {"seconds": 0.5})
        assert len(await _notices(emu, receiver)) == 1  # nothing re-sent when time passes
        await control(http, emu, "advance-time", {"seconds": 0.5})
        await client_writes(http, emu, "three")
        assert len(await _notices(emu, receiver)) == 2
        rows = list(await ok(http, emu, "event.offline.list"))
        assert len(rows) == 4  # every row is there, notified or not


async def test_a_longer_min_timeout() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, receiver):
        await _bind(http, emu, receiver, {"minTimeout": 30})
        await client_writes(http, emu, "one")
        await control(http, emu, "advance-time", {"seconds": 29})
        await client_writes(http, emu, "two")
        assert len(await _notices(emu, receiver)) == 1
        await control(http, emu, "advance-time", {"seconds": 1})
        await client_writes(http, emu, "three")
        assert len(await _notices(emu, receiver)) == 2


async def test_min_timeout_zero_is_one_notice_per_request() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, receiver):
        await _bind(http, emu, receiver, {"minTimeout": 0})
        await client_writes(http, emu, "one")  # OnSessionStart + message: one request
        assert len(await _notices(emu, receiver)) == 1
        await client_writes(http, emu, "two")  # the next request, same second: again
        assert len(await _notices(emu, receiver)) == 2


async def test_no_notice_when_nothing_was_written_for_the_app() -> None:
    """A suppressed echo writes no row, so it raises no notice either."""
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, receiver):
        await _bind(http, emu, receiver)
        opened = await client_writes(http, emu)
        await control(http, emu, "advance-time", {"seconds": 5})
        bot_id = emu.portals[0].portal.lines[1].welcome_bot_id
        say = {"BOT_ID": bot_id, "DIALOG_ID": f"chat{opened['chat_id']}", "MESSAGE": "Hello"}
        await ok(http, emu, "imbot.message.add", say)  # the app's own change, same connector
        assert len(await _notices(emu, receiver)) == 1


async def test_min_timeout_zero_allows_one_notice_per_request_across_handlers() -> None:
    """The server keeps the "sent in this request" flag once per request, not per handler:
    two `minTimeout: 0` handlers of the app share it."""
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, receiver):
        await _bind(http, emu, receiver, {"minTimeout": 0})
        second = {"event": "onOfflineEvent", "handler": f"{receiver.url}?second=1"}
        await ok(http, emu, "event.bind", {**second, "options": {"minTimeout": 0}})
        await client_writes(http, emu, "one")
        assert len(await _notices(emu, receiver)) == 1
