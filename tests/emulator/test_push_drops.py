"""Lost pushes: the portal never retries an event POST (docs api-reference/events/index.md), so
a push its queue loses is gone. The push-drop plan plays that: a dropped push reaches no
handler, is journaled `event_dropped` and never `event_posted`, and leaves offline rows alone."""

from __future__ import annotations

from typing import Any

import aiohttp

from emulator.server import RunningEmulator
from tests.emulator._offline import (
    client_writes,
    close_dialog,
    control,
    emulator_and_receiver,
    journal,
    ok,
)


async def _drops(
    http: aiohttp.ClientSession, emu: RunningEmulator, body: dict[str, Any], verb: str = "POST"
) -> tuple[int, Any]:
    async with http.request(verb, f"{emu.url}/_emulator/push-drops", json=body) as resp:
        return resp.status, await resp.json()


def _posted(emu: RunningEmulator, name: str) -> list[dict[str, Any]]:
    return [e for e in journal(emu, "event_posted") if e["name"] == name]


async def test_a_dropped_session_finish_is_journaled_as_dropped_and_never_arrives() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, receiver):
        status, body = await _drops(http, emu, {"next": {"OnSessionFinish": 1}})
        assert status == 200
        assert body["push_drops"]["next"] == {"ONSESSIONFINISH": 1}
        opened = await client_writes(http, emu)
        await close_dialog(http, emu, opened["chat_id"])
        await emu.settle()
        assert receiver.events("ONSESSIONFINISH") == []
        assert _posted(emu, "ONSESSIONFINISH") == []
        [dropped] = journal(emu, "event_dropped")
        assert dropped["name"] == "ONSESSIONFINISH"
        assert dropped["chat_id"] == opened["chat_id"]
        assert dropped["url"] == receiver.url
        assert dropped["reason"] == "next"
        assert dropped["dedup"].startswith("ONSESSIONFINISH:")
        # Other events of the same dialog went out as usual.
        assert len(receiver.events("ONSESSIONSTART")) == 1
        # The count is used up: the next dialog's finish arrives.
        again = await client_writes(http, emu, "again", user_code="livechat|1|78|89")
        await close_dialog(http, emu, again["chat_id"])
        await emu.settle()
        assert len(receiver.events("ONSESSIONFINISH")) == 1
        assert len(_posted(emu, "ONSESSIONFINISH")) == 1
        status, body = await _drops(http, emu, {}, "GET")
        assert body["push_drops"]["next"] == {"ONSESSIONFINISH": 0}


async def test_offline_rows_are_written_while_every_push_is_dropped() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, receiver):
        await ok(http, emu, "event.bind", {"event": "OnSessionStart", "event_type": "offline"})
        await ok(http, emu, "event.bind", {"event": "onOfflineEvent", "handler": receiver.url})
        await _drops(http, emu, {"rate": {"*": 1}})
        before = len(receiver.bodies)
        await client_writes(http, emu)
        await emu.settle()
        assert len(receiver.bodies) == before  # nothing POSTed, not even onOfflineEvent
        dropped = {e["name"] for e in journal(emu, "event_dropped")}
        assert {"ONSESSIONSTART", "ONOFFLINEEVENT", "ONOPENLINEMESSAGEADD"} <= dropped
        assert all(e["reason"] == "rate" for e in journal(emu, "event_dropped"))
        rows = list(await ok(http, emu, "event.offline.list"))
        assert [r["EVENT_NAME"] for r in rows] == ["ONSESSIONSTART"]
        status, _ = await _drops(http, emu, {}, "DELETE")
        assert status == 200
        await client_writes(http, emu, "now it arrives", user_code="livechat|1|79|90")
        await emu.settle()
        assert len(receiver.events("ONSESSIONSTART")) == 1


async def test_a_seeded_rate_replays_the_same_drops() -> None:
    async def run() -> list[int]:
        async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
            await _drops(http, emu, {"rate": {"ONOPENLINEMESSAGEADD": 0.5}, "seed": 7})
            for i in range(12):
                await client_writes(http, emu, f"m{i}")
            await emu.settle()
            dropped = journal(emu, "event_dropped")
            assert {e["name"] for e in dropped} == {"ONOPENLINEMESSAGEADD"}
            return [e["seq"] for e in dropped]

    first = await run()
    assert 0 < len(first) < 13
    assert await run() == first


async def test_a_bad_plan_is_refused() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        for body in ({"rate": {"*": 1.5}}, {"next": {"X": -1}}, {"drop": {}}, {"seed": "x"}):
            status, answer = await _drops(http, emu, body)
            assert (status, answer["error"]) == (400, "BAD_REQUEST"), body
        await control(http, emu, "push-drops", {"rate": {"*": 0}})
