"""Offline events: binding (`event.bind event_type=offline`), what gets written to the app's
queue, the upsert by MESSAGE_ID, self-suppression, the retention purge and the journal —
each rule as the portal's server code states it (rest/lib/api/event.php,
rest/lib/eventoffline.php, rest/lib/event/provideroffline.php)."""

from __future__ import annotations

import hashlib
import json

import aiohttp

from tests.emulator._offline import (
    client_writes,
    close_dialog,
    control,
    emulator_and_receiver,
    journal,
    ok,
    rest,
    token_of,
)

DAY = 86_400


async def _rows(http: aiohttp.ClientSession, emu: object, connector: str | None = None) -> list:
    result = await ok(http, emu, "event.offline.list", {}, connector=connector)  # type: ignore[arg-type]
    return list(result)


async def test_offline_binding_writes_rows_and_online_handlers_still_get_posts() -> None:
    """An offline binding queues OnSessionStart and OnOpenLineMessageAdd for the app; the app's
    online bindings of the same events still get their POSTs (each binding on its own)."""
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, receiver):
        for event in ("OnSessionStart", "OnOpenLineMessageAdd", "OnSessionFinish"):
            assert await ok(http, emu, "event.bind", {"event": event, "event_type": "offline"})
        opened = await client_writes(http, emu)
        await emu.settle()
        rows = await _rows(http, emu)
        assert [r["EVENT_NAME"] for r in rows] == ["ONSESSIONSTART", "ONOPENLINEMESSAGEADD"]
        assert all(r["PROCESS_ID"] == "" and r["ERROR"] == "0" for r in rows)
        assert rows[0]["EVENT_DATA"]["DATA"]["chat"]["chat_id"] == str(opened["chat_id"])
        assert len(receiver.events("ONSESSIONSTART")) == 1  # the online binding too
        await close_dialog(http, emu, opened["chat_id"])
        names = [r["EVENT_NAME"] for r in await _rows(http, emu)]
        assert "ONSESSIONFINISH" in names


async def test_event_get_lists_offline_bindings_and_unbind_removes_them() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        await ok(http, emu, "event.bind", {"event": "OnSessionFinish", "event_type": "offline"})
        await ok(
            http,
            emu,
            "event.bind",
            {"event": "OnSessionFinish", "event_type": "offline"},
            connector="ol-orchestrator",
        )
        listed = await ok(http, emu, "event.get")
        offline = [b for b in listed if b["offline"] == 1]
        assert offline == [
            {"event": "ONSESSIONFINISH", "connector_id": "", "offline": 1},
            {"event": "ONSESSIONFINISH", "connector_id": "ol-orchestrator", "offline": 1},
        ]
        # A duplicate of the same app, event and connector is refused.
        status, body = await rest(
            http, emu, "event.bind", {"event": "ONSESSIONFINISH", "event_type": "offline"}
        )
        assert (status, body["error"]) == (400, "ERROR_CORE")
        unbound = await ok(
            http,
            emu,
            "event.unbind",
            {"event": "OnSessionFinish", "event_type": "offline"},
            connector="ol-orchestrator",
        )
        assert unbound == {"count": 1}
        left = [b for b in await ok(http, emu, "event.get") if b["offline"] == 1]
        assert left == [{"event": "ONSESSIONFINISH", "connector_id": "", "offline": 1}]


async def test_offline_bind_rules() -> None:
    """Admin only; onOfflineEvent cannot be offline; a bad event_type names EVENT_TYPE."""
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        params = {"event": "OnSessionStart", "event_type": "offline"}
        status, body = await rest(http, emu, "event.bind", params, token=token_of(emu, 2))
        assert (status, body["error"]) == (403, "ACCESS_DENIED")
        assert "administrator" in body["error_description"]
        status, body = await rest(
            http, emu, "event.bind", {"event": "onOfflineEvent", "event_type": "offline"}
        )
        assert (status, body["error"]) == (400, "ERROR_ARGUMENT")
        status, body = await rest(
            http, emu, "event.bind", {"event": "OnSessionStart", "event_type": "later"}
        )
        assert (status, body["error"], body["argument"]) == (400, "ERROR_ARGUMENT", "EVENT_TYPE")
        status, body = await rest(
            http, emu, "event.bind", {"event": "OnNoSuchThing", "event_type": "offline"}
        )
        assert (status, body["error"]) == (400, "ERROR_EVENT_NOT_FOUND")


async def test_same_event_for_same_object_collapses_into_one_row() -> None:
    """MESSAGE_ID = md5(EVENT_NAME|json(data)); a repeat refreshes the free row's TIMESTAMP_X
    instead of adding one. OnSessionStart of the same chat carries the same data each time."""
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        await ok(http, emu, "event.bind", {"event": "OnSessionStart", "event_type": "offline"})
        opened = await client_writes(http, emu)
        [first] = await _rows(http, emu)
        data = first["EVENT_DATA"]
        php = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        assert first["MESSAGE_ID"] == hashlib.md5(f"ONSESSIONSTART|{php}".encode()).hexdigest()
        await close_dialog(http, emu, opened["chat_id"])
        await control(http, emu, "advance-time", {"seconds": 120})
        again = await client_writes(http, emu, "Me again")
        assert again["session_id"] != opened["session_id"]
        rows = await _rows(http, emu)
        assert len(rows) == 1
        assert rows[0]["ID"] == first["ID"]
        assert rows[0]["TIMESTAMP_X"] > first["TIMESTAMP_X"]
        queued = journal(emu, "offline_queued")
        assert [e["new"] for e in queued] == [True, False]
        assert {e["row_id"] for e in queued} == {int(first["ID"])}


async def test_a_repeat_while_the_row_is_reserved_makes_a_second_free_row() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        await ok(http, emu, "event.bind", {"event": "OnSessionStart", "event_type": "offline"})
        opened = await client_writes(http, emu)
        reserved = await ok(http, emu, "event.offline.get", {"clear": 0})
        assert len(reserved["events"]) == 1
        await close_dialog(http, emu, opened["chat_id"])
        await client_writes(http, emu, "Me again")
        rows = await _rows(http, emu)
        assert [r["PROCESS_ID"] for r in rows] == [reserved["process_id"], ""]
        assert rows[0]["MESSAGE_ID"] == rows[1]["MESSAGE_ID"]


async def test_changes_by_the_app_itself_are_suppressed_per_connector() -> None:
    """A change the bound app makes through REST with the binding's own auth_connector (both
    empty counts) is not written; without that connector it is written to the connector's
    queue; a control-API change (no REST caller) is always written."""
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        bind = {"event": "OnOpenLineMessageAdd", "event_type": "offline"}
        await ok(http, emu, "event.bind", bind)
        await ok(http, emu, "event.bind", bind, connector="X")
        opened = await client_writes(http, emu)
        assert len(await _rows(http, emu)) == 1  # the client's message, connector ""
        assert len(await _rows(http, emu, "X")) == 1
        bot_id = emu.portals[0].portal.lines[1].welcome_bot_id
        say = {"BOT_ID": bot_id, "DIALOG_ID": f"chat{opened['chat_id']}", "MESSAGE": "Hello"}
        await ok(http, emu, "imbot.message.add", say)  # no connector: "" queue suppressed
        assert len(await _rows(http, emu)) == 1
        assert len(await _rows(http, emu, "X")) == 2
        await ok(http, emu, "imbot.message.add", {**say, "MESSAGE": "More"}, connector="X")
        assert len(await _rows(http, emu)) == 2  # written to "" this time
        assert len(await _rows(http, emu, "X")) == 2  # and suppressed in X


async def test_rows_older_than_thirty_days_are_purged_on_the_portal_clock() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        bind = {"event": "OnOpenLineMessageAdd", "event_type": "offline"}
        await ok(http, emu, "event.bind", bind)
        await client_writes(http, emu, "old")
        await control(http, emu, "advance-time", {"seconds": 29 * DAY})
        await client_writes(http, emu, "new")
        assert len(await _rows(http, emu)) == 2
        await control(http, emu, "advance-time", {"seconds": DAY - 1})
        assert len(await _rows(http, emu)) == 2  # exactly 30 days old: not yet
        await control(http, emu, "advance-time", {"seconds": 2})
        rows = await _rows(http, emu)
        assert [r["EVENT_DATA"]["DATA"]["message"]["text"] for r in rows] == ["new"]
        [purge] = [e for e in journal(emu, "offline_cleared") if e["reason"] == "purge"]
        assert len(purge["row_ids"]) == 1


async def test_the_code_retention_is_a_switch() -> None:
    async with (
        aiohttp.ClientSession() as http,
        emulator_and_receiver(offline_retention_s=2_952_000.0) as (emu, _),
    ):
        await ok(http, emu, "event.bind", {"event": "OnSessionStart", "event_type": "offline"})
        await client_writes(http, emu)
        await control(http, emu, "advance-time", {"seconds": 31 * DAY})
        assert len(await _rows(http, emu)) == 1
        await control(http, emu, "advance-time", {"seconds": 4 * DAY})
        assert await _rows(http, emu) == []
