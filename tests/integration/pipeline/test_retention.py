"""Retention against a real Redis: each step of a dialog re-arms the expiry of its keys, so an
active dialog stays and one idle for `dialog_retention_s` is forgotten whole (its chat starts
afresh); queued events never expire; the DLQ stream is capped at about `dlq_max_len`."""

from __future__ import annotations

import json

import aiohttp
import pydantic
import pytest
import redis.asyncio as aioredis

from orchestrator.pipeline.dlq import DeadLetters
from orchestrator.pipeline.keys import DialogKeys
from orchestrator.pipeline.records import EffectRecord, IngestResult, StoredEvent
from orchestrator.pipeline.runner import Decision, Runner
from orchestrator.pipeline.store import Store
from orchestrator.redis.client import aw
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import (
    FORM,
    MEMBER,
    eventually,
    form,
    message_payload,
)
from tests.integration.recording import RecordingHandler

M = "m-keep"
DAY_S = 24 * 3600
# How far below the retention a fresh TTL may be read: time spent between the step and the
# read on a slow machine. It only separates "the retention" from any other TTL.
SLACK_MS = 60_000


class _Counter:
    """Counts events into its state; one effect per event, which fails while `failing`."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.failing = False

    def decide(self, state: bytes | None, event: StoredEvent) -> Decision:
        n = json.loads(state or b"0") + 1
        return Decision(json.dumps(n).encode(), [EffectRecord(f"{event.event_id}:fx", "k", {})])

    async def execute(self, effect: EffectRecord) -> None:
        self.runs.append(effect.effect_id)
        if self.failing:
            raise RuntimeError("portal said no")


async def _ingest(store: Store, chat: str, event_id: str) -> IngestResult:
    result, _ = await store.ingest(M, chat, event_id, "ONIMBOTMESSAGEADD", 1, {})
    return result


async def _ttls(redis: aioredis.Redis, d: DialogKeys) -> dict[str, int]:
    """Every key the dialog has in Redis by its part name (state, inbox, ...) -> PTTL."""
    found = {}
    async for key in redis.scan_iter(match=f"{d.base}:*"):
        found[key.decode().rsplit(":", 1)[1]] = int(await redis.pttl(key))
    return found


async def _lower_ttls(redis: aioredis.Redis, d: DialogKeys, ttl_ms: int) -> None:
    for key in d.retained:
        await redis.pexpire(key, ttl_ms)


def _retention_ms(settings: Settings) -> int:
    return settings.dialog_retention_s * 1000


def _assert_retained(ttls: dict[str, int], retention_ms: int) -> None:
    for part, ttl in ttls.items():
        assert retention_ms - SLACK_MS < ttl <= retention_ms, (part, ttl)


async def test_a_drained_dialog_keeps_every_key_for_the_retention_period(
    ingress_url: str,
    http: aiohttp.ClientSession,
    redis: aioredis.Redis,
    recording: RecordingHandler,
    inproc_worker: None,
    fast_settings: Settings,
) -> None:
    """Through ingress and worker: once drained, each key the dialog left expires in about
    DIALOG_RETENTION_S (default 14 days), all at the same instant: none is left behind."""
    assert fast_settings.dialog_retention_s == 14 * DAY_S
    async with http.post(
        f"{ingress_url}/b24/events", data=form(message_payload(501, 1)), headers=FORM
    ) as resp:
        assert resp.status == 200, await resp.text()
    d = Store(redis, fast_settings).dialog(MEMBER, "501")

    async def drained() -> bool:
        return await aw(redis.llen(recording.log_key)) == 1 and not await redis.exists(d.sched)

    await eventually(drained)
    ttls = await _ttls(redis, d)
    assert {"state", "effects", "fxstatus", "history", "seq", "fence"} <= set(ttls)
    _assert_retained(ttls, _retention_ms(fast_settings))
    expiry = {int(await aw(redis.pexpiretime(f"{d.base}:{part}"))) for part in ttls}
    assert len(expiry) == 1, "the dialog's keys must vanish together"


async def test_a_commit_and_a_finished_effect_each_re_arm_the_retention(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """An active dialog never expires: every step starts the retention period over."""
    store = Store(redis, fast_settings)
    retention_ms = _retention_ms(fast_settings)
    runner = Runner(store, _Counter(), fast_settings, owner="t")
    d = store.dialog(M, "1")
    await _ingest(store, "1", "ev-1")
    assert await runner.drain(M, "1") == "done"

    await _lower_ttls(redis, d, 30_000)  # as if days had passed
    await _ingest(store, "1", "ev-2")
    token = await store.take_lease(d, "t")
    assert token is not None
    event = await store.head(d)
    assert event is not None
    assert await store.commit(d, token, event, b"2", [EffectRecord("fx-2", "k", {})])
    ttls = await _ttls(redis, d)
    assert ttls.pop("lease") > 0  # the lease keeps its own, short expiry
    assert ttls.pop("sched") == -1  # the wake-up marker: cleared by the exit handshake
    assert {"state", "effects", "fxstatus", "outbox", "history", "seq", "fence"} <= set(ttls)
    _assert_retained(ttls, retention_ms)

    await _lower_ttls(redis, d, 30_000)
    await store.effect_done(d, "fx-2")
    ttls = await _ttls(redis, d)
    del ttls["lease"], ttls["sched"]
    assert "outbox" not in ttls  # emptied: gone by itself
    _assert_retained(ttls, retention_ms)
    assert await store.exit(d, token) == 1


async def test_with_retention_zero_dialogs_are_kept_forever(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """0 keeps every key without a TTL, also the keys a former retention gave one."""
    runner = Runner(Store(redis, fast_settings), _Counter(), fast_settings, owner="t")
    forever = fast_settings.model_copy(update={"dialog_retention_s": 0})
    store = Store(redis, forever)
    d = store.dialog(M, "2")
    await _ingest(store, "2", "ev-1")
    assert await runner.drain(M, "2") == "done"
    assert all(ttl > 0 for ttl in (await _ttls(redis, d)).values())

    await _ingest(store, "2", "ev-2")
    assert await Runner(store, _Counter(), forever, owner="t").drain(M, "2") == "done"
    ttls = await _ttls(redis, d)
    assert {"state", "effects", "fxstatus", "history", "seq", "fence"} <= set(ttls)
    assert set(ttls.values()) == {-1}


async def test_the_backlog_of_a_pending_dialog_never_expires(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """Accepted events not yet applied keep no TTL, nor does the dialog's wake-up marker."""
    settings = fast_settings.model_copy(update={"drain_budget_events": 1})
    store = Store(redis, settings)
    d = store.dialog(M, "3")
    for n in range(3):
        await _ingest(store, "3", f"ev-{n}")
    assert await Runner(store, _Counter(), settings, owner="t").drain(M, "3") == "handed_back"
    ttls = await _ttls(redis, d)
    assert await aw(redis.llen(d.inbox)) == 2
    assert (ttls["inbox"], ttls["sched"]) == (-1, -1)
    assert ttls["state"] > 0


async def test_an_idle_dialog_is_forgotten_whole_and_its_chat_starts_afresh(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """With a retention of 1 s the drained dialog's keys all expire; a later event on the same
    chat is accepted, scheduled and applied to a new, empty state."""
    short = fast_settings.model_copy(update={"dialog_retention_s": 1, "dedup_ttl_s": 1})
    store = Store(redis, short)
    handler = _Counter()
    d = store.dialog(M, "4")
    assert await _ingest(store, "4", "ev-1") is IngestResult.SCHEDULED
    assert await Runner(store, handler, short, owner="t").drain(M, "4") == "done"
    assert (await store.state(d)).data == b"1"

    async def forgotten() -> bool:
        return not await _ttls(redis, d)

    await eventually(forgotten, within_s=30)
    assert await redis.zscore(store.keys.pending, d.pending_member) is None

    long = Store(redis, fast_settings)  # a long retention, so the new dialog can be read
    result, seq = await long.ingest(M, "4", "ev-2", "ONIMBOTMESSAGEADD", 1, {})
    assert (result, seq) == (IngestResult.SCHEDULED, 1)  # its sequence starts over too
    assert await Runner(long, handler, fast_settings, owner="t").drain(M, "4") == "done"
    state = await long.state(d)
    assert (state.data, state.version) == (b"1", 1)  # counted from nothing again
    assert handler.runs == ["ev-1:fx", "ev-2:fx"]
    _assert_retained(await _ttls(redis, d), _retention_ms(fast_settings))


async def test_replaying_a_dead_effect_of_a_forgotten_dialog_runs_it(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """The DLQ outlives the dialog: replay brings the effect's record back with it, so the
    effect runs and the dialog drains to the end (an outbox id without a record never would)."""
    short = fast_settings.model_copy(update={"dialog_retention_s": 1, "dedup_ttl_s": 1})
    store = Store(redis, short)
    handler = _Counter()
    handler.failing = True
    d = store.dialog(M, "5")
    await _ingest(store, "5", "ev-1")
    runner = Runner(store, handler, short, owner="t", backoff_base_s=0.001)
    assert await runner.drain(M, "5") == "done"
    [letter] = await DeadLetters(redis, short).entries()
    assert letter.ref == "ev-1:fx"

    async def forgotten() -> bool:
        return not await _ttls(redis, d)

    await eventually(forgotten, within_s=30)
    handler.failing, handler.runs = False, []
    long = Store(redis, fast_settings)
    assert await DeadLetters(redis, fast_settings).replay(letter.entry_id)
    assert await Runner(long, handler, fast_settings, owner="t").drain(M, "5") == "done"
    assert handler.runs == ["ev-1:fx"]
    assert await long.effect_status(d, "ev-1:fx") == "done"
    _assert_retained(await _ttls(redis, d), _retention_ms(fast_settings))


@pytest.mark.parametrize("cap", [10, 0])
async def test_the_dead_letter_stream_is_capped_at_about_dlq_max_len(
    redis: aioredis.Redis, fast_settings: Settings, cap: int
) -> None:
    """Past DLQ_MAX_LEN the oldest dead letters are trimmed (whole stream nodes at a time, so
    at least the cap is kept); the newest always stays. 0: no cap."""
    settings = fast_settings.model_copy(update={"dlq_max_len": cap})
    store = Store(redis, settings)
    d = store.dialog(M, "6")
    total = 250
    for n in range(total):
        await _ingest(store, "6", f"ev-{n}")
    token = await store.take_lease(d, "t")
    assert token is not None
    for _ in range(total):
        event = await store.head(d)
        assert event is not None
        assert await store.dead_event(d, token, event, "boom", 5)
    kept = await redis.xlen(store.keys.dlq)
    if cap:
        assert cap <= kept < total
    else:
        assert kept == total
    [(_, newest)] = await redis.xrevrange(store.keys.dlq, count=1)
    assert newest[b"seq"] == str(total).encode()
    assert await store.exit(d, token) == 1
    # a dialog whose every event failed is forgotten in time too
    _assert_retained(await _ttls(redis, d), _retention_ms(settings))


def test_a_retention_shorter_than_the_dedup_window_is_refused() -> None:
    """A forgotten dialog re-mints its effect ids and timer tokens: their old dedup keys must
    have expired by then, or its new timers would be dropped as duplicates."""
    with pytest.raises(pydantic.ValidationError, match="dedup_ttl_s"):
        Settings(dialog_retention_s=DAY_S, dedup_ttl_s=7 * DAY_S)
    assert Settings(dialog_retention_s=0).dialog_retention_s == 0
    assert Settings(dialog_retention_s=7 * DAY_S, dedup_ttl_s=7 * DAY_S).dedup_ttl_s == 7 * DAY_S
