"""The offline event consumer against the emulated portal over real HTTP and a real Redis: what
the portal queued while nobody listened reaches the dialog's inbox once and leaves the queue
(judged by the portal's own journal: offline_queued / reserved / cleared / error); a consumer
that dies between storing and confirming is finished by the next holder without duplicates;
poison rows become error rows; an unlicensed portal is read with clear=1 and says so; one lease
holder calls the portal; and the whole loop wakes up on the portal's ONOFFLINEEVENT."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from orchestrator.bitrix import BitrixClient
from orchestrator.bitrix.offline import OfflineApi
from orchestrator.cli import build_parser
from orchestrator.cli.register_bot import run_register
from orchestrator.cli.register_bot_v2 import OFFLINE_EVENTS, ON_OFFLINE_EVENT
from orchestrator.errors import TransportError
from orchestrator.ingress.app import start_ingress
from orchestrator.ingress.portals import Portals
from orchestrator.ingress.pull import OfflineConsumer
from orchestrator.ingress.pull.offline_drain import OFFLINE_EVENT_NAMES, OfflineDrainer
from orchestrator.observe import metrics
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings
from tests.integration.client_support import control, method_counts, oauth_client, oauth_settings

OPERATOR = 2  # a seeded operator of line 1


@dataclass
class App:
    """Our side of one emulated portal: its REST client, registry and settings."""

    client: BitrixClient
    portals: Portals
    store: Store
    redis: aioredis.Redis
    settings: Settings
    member_id: str

    def consumer(self, holder: str = "a", **kw: Any) -> OfflineConsumer:
        options: dict[str, Any] = {"poll_s": 30.0, "batch_limit": 10, "lease_ttl_ms": 60_000}
        return OfflineConsumer(
            self.client, self.store, self.portals, holder=holder, **{**options, **kw}
        )

    async def inbox(self, chat_id: int) -> list[dict[str, Any]]:
        """The dialog's queued events (name, dedup id, input kinds), oldest first."""
        key = Keys(self.settings.key_prefix).dialog(self.member_id, str(chat_id)).inbox
        entries = [
            json.loads(raw.decode().partition("|")[2])
            for raw in await self.redis.lrange(key, 0, -1)
        ]
        return [
            {"name": e["name"], "id": e["id"], "inputs": [k for k, _ in e["payload"]["inputs"]]}
            for e in entries
        ]


@pytest.fixture
async def app(settings: Settings, redis: aioredis.Redis, emulator: Any) -> AsyncIterator[App]:
    """The emulator's OAuth app registered with us, its Open Lines events bound offline (as
    `register-bot --api v2` binds them) and its portal flagged for the consumer."""
    creds = emulator.credentials
    member = creds["member_id"]
    client = await oauth_client(settings, creds)
    portals = Portals(redis, Keys(settings.key_prefix))
    await portals.register(member, creds["domain"], creds["application_token"], source="test")
    api = client.api(member)
    for event in OFFLINE_EVENTS:
        assert await api.event_bind(event, event_type="offline")
    assert await portals.mark_offline_events(member)
    yield App(client, portals, Store(redis, settings), redis, settings, member)
    await client.close()


async def _open(emulator: Any, code: str) -> int:
    opened = await control(
        emulator.url, "POST", "client-message", {"line_id": 1, "text": "hello", "user_code": code}
    )
    return int(opened["chat_id"])


async def _close(emulator: Any, chat_id: int) -> None:
    """An operator takes and finishes the dialog; the client's vote closes the session."""
    for route, body in (
        ("operator-answer", {"chat_id": chat_id, "user_id": OPERATOR}),
        ("operator-finish", {"chat_id": chat_id, "user_id": OPERATOR}),
        ("client-vote", {"chat_id": chat_id, "vote": "like"}),
    ):
        await control(emulator.url, "POST", route, body)


async def _queue(emulator: Any) -> list[dict[str, Any]]:
    """The portal's offline queue as its control API shows it."""
    return list((await control(emulator.url, "GET", "offline-queue"))["rows"])


def _journal(emulator: Any, kind: str) -> list[dict[str, Any]]:
    return list(emulator.portals[0].journal.entries(kind))


def test_the_consumer_takes_the_events_register_bot_binds() -> None:
    assert frozenset(OFFLINE_EVENTS) == OFFLINE_EVENT_NAMES


async def test_a_finish_queued_while_nobody_listens_reaches_its_dialog_once(
    app: App, emulator: Any
) -> None:
    chat = await _open(emulator, "livechat|1|11|101")
    await _close(emulator, chat)
    queued = await _queue(emulator)
    assert "ONSESSIONFINISH" in [r["EVENT_NAME"] for r in queued]
    consumer = app.consumer()

    report = await consumer.drain(app.member_id)
    assert (report.held, report.mode, report.poison) == (True, "extended", 0)
    assert report.rows == report.ingested == len(queued)
    inbox = await app.inbox(chat)
    assert [e["name"] for e in inbox].count("ONSESSIONFINISH") == 1
    assert ["session_finished"] in [e["inputs"] for e in inbox]
    # The portal's records: one batch reserved, stored; its confirm is owed to the next read.
    [reserved] = _journal(emulator, "offline_reserved")
    assert {r["PROCESS_ID"] for r in await _queue(emulator)} == {reserved["process_id"]}
    cursor = await consumer.drainer.lease(app.member_id).cursor()
    assert cursor == {"process_id": "", "confirm": reserved["process_id"]}
    assert report.owed == 1

    requests = await _requests(emulator)
    again = await consumer.drain(app.member_id)
    assert (again.held, again.rows, again.owed) == (True, 0, 0)
    assert await app.inbox(chat) == inbox
    # exactly those rows confirmed, in the one request that also read the queue: nothing left
    [cleared] = _journal(emulator, "offline_cleared")
    assert (cleared["reason"], cleared["process_id"]) == ("clear", reserved["process_id"])
    assert sorted(cleared["row_ids"]) == sorted(int(r["ID"]) for r in queued)
    assert await _requests(emulator) == requests + 1
    assert await _queue(emulator) == []
    assert await consumer.drainer.lease(app.member_id).cursor() == {
        "process_id": "",
        "confirm": "",
    }


async def _requests(emulator: Any) -> int:
    """Requests the portal served (a batch counts once, as its limiter counts it)."""
    return int((await control(emulator.url, "GET", "counters"))["requests"])


class _Died(Exception):
    """The consumer process stopping dead (kill -9) at that point."""


async def test_a_batch_stored_but_not_confirmed_is_finished_by_the_next_holder(
    app: App, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = await _open(emulator, "livechat|1|12|102")
    await _close(emulator, chat)
    queued = await _queue(emulator)
    store_batch = OfflineDrainer._store_batch

    async def store_then_die(self: OfflineDrainer, *args: Any) -> None:
        await store_batch(self, *args)
        raise _Died  # every row stored, the cursor not yet told

    first = app.consumer("first", lease_ttl_ms=300)
    monkeypatch.setattr(OfflineDrainer, "_store_batch", store_then_die)
    with pytest.raises(_Died):
        await first.drain(app.member_id)
    monkeypatch.undo()
    process_id = (await first.drainer.lease(app.member_id).cursor())["process_id"]
    assert {r["PROCESS_ID"] for r in await _queue(emulator)} == {process_id}  # still reserved
    stored = await app.inbox(chat)
    assert len(stored) == len(queued)

    await asyncio.sleep(0.4)  # the dead holder's lease lapses
    second = app.consumer("second")
    report = await second.drain(app.member_id)
    assert (report.held, report.resumed, report.ingested, report.owed) == (True, 1, 0, 0)
    assert report.duplicates == len(queued)
    assert await app.inbox(chat) == stored  # no input twice
    assert len(_journal(emulator, "offline_reserved")) == 1  # re-read, not reserved anew
    [cleared] = _journal(emulator, "offline_cleared")  # with the read that found nothing more
    assert (cleared["process_id"], cleared["reason"]) == (process_id, "clear")
    assert await _queue(emulator) == []
    assert await second.drainer.lease(app.member_id).cursor() == {"process_id": "", "confirm": ""}


async def test_a_confirm_lost_on_the_way_is_owed_again(
    app: App, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request carrying a confirm fails: the confirm stays owed and goes with the next."""
    chat = await _open(emulator, "livechat|1|17|107")
    await _close(emulator, chat)
    consumer = app.consumer()
    assert (await consumer.drain(app.member_id)).owed == 1
    [reserved] = _journal(emulator, "offline_reserved")

    async def lost(*_: Any, **__: Any) -> bool:
        raise TransportError("connection reset")

    monkeypatch.setattr(OfflineApi, "clear", lost)
    with capture_logs() as logs:
        assert (await consumer.drain(app.member_id)).owed == 1
    monkeypatch.undo()
    [warned] = [e for e in logs if e["event"] == "offline_clear_failed"]
    assert (warned["process_id"], warned["owed_again"]) == (reserved["process_id"], True)
    assert _journal(emulator, "offline_cleared") == []

    assert (await consumer.drain(app.member_id)).owed == 0
    [cleared] = _journal(emulator, "offline_cleared")
    assert cleared["process_id"] == reserved["process_id"]
    assert await _queue(emulator) == []


async def test_a_sweep_finishes_a_batch_whose_reservation_nobody_knows(
    app: App, emulator: Any
) -> None:
    """A read reserved rows but its answer never reached the cursor (lost on the way, or the
    reader died first): a plain drain does not see them; the sweep's drain lists the reserved
    rows, re-reads that batch by its process id, stores it and confirms it."""
    chat = await _open(emulator, "livechat|1|18|108")
    await _close(emulator, chat)
    queued = await _queue(emulator)
    lost = await app.client.api(app.member_id).offline().get()  # the answer nobody wrote down
    assert lost.process_id
    assert len(lost.events) == len(queued)
    consumer = app.consumer()

    assert (await consumer.drain(app.member_id)).rows == 0  # the rows are reserved: not free
    assert await app.inbox(chat) == []
    with capture_logs() as logs:
        await consumer.sweep()
    [adopted] = [e for e in logs if e["event"] == "offline_orphan_adopted"]
    assert adopted["process_id"] == lost.process_id
    assert [e["name"] for e in await app.inbox(chat)].count("ONSESSIONFINISH") == 1
    assert await consumer.drainer.lease(app.member_id).cursor() == {
        "process_id": "",
        "confirm": lost.process_id,
    }
    assert (await consumer.drain(app.member_id)).owed == 0
    [cleared] = _journal(emulator, "offline_cleared")
    assert cleared["process_id"] == lost.process_id
    assert await _queue(emulator) == []


async def test_a_poison_row_becomes_an_error_row_and_the_rest_is_confirmed(
    app: App, emulator: Any
) -> None:
    chat = await _open(emulator, "livechat|1|13|103")
    await _close(emulator, chat)
    good = await _queue(emulator)
    # The portal writes a finish in a shape we cannot place (no chat id at all), as another
    # portal version might: the row is the portal's own, through its queue table.
    portal = emulator.portals[0].portal
    binding = next(
        b for b in portal.bindings.values() if b.event == "ONSESSIONFINISH" and not b.handler
    )
    bad = portal.offline.write(binding, {"DATA": {"connector": {"line_id": "1"}, "chat": {}}})
    assert bad is not None

    with capture_logs() as logs:
        report = await app.consumer().drain(app.member_id)
    assert (report.rows, report.poison, report.ingested) == (len(good) + 1, 1, len(good))
    [marked] = _journal(emulator, "offline_error")
    assert marked["message_ids"] == [bad.message_id]
    # the error row no longer blocks anything: the next drain reads nothing, and confirms
    assert (await app.consumer().drain(app.member_id)).rows == 0
    [cleared] = _journal(emulator, "offline_cleared")
    assert sorted(cleared["row_ids"]) == sorted(int(r["ID"]) for r in good)
    [left] = await _queue(emulator)
    assert (left["MESSAGE_ID"], str(left["ERROR"]), left["PROCESS_ID"]) == (bad.message_id, "1", "")
    assert [e["name"] for e in await app.inbox(chat)].count("ONSESSIONFINISH") == 1
    [warned] = [e for e in logs if e["event"] == "offline_row_poison"]
    assert warned["message_id"] == bad.message_id


async def test_without_the_licence_rows_are_taken_with_clear_1_and_the_risk_is_logged(
    app: App, emulator: Any
) -> None:
    await control(emulator.url, "POST", "features", {"values": {"rest_offline_extended": "N"}})
    chat = await _open(emulator, "livechat|1|14|104")
    await _close(emulator, chat)
    queued = await _queue(emulator)

    with capture_logs() as logs:
        report = await app.consumer().drain(app.member_id)
    assert (report.mode, report.ingested) == ("at_most_once", len(queued))
    [warned] = [e for e in logs if e["event"] == "offline_at_most_once"]
    assert warned["log_level"] == "warning"
    assert "loses that batch" in warned["note"]
    assert [e["name"] for e in await app.inbox(chat)].count("ONSESSIONFINISH") == 1
    taken = [e for e in _journal(emulator, "offline_cleared") if e["reason"] == "get"]
    assert sorted(i for e in taken for i in e["row_ids"]) == sorted(int(r["ID"]) for r in queued)
    assert await _queue(emulator) == []
    assert (await method_counts(emulator.url, "event.offline.clear"))["calls"] == 0


async def test_of_two_consumers_only_the_lease_holder_calls_the_portal(
    app: App, emulator: Any
) -> None:
    chat = await _open(emulator, "livechat|1|15|105")
    queued = await _queue(emulator)
    one, two = app.consumer("one"), app.consumer("two")

    first, second = await asyncio.gather(one.drain(app.member_id), two.drain(app.member_id))
    assert sorted([first.held, second.held]) == [False, True]
    # one licence probe and one read (the batch was not full): the holder's, nobody else's
    assert (await method_counts(emulator.url, "feature.get"))["calls"] == 1
    assert (await method_counts(emulator.url, "event.offline.get"))["calls"] == 1
    assert len(await app.inbox(chat)) == len(queued)
    # the lease is held for one drain: once it ended, either consumer drains at once
    assert await one.drainer.lease(app.member_id).holder() is None
    loser = two if first.held else one
    assert (await loser.drain(app.member_id)).held
    # while one drains, the other is kept off
    lease = one.drainer.lease(app.member_id)
    assert await lease.acquire()
    assert not (await two.drain(app.member_id)).held
    await lease.release()


async def test_the_loop_drains_on_the_portals_onofflineevent_and_hands_over_on_stop(
    app: App, emulator: Any, settings: Settings
) -> None:
    """ONOFFLINEEVENT bound at our ingress: the portal's notice at the end of the request that
    queued rows wakes the running consumer, long before its next sweep."""
    async with _running(app, settings) as (url, consumer):
        api = app.client.api(app.member_id)
        assert await api.event_bind("ONOFFLINEEVENT", url)
        await _until(lambda: _subscribers(app.redis, Keys(settings.key_prefix).offline_wake))
        await _until(lambda: _reads(emulator, 1))  # the first sweep found the queue empty
        published = _published()
        chat = await _open(emulator, "livechat|1|16|106")
        await _until(lambda: _has(app, chat, "ONSESSIONSTART"))
        assert len(_journal(emulator, "offline_reserved")) == 1
        assert _published() == published + 1  # woken by the notice, not by a sweep
    assert await consumer.drainer.lease(app.member_id).holder() is None  # handed over


@asynccontextmanager
async def _running(app: App, settings: Settings) -> AsyncIterator[tuple[str, OfflineConsumer]]:
    """Our ingress (its event URL) and a running consumer that sweeps only every 300 s."""
    ingress = await start_ingress(settings, "127.0.0.1", 0)
    consumer = app.consumer(poll_s=300.0)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run_forever(stop))
    try:
        yield f"{ingress.url}/b24/events", consumer
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await ingress.stop()


@pytest.mark.parametrize("min_timeout", [0, 1])
async def test_each_request_notifies_at_min_timeout_0_and_a_dropped_notice_is_followed_up(
    app: App, emulator: Any, settings: Settings, min_timeout: int
) -> None:
    """Three clients write within one second. Bound with minTimeout 0 (as register-bot binds
    it) the portal sends a notice per request and the consumer schedules nothing more; bound
    with the portal's default 1 s it drops the later two, and the drain the first notice
    scheduled past that window still brings their rows in, long before the next sweep."""
    async with _running(app, settings) as (handler, consumer):
        api = app.client.api(app.member_id)
        options = {"minTimeout": 0} if min_timeout == 0 else None
        assert await api.event_bind("ONOFFLINEEVENT", handler, options=options)
        assert await app.portals.mark_offline_events(app.member_id, min_timeout)
        await _until(lambda: _subscribers(app.redis, Keys(settings.key_prefix).offline_wake))
        await _until(lambda: _reads(emulator, 1))  # the first sweep found the queue empty
        published = _published()
        chats = [await _open(emulator, f"livechat|1|16|{200 + i}") for i in range(3)]
        for chat in chats:
            await _until(lambda chat=chat: _has(app, chat, "ONSESSIONSTART"))
        notices = len(
            [e for e in _journal(emulator, "event_posted") if e["name"] == ON_OFFLINE_EVENT]
        )
        assert (notices, _published() - published) == ((3, 3) if min_timeout == 0 else (1, 1))
        assert bool(consumer._follow_ups) is (min_timeout > 0)


def _published() -> float:
    return metrics.OFFLINE_WAKEUPS.labels(outcome="published")._value.get()


async def _reads(emulator: Any, at_least: int) -> bool:
    return (await method_counts(emulator.url, "event.offline.get"))["calls"] >= at_least


async def _subscribers(redis: aioredis.Redis, channel: str) -> bool:
    [(_, count)] = await redis.pubsub_numsub(channel)
    return bool(count)


async def _has(app: App, chat: int, name: str) -> bool:
    return name in [e["name"] for e in await app.inbox(chat)]


async def _until(predicate: Any, within_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await predicate():
        assert loop.time() < deadline, f"condition not reached within {within_s} s"
        await asyncio.sleep(0.05)


async def test_register_bot_flags_the_portal_it_bound_offline(
    settings: Settings,
    redis: aioredis.Redis,
    emulator: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Only a registered portal is flagged (never a partial record); the consumer lists it."""
    creds = emulator.credentials
    member = creds["member_id"]
    await (await oauth_client(settings, creds)).close()
    portals = Portals(redis, Keys(settings.key_prefix))
    argv = ["register-bot", "--code", "olo_v2", "--api", "v2", "--member-id", member]
    args = build_parser().parse_args([*argv, "--ingress-url", "https://bot.example.com/b24"])
    app_settings = oauth_settings(settings, creds)

    assert await run_register(args, app_settings) == 0
    assert "not flagged" in json.loads(capsys.readouterr().out)["offline_consumer"]
    assert await portals.get(member) is None

    await portals.register(member, creds["domain"], creds["application_token"], source="test")
    assert await run_register(args, app_settings) == 0
    assert json.loads(capsys.readouterr().out)["offline_consumer"] == "flagged"
    flagged = await portals.get(member)
    assert flagged is not None
    assert (flagged.offline_events, flagged.notice_min_timeout) == (True, 0)
    assert await portals.offline_event_portals() == [member]
    await portals.register(member, creds["domain"], creds["application_token"], source="install")
    again = await portals.get(member)
    assert again is not None
    assert again.offline_events  # a re-install keeps the flag
