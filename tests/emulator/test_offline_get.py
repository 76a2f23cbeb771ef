"""`event.offline.get|clear|error|list` as the server code states them
(rest/lib/api/event.php, rest/lib/eventoffline.php): reserve (clear=0) and take (clear=1),
re-reading by process_id, confirming with clear, error rows, paging, the licence and access
checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from emulator.server import RunningEmulator
from tests.emulator._offline import (
    USER_CODE,
    client_writes,
    close_dialog,
    control,
    emulator_and_receiver,
    journal,
    ok,
    rest,
    token_of,
)

BIND = {"event": "OnOpenLineMessageAdd", "event_type": "offline"}


@asynccontextmanager
async def queue_of(
    messages: int, **config: Any
) -> AsyncIterator[tuple[aiohttp.ClientSession, RunningEmulator]]:
    """An emulator whose app has `messages` OnOpenLineMessageAdd rows queued (distinct texts,
    so distinct MESSAGE_IDs), one second apart."""
    async with aiohttp.ClientSession() as http, emulator_and_receiver(**config) as (emu, _):
        await ok(http, emu, "event.bind", BIND)
        for i in range(messages):
            await client_writes(http, emu, f"message {i}")
            await control(http, emu, "advance-time", {"seconds": 1})
        yield http, emu


def _texts(events: list[dict[str, Any]]) -> list[str]:
    return [e["EVENT_DATA"]["DATA"]["message"]["text"] for e in events]


async def _list(http: aiohttp.ClientSession, emu: RunningEmulator) -> list[dict[str, Any]]:
    return list(await ok(http, emu, "event.offline.list"))


async def test_clear_1_takes_the_rows_once_and_returns_no_process_id() -> None:
    async with queue_of(3) as (http, emu):
        taken = await ok(http, emu, "event.offline.get", {"limit": 2})
        assert taken["process_id"] is None
        assert _texts(taken["events"]) == ["message 0", "message 1"]
        event = taken["events"][0]
        assert set(event) == {
            "ID",
            "TIMESTAMP_X",
            "EVENT_NAME",
            "EVENT_DATA",
            "EVENT_ADDITIONAL",
            "MESSAGE_ID",
        }
        assert len(event["MESSAGE_ID"]) == 32
        assert event["EVENT_NAME"] == "ONOPENLINEMESSAGEADD"
        assert event["EVENT_ADDITIONAL"] == {"user_id": "0"}  # a channel's message: no user
        assert "T" in event["TIMESTAMP_X"]
        assert event["TIMESTAMP_X"][-6] in "+-"
        rest_of = await ok(http, emu, "event.offline.get")
        assert _texts(rest_of["events"]) == ["message 2"]
        assert (await ok(http, emu, "event.offline.get"))["events"] == []
        [cleared, _] = [e for e in journal(emu, "offline_cleared") if e["reason"] == "get"]
        assert len(cleared["row_ids"]) == 2


async def test_clear_0_reserves_disjoint_batches_until_cleared() -> None:
    async with queue_of(3) as (http, emu):
        first = await ok(http, emu, "event.offline.get", {"clear": 0, "limit": 2})
        second = await ok(http, emu, "event.offline.get", {"clear": 0, "limit": 2})
        assert len(first["process_id"]) == 32
        assert len(second["process_id"]) == 32
        assert first["process_id"] != second["process_id"]
        assert _texts(first["events"]) == ["message 0", "message 1"]
        assert _texts(second["events"]) == ["message 2"]
        # A crashed consumer re-reads its batch by process_id; nothing new is reserved.
        again = await ok(
            http, emu, "event.offline.get", {"clear": 0, "process_id": first["process_id"]}
        )
        assert again["process_id"] == first["process_id"]
        assert _texts(again["events"]) == ["message 0", "message 1"]
        rows = await _list(http, emu)
        assert [r["PROCESS_ID"] for r in rows] == [first["process_id"]] * 2 + [second["process_id"]]
        assert await ok(http, emu, "event.offline.clear", {"process_id": first["process_id"]})
        assert _texts(list(await _list(http, emu))) == ["message 2"]
        assert [e["kind"] for e in journal(emu, "offline_reserved")] == ["offline_reserved"] * 2


async def test_clear_1_with_a_process_id_deletes_that_whole_batch() -> None:
    async with queue_of(3) as (http, emu):
        batch = await ok(http, emu, "event.offline.get", {"clear": 0})
        taken = await ok(
            http, emu, "event.offline.get", {"process_id": batch["process_id"], "limit": 1}
        )
        assert taken["process_id"] == batch["process_id"]  # echoed when given
        assert _texts(taken["events"]) == ["message 0"]
        assert await _list(http, emu) == []  # every row of the process, not only the one read


async def test_reserving_needs_the_extended_licence_but_taking_a_batch_does_not() -> None:
    async with queue_of(2) as (http, emu):
        batch = await ok(http, emu, "event.offline.get", {"clear": 0})
        await control(http, emu, "features", {"values": {"rest_offline_extended": "N"}})
        status, body = await rest(http, emu, "event.offline.get", {"clear": 0})
        assert (status, body["error"]) == (403, "WRONG_LICENSE")
        assert body["error_description"].endswith("extended offline events handling")
        assert await ok(http, emu, "feature.get", {"CODE": "rest_offline_extended"}) == {
            "value": "N"
        }
        taken = await ok(http, emu, "event.offline.get", {"process_id": batch["process_id"]})
        assert len(taken["events"]) == 2
        assert await _list(http, emu) == []
        await client_writes(http, emu, "later")
        plain = await ok(http, emu, "event.offline.get")  # clear=1 never needs the licence
        assert _texts(plain["events"]) == ["later"]


async def test_limit_filter_and_order() -> None:
    async with queue_of(3) as (http, emu):
        status, body = await rest(http, emu, "event.offline.get", {"limit": 0})
        assert (status, body["error"], body["argument"]) == (400, "ERROR_ARGUMENT", "LIMIT")
        status, body = await rest(http, emu, "event.offline.get", {"filter": {"PROCESS_ID": ""}})
        assert (status, body["error"]) == (400, "ERROR_ARGUMENT")
        rows = await _list(http, emu)
        newest = await ok(
            http, emu, "event.offline.get", {"clear": 0, "order": {"ID": "DESC"}, "limit": 1}
        )
        assert _texts(newest["events"]) == ["message 2"]
        await ok(http, emu, "event.offline.clear", {"process_id": newest["process_id"]})
        picked = await ok(
            http,
            emu,
            "event.offline.get",
            {"clear": 0, "filter": {"=MESSAGE_ID": rows[1]["MESSAGE_ID"]}},
        )
        assert _texts(picked["events"]) == ["message 1"]
        later = await ok(
            http,
            emu,
            "event.offline.get",
            {"clear": 0, "filter": {">TIMESTAMP_X": rows[0]["TIMESTAMP_X"]}},
        )
        assert later["events"] == []  # message 1 is reserved, message 2 is gone
        by_name = await ok(
            http, emu, "event.offline.get", {"filter": {"=EVENT_NAME": "ONSESSIONFINISH"}}
        )
        assert by_name["events"] == []


async def test_clear_by_id_or_message_id_and_its_errors() -> None:
    async with queue_of(3) as (http, emu):
        batch = await ok(http, emu, "event.offline.get", {"clear": 0})
        pid = batch["process_id"]
        ids = [int(e["ID"]) for e in batch["events"]]
        mids = [e["MESSAGE_ID"] for e in batch["events"]]
        status, body = await rest(http, emu, "event.offline.clear", {})
        assert (status, body["error"], body["argument"]) == (400, "ERROR_ARGUMENT", "PROCESS_ID")
        status, body = await rest(
            http, emu, "event.offline.clear", {"process_id": pid, "message_id": ["short"]}
        )
        assert (status, body["error"], body["argument"]) == (400, "ERROR_ARGUMENT", "messsage_id")
        status, body = await rest(http, emu, "event.offline.clear", {"process_id": pid, "id": [0]})
        assert (status, body["argument"]) == (400, "id")
        # message_id wins over id.
        await ok(
            http,
            emu,
            "event.offline.clear",
            {"process_id": pid, "message_id": [mids[0]], "id": [ids[1]]},
        )
        assert [int(r["ID"]) for r in await _list(http, emu)] == ids[1:]
        await ok(http, emu, "event.offline.clear", {"process_id": pid, "id": [ids[2]]})
        assert [int(r["ID"]) for r in await _list(http, emu)] == [ids[1]]
        # Another process's id, or an unknown one: true, nothing deleted.
        assert await ok(http, emu, "event.offline.clear", {"process_id": "x" * 32}) is True
        assert len(await _list(http, emu)) == 1


async def test_error_frees_the_row_as_an_error_row_and_drops_every_other_copy() -> None:
    """event.offline.error: this process's row becomes a free ERROR=1 row (only error=1 reads
    it); every other non-error row of that MESSAGE_ID goes, reserved by others or free."""
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        await ok(http, emu, "event.bind", {"event": "OnSessionStart", "event_type": "offline"})
        opened = await client_writes(http, emu)
        mine = await ok(http, emu, "event.offline.get", {"clear": 0})
        await close_dialog(http, emu, opened["chat_id"])
        await client_writes(http, emu, "again")  # same object: a second, free row
        theirs = await ok(http, emu, "event.offline.get", {"clear": 0})
        await close_dialog(http, emu, opened["chat_id"])
        await client_writes(http, emu, "third")  # and a third, free
        mid = mine["events"][0]["MESSAGE_ID"]
        assert theirs["events"][0]["MESSAGE_ID"] == mid
        assert len(await _list(http, emu)) == 3
        status, body = await rest(
            http, emu, "event.offline.error", {"process_id": mine["process_id"]}
        )
        assert (status, body["argument"]) == (400, "message_id")
        assert await ok(
            http,
            emu,
            "event.offline.error",
            {"process_id": mine["process_id"], "message_id": [mid]},
        )
        [row] = await _list(http, emu)
        assert (row["ID"], row["PROCESS_ID"], row["ERROR"]) == (mine["events"][0]["ID"], "", "1")
        assert (await ok(http, emu, "event.offline.get"))["events"] == []
        errors = await ok(http, emu, "event.offline.get", {"error": 1, "clear": 0})
        assert [e["ID"] for e in errors["events"]] == [row["ID"]]
        assert journal(emu, "offline_error")[0]["row_ids"] == [int(row["ID"])]


async def test_list_pages_by_50_and_sees_only_its_connector() -> None:
    async with queue_of(0) as (http, emu):
        await ok(http, emu, "event.bind", BIND, connector="X")
        for i in range(55):
            await client_writes(http, emu, f"m{i}", user_code=USER_CODE)
        status, body = await rest(http, emu, "event.offline.list")
        assert (status, len(body["result"]), body["total"], body["next"]) == (200, 50, 55, 50)
        status, body = await rest(http, emu, "event.offline.list", {"start": 50})
        assert (len(body["result"]), body["total"], "next" in body) == (5, 55, False)
        status, body = await rest(http, emu, "event.offline.list", connector="X")
        assert body["total"] == 55
        x_rows = await ok(http, emu, "event.offline.get", {"clear": 0, "limit": 3}, connector="X")
        assert len(x_rows["events"]) == 3
        status, body = await rest(http, emu, "event.offline.list")
        assert all(r["PROCESS_ID"] == "" for r in body["result"])  # the "" queue is untouched


async def test_admin_and_app_auth_only() -> None:
    async with queue_of(1) as (http, emu):
        operator = token_of(emu, 2)
        for name in (
            "event.offline.get",
            "event.offline.list",
            "event.offline.clear",
            "event.offline.error",
        ):
            status, body = await rest(http, emu, name, {"process_id": "p"}, token=operator)
            assert (status, body["error"]) == (403, "ACCESS_DENIED"), name
            hook = emu.credentials["webhook_url"]
            async with http.post(f"{hook}{name}", json={"process_id": "p"}) as resp:
                assert resp.status == 403
                assert (await resp.json())["error"] == "WRONG_AUTH_TYPE"
        assert len(await _list(http, emu)) == 1
