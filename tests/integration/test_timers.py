"""Dialog timers in Redis: armed, re-armed, cancelled and fired into the dialog's inbox once."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from orchestrator.pipeline.store import Store
from orchestrator.pipeline.timers import INPUT_EVENT_PREFIX, TimerStore
from orchestrator.redis.client import aw
from orchestrator.settings import Settings

MEMBER = "m-timers"
NOW = 1_767_225_600.0


@pytest.fixture
def timers(redis: aioredis.Redis, settings: Settings) -> TimerStore:
    """A timer store under the test's prefix."""
    return TimerStore(redis, settings.key_prefix)


@pytest.fixture
def store(redis: aioredis.Redis, settings: Settings) -> Store:
    """The mailbox store the timers fire into."""
    return Store(redis, settings)


async def _inbox(store: Store, chat: str) -> list[dict[str, object]]:
    entries = await aw(store.redis.lrange(store.dialog(MEMBER, chat).inbox, 0, -1))
    return [json.loads(e.partition(b"|")[2]) for e in entries]


async def test_a_due_timer_fires_once_into_the_dialogs_inbox(
    timers: TimerStore, store: Store
) -> None:
    """After its delay the timer becomes a timer_fired input with its token, and is disarmed."""
    await timers.schedule(MEMBER, "901", "silence", "silence:0:3", 5.0, now=NOW)
    assert await timers.fire_due(store, now=NOW + 4) == 0
    assert await timers.fire_due(store, now=NOW + 6) == 1
    [event] = await _inbox(store, "901")
    assert event["name"] == INPUT_EVENT_PREFIX + "timer_fired"
    assert event["payload"]["name"] == "silence"  # type: ignore[index]
    assert event["payload"]["token"] == "silence:0:3"  # type: ignore[index]
    assert await timers.armed(MEMBER) == {}
    assert await timers.fire_due(store, now=NOW + 60) == 0


async def test_rearming_replaces_the_token_and_cancel_disarms(
    timers: TimerStore, store: Store
) -> None:
    """Arming a timer again keeps only the newest token; a cancelled timer never fires."""
    await timers.schedule(MEMBER, "901", "silence", "old", 5.0, now=NOW)
    await timers.schedule(MEMBER, "901", "silence", "new", 5.0, now=NOW + 1)
    await timers.schedule(MEMBER, "902", "silence", "gone", 5.0, now=NOW)
    await timers.cancel(MEMBER, "902", "silence")
    assert await timers.fire_due(store, now=NOW + 10) == 1
    [event] = await _inbox(store, "901")
    assert event["payload"]["token"] == "new"  # type: ignore[index]
    assert await _inbox(store, "902") == []


async def test_two_pollers_seeing_the_same_timer_queue_it_once(
    timers: TimerStore, store: Store
) -> None:
    """Every worker polls; the ingest's dedup key makes a timer one inbox entry regardless."""
    await timers.schedule(MEMBER, "901", "accept", "accept:0:7", 1.0, now=NOW)
    await asyncio.gather(timers.fire_due(store, now=NOW + 2), timers.fire_due(store, now=NOW + 2))
    assert len(await _inbox(store, "901")) == 1


async def test_a_timer_re_armed_after_the_poller_listed_it_is_neither_fired_early_nor_lost(
    timers: TimerStore,
) -> None:
    """The poller lists the due timers, then claims each: between the two the dialog may re-arm
    one (a client wrote). The claim sees the new due time, so the new token does not fire early;
    and the entry stays, so it fires when due (a lost re-arm once left a dialog waiting forever)."""
    await timers.schedule(MEMBER, "901", "silence", "silence:0:2", 4.0, now=NOW)
    field = "901|silence"
    listed = await timers.redis.zrangebyscore(timers.due_key(MEMBER), "-inf", (NOW + 5) * 1000)
    assert listed == [field.encode()]  # the poller's list, read at NOW + 5
    await timers.schedule(MEMBER, "901", "silence", "silence:0:3", 4.0, now=NOW + 4.5)
    assert await timers.claim(MEMBER, field, int((NOW + 5) * 1000)) is None
    assert await timers.claim(MEMBER, field, int((NOW + 9) * 1000)) == "silence:0:3"


async def test_a_listed_timer_cancelled_and_armed_again_keeps_its_new_entry(
    timers: TimerStore,
) -> None:
    """Listed as due, then cancelled and armed again before the claim: the claim drops nothing
    of the new arming (only an entry that is still unarmed is cleaned up)."""
    field = "902|silence"
    await timers.schedule(MEMBER, "902", "silence", "a", 1.0, now=NOW)
    await timers.cancel(MEMBER, "902", "silence")
    assert await timers.claim(MEMBER, field, int((NOW + 2) * 1000)) is None  # nothing armed
    await timers.schedule(MEMBER, "902", "silence", "b", 1.0, now=NOW)
    await timers.redis.hdel(timers.tokens_key(MEMBER), field)  # cancelled between two reads
    assert await timers.claim(MEMBER, field, int((NOW + 2) * 1000)) is None
    assert await timers.redis.zscore(timers.due_key(MEMBER), field) is None  # cleaned up
    await timers.schedule(MEMBER, "902", "silence", "c", 1.0, now=NOW)
    assert await timers.claim(MEMBER, field, int((NOW + 2) * 1000)) == "c"


async def test_where_events_are_fetched_a_timer_waits_for_the_log_to_be_read_past_it(
    timers: TimerStore, store: Store, redis: aioredis.Redis
) -> None:
    """A fetch-mode bot's log read up to NOW+2 holds a timer due at NOW+5 (the client's answer
    may still wait in the portal) and asks the bot's poller to look; once the log is read past
    it, the timer fires. Without a watermark (pushed events) the clock alone decides."""
    await timers.schedule(MEMBER, "905", "silence", "silence:0:3", 5.0, now=NOW)
    mark = store.keys.watermark(MEMBER)
    await redis.hset(mark, "bot-6", str(int((NOW + 2) * 1000)))
    pubsub = redis.pubsub()
    await pubsub.subscribe(store.keys.fetch_wake)
    await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    assert await timers.fire_due(store, now=NOW + 6) == 0
    asked = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2.0)
    assert asked is not None
    assert asked["data"] == MEMBER.encode()
    await redis.hset(mark, "bot-6", str(int((NOW + 6) * 1000)))
    assert await timers.fire_due(store, now=NOW + 7) == 1
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await redis.delete(mark)
    await timers.schedule(MEMBER, "906", "silence", "silence:0:4", 5.0, now=NOW)
    assert await timers.fire_due(store, now=NOW + 6) == 1
