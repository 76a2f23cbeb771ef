"""The v2 bot event fetcher against the emulated portal over real HTTP and a real Redis.

Judged by the portal's side: what is left in the bot's event log (the emulator's fetch queue)
and which messages reached our inboxes, once each. The kill tests stop a poller at each step
of a round (after the fetch, after the store) the way a SIGKILL would: it never gets to the
next step and never releases its lease; a standby takes over when the lease expires.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from emulator.server import EmulatorConfig, run_emulator
from orchestrator.bitrix.bot_store import BotStore
from orchestrator.bitrix.client import BitrixClient
from orchestrator.cli import build_parser
from orchestrator.cli.register_bot import run_register
from orchestrator.events.convert import inputs_of_stored
from orchestrator.ingress.pull.fetcher import BotFetcher, Cadence, Round
from orchestrator.ingress.pull.lease import PollLease
from orchestrator.ingress.pull.pollers import Pollers
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings
from tests.event_receiver import event_receiver
from tests.integration.client_support import control, webhook_settings

CODE = "olo_fetch"
FAST = Cadence(busy_s=0.05, idle_min_s=0.05, idle_max_s=0.1, limit=3)


class Killed(Exception):
    """A poller stopped dead at a step (a SIGKILL, as far as Redis and the portal can tell)."""


@pytest.fixture
async def portal(settings: Settings) -> AsyncIterator[tuple[Any, Settings]]:
    """The emulator, and our v2 fetch-mode bot registered on it as line 1's welcome bot."""
    async with event_receiver() as sink, run_emulator(EmulatorConfig(event_url=sink.url)) as emu:
        hook = webhook_settings(settings, emu.credentials)
        args = build_parser().parse_args(
            ["register-bot", "--api", "v2", "--code", CODE, "--line", "1"]
        )
        assert await run_register(args, hook) == 0
        yield emu, hook


async def _bot(redis: aioredis.Redis, hook: Settings) -> tuple[int, str | None]:
    (record,) = await BotStore(redis, prefix=hook.key_prefix).of_portal(hook.b24_member_id or "")
    return record.bot_id, record.bot_token


async def _client_messages(emu: Any, n: int) -> list[int]:
    """n clients write once each; the portal's message ids, in order."""
    ids = []
    for i in range(n):
        sent = await control(emu.url, "POST", "client-message", {"line_id": 1, "text": f"m{i}"})
        ids.append(int(sent["message_id"]))
    return ids


async def _inboxed(redis: aioredis.Redis, hook: Settings) -> list[int]:
    """The client messages in our inboxes, one entry per stored copy."""
    found: list[int] = []
    async for key in redis.scan_iter(match=f"{hook.key_prefix}:{{*}}:dlg:*:inbox"):
        for raw in await redis.lrange(key, 0, -1):
            body = json.loads(raw.decode().split("|", 1)[1])
            found += [
                i.message_id
                for i in inputs_of_stored(body["payload"])
                if i.kind == "client_message"
            ]
    return found


def _fetcher(
    redis: aioredis.Redis,
    hook: Settings,
    client: BitrixClient,
    bot: tuple[int, str | None],
    **kw: Any,
) -> BotFetcher:
    lease = PollLease(
        redis,
        Keys(hook.key_prefix),
        hook.b24_member_id or "",
        f"bot-{bot[0]}",
        holder=kw.pop("holder", "test"),
        ttl_ms=kw.pop("ttl_ms", 500),
    )
    api = client.api(hook.b24_member_id).bot_v2(bot[1])
    return BotFetcher(Store(redis, hook), lease, api, bot[0], cadence=FAST, **kw)


async def test_a_round_stores_every_event_then_confirms_it(
    redis: aioredis.Redis, portal: tuple[Any, Settings]
) -> None:
    emu, hook = portal
    bot = await _bot(redis, hook)
    queue = emu.portals[0].portal.fetch_queue
    sent = await _client_messages(emu, 2)
    assert len(queue.pending(bot[0])) >= 2  # the portal keeps them for us
    async with BitrixClient.from_settings(hook) as client:
        fetcher = _fetcher(redis, hook, client, bot)
        assert await fetcher.lease.acquire()
        rounds = [await fetcher.poll_once()]
        while rounds[-1].has_more:  # pages of 3
            rounds.append(await fetcher.poll_once())
        assert sum(r.stored for r in rounds) == 4
        assert all(r.saved for r in rounds)
        assert sorted(await _inboxed(redis, hook)) == sorted(sent)
        # the last page is stored, not yet confirmed: the portal has it until the next offset
        assert queue.pending(bot[0])
        again = await fetcher.poll_once()
        assert again.fetched == 0
        assert queue.pending(bot[0]) == []
        assert sorted(await _inboxed(redis, hook)) == sorted(sent)


@pytest.mark.parametrize("step", ["fetched", "stored"])
async def test_a_poller_killed_mid_round_loses_and_doubles_nothing(
    redis: aioredis.Redis, portal: tuple[Any, Settings], step: str
) -> None:
    emu, hook = portal
    bot = await _bot(redis, hook)
    sent = await _client_messages(emu, 7)  # more than a page (limit 3)

    async def die_at(reached: str) -> None:
        if reached == step:
            raise Killed(step)

    async with BitrixClient.from_settings(hook) as client:
        doomed = _fetcher(redis, hook, client, bot, holder="doomed", checkpoint=die_at)
        standby = _fetcher(redis, hook, client, bot, holder="standby")
        assert await doomed.lease.acquire()
        assert not await standby.lease.acquire()  # one poller per bot
        with pytest.raises(Killed):
            await doomed.poll_once()  # it never releases: it is dead
        # the standby takes over once the dead holder's lease runs out
        for _ in range(40):
            if await standby.lease.acquire():
                break
            await asyncio.sleep(0.05)
        assert standby.lease.held
        while (await standby.poll_once()).fetched:
            pass
        # the dead poller wakes up (a paused VM): it can confirm nothing any more
        assert not await doomed.lease.save({"offset": 1})
    queue = emu.portals[0].portal.fetch_queue
    assert queue.pending(bot[0]) == []
    assert sorted(await _inboxed(redis, hook)) == sorted(sent)  # each once, none skipped


async def test_two_worker_processes_poll_one_bot_once(
    redis: aioredis.Redis, portal: tuple[Any, Settings]
) -> None:
    """Two Pollers (as two workers run them): one holds the lease and polls, every event is
    stored once; when it stops, the other takes over and keeps draining."""
    emu, hook = portal
    bot = await _bot(redis, hook)
    fast = hook.model_copy(
        update={"poller_lease_ms": 1000, "poller_discover_s": 0.1, "fetch_limit": 3}
    )
    async with BitrixClient.from_settings(fast) as client:
        stops = [asyncio.Event(), asyncio.Event()]
        pollers = [Pollers(redis, fast, client.api, holder=f"w{i}") for i in range(2)]
        for p in pollers:
            p.cadence = FAST
        tasks = [asyncio.create_task(p.run_forever(s)) for p, s in zip(pollers, stops, strict=True)]
        sent = await _client_messages(emu, 4)
        queue = emu.portals[0].portal.fetch_queue
        for _ in range(100):
            if not queue.pending(bot[0]) and len(await _inboxed(redis, hook)) >= len(sent):
                break
            await asyncio.sleep(0.05)
        holder = (
            await PollLease(
                redis,
                Keys(fast.key_prefix),
                fast.b24_member_id or "",
                f"bot-{bot[0]}",
                holder="x",
                ttl_ms=1,
            ).holder()
        ) or ""
        first = int(holder.split("|", 1)[1][1:])
        stops[first].set()  # the holder stops cleanly: the lease is handed over at once
        await tasks[first]
        more = await _client_messages(emu, 3)
        for _ in range(100):
            if not queue.pending(bot[0]) and len(await _inboxed(redis, hook)) >= len(sent + more):
                break
            await asyncio.sleep(0.05)
        stops[1 - first].set()
        await tasks[1 - first]
    assert queue.pending(bot[0]) == []
    assert sorted(await _inboxed(redis, hook)) == sorted(sent + more)


async def test_a_wake_up_brings_the_next_poll_forward(
    redis: aioredis.Redis, portal: tuple[Any, Settings]
) -> None:
    """An idle poller waits 30 s between polls; a wake-up on `Keys.fetch_wake` (what a dialog
    timer held back by the watermark publishes) makes the holder poll at once."""
    emu, hook = portal
    bot = await _bot(redis, hook)
    slow = hook.model_copy(update={"poller_discover_s": 0.1, "fetch_idle_min_s": 30.0})
    async with BitrixClient.from_settings(slow) as client:
        pollers = Pollers(redis, slow, client.api, holder="w")
        pollers.cadence = Cadence(busy_s=30.0, idle_min_s=30.0, idle_max_s=30.0, min_gap_s=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(pollers.run_forever(stop))
        queue = emu.portals[0].portal.fetch_queue
        try:
            for _ in range(100):  # the first poll (an empty log), then the long idle wait
                if await PollLease(
                    redis,
                    Keys(slow.key_prefix),
                    slow.b24_member_id or "",
                    f"bot-{bot[0]}",
                    holder="x",
                    ttl_ms=1,
                ).holder():
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            sent = await _client_messages(emu, 1)
            await redis.publish(Keys(slow.key_prefix).fetch_wake, slow.b24_member_id or "")
            for _ in range(100):
                if sent[0] in await _inboxed(redis, hook):
                    break
                await asyncio.sleep(0.05)
            assert sent[0] in await _inboxed(redis, hook)  # within 5 s, not 30
            assert queue.pending(bot[0])  # (the page is confirmed only by the next poll)
        finally:
            stop.set()
            await task


def test_the_cadence_is_busy_only_while_the_log_brings_something_new() -> None:
    """A full page or new events: the busy cadence. A page of events the offline drains had
    already stored: the idle cadence's first step (its confirmation rides with the next poll).
    An empty page: the idle cadence, doubling."""
    cadence = Cadence(busy_s=2.0, idle_min_s=5.0, idle_max_s=30.0)
    assert cadence.after(Round(fetched=3, stored=1, duplicates=2), 0.0) == 2.0
    assert cadence.after(Round(fetched=500, duplicates=500, has_more=True), 0.0) == 2.0
    assert cadence.after(Round(fetched=3, duplicates=3), 20.0) == 5.0
    assert cadence.after(Round(), 5.0) == 10.0
    assert cadence.after(Round(), 20.0) == 30.0


async def test_while_a_keyboard_is_out_the_idle_log_is_read_at_the_quick_end(
    redis: aioredis.Redis, portal: tuple[Any, Settings]
) -> None:
    """A button press reaches a fetch-mode bot only through its log: while `Keys.keyboards` is
    set (the executor sets it with each keyboard it sends) an idle poller does not back off
    past idle_min_s; once it expires, it does."""
    _, hook = portal
    bot = await _bot(redis, hook)
    async with BitrixClient.from_settings(hook) as client:
        fetcher = _fetcher(redis, hook, client, bot)
        fetcher.cadence = Cadence(busy_s=2.0, idle_min_s=5.0, idle_max_s=30.0)
        assert await fetcher.next_wait(Round(), 10.0) == 20.0
        key = Keys(hook.key_prefix).keyboards(hook.b24_member_id or "")
        await redis.set(key, b"1", px=60_000)
        assert await fetcher.next_wait(Round(), 10.0) == 5.0
        assert await fetcher.next_wait(Round(fetched=2, stored=2), 10.0) == 2.0  # busy stays
        await redis.delete(key)
        assert await fetcher.next_wait(Round(), 10.0) == 20.0
