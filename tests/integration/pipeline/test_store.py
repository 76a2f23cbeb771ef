"""The mailbox's Lua steps against a real Redis: fencing, the exit handshake, the sweeper."""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis

from orchestrator.errors import LeaseLost
from orchestrator.pipeline.queue import job_deserializer
from orchestrator.pipeline.records import EffectRecord, IngestResult, StoredEvent
from orchestrator.pipeline.runner import Decision, FollowUp, Runner
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings

M = "m-store"


async def _ingest(store: Store, chat: str, n: int) -> tuple[IngestResult, int]:
    return await store.ingest(M, chat, f"ev-{chat}-{n}", "ONIMBOTMESSAGEADD", 1, {"n": n})


async def test_ingest_queues_one_arq_drain_job_per_wakeup_in_arq_format(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """Only the event that sets sched writes an arq job; the job names the dialog, no data."""
    store = Store(redis, fast_settings)
    results = [await _ingest(store, "1", n) for n in range(3)]
    assert [r for r, _ in results] == [
        IngestResult.SCHEDULED,
        IngestResult.APPENDED,
        IngestResult.APPENDED,
    ]
    assert [seq for _, seq in results] == [1, 2, 3]
    [job_id] = await redis.zrange(fast_settings.queue_name, 0, -1)
    job = job_deserializer(await redis.get(b"arq:job:" + job_id))
    assert (job["f"], job["a"], job["k"]) == ("drain", [M, "1"], {})
    await redis.delete(b"arq:job:" + job_id)


async def test_commit_is_fenced_by_lease_token_and_sequence(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """A stale token cannot commit; a commit for a seq no longer at the head changes nothing."""
    store = Store(redis, fast_settings)
    await _ingest(store, "2", 0)
    d = store.dialog(M, "2")
    token = await store.take_lease(d, "a")
    assert token is not None
    assert await store.take_lease(d, "b") is None  # held
    event = await store.head(d)
    assert event is not None
    try:
        await store.commit(d, "1:stale", event, b"x", [])
        raise AssertionError("a stale token committed")
    except LeaseLost:
        pass
    assert await store.commit(d, token, event, b"s1", [EffectRecord("fx1", "k", {})])
    assert not await store.commit(d, token, event, b"s2", [])  # same seq again: refused
    state = await store.state(d)
    assert (state.data, state.seq, state.version) == (b"s1", 1, 1)
    assert [e.effect_id for e in await store.pending_effects(d)] == ["fx1"]


async def test_exit_handshake_refuses_while_work_remains_and_clears_all_when_empty(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """Exit with an event or effect left says 'keep going'; an ingest after exit wakes anew."""
    store = Store(redis, fast_settings)
    await _ingest(store, "3", 0)
    d = store.dialog(M, "3")
    token = await store.take_lease(d, "a")
    assert token is not None
    assert await store.exit(d, token) == 0  # inbox not empty
    event = await store.head(d)
    assert event is not None
    await store.commit(d, token, event, b"s", [EffectRecord("fx", "k", {})])
    assert await store.exit(d, token) == 0  # an effect not done
    await store.effect_done(d, "fx")
    assert await store.exit(d, token) == 1
    for key in (d.sched, d.lease):
        assert not await redis.exists(key)
    assert await redis.zscore(store.keys.pending, d.pending_member) is None
    result, _ = await _ingest(store, "3", 1)
    assert result is IngestResult.SCHEDULED


async def test_sweeper_reschedules_only_dialogs_without_a_live_lease(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """A stale pending dialog with no lease gets a new drain job; a leased one is left alone."""
    store = Store(redis, fast_settings)
    await _ingest(store, "4", 0)
    await _ingest(store, "5", 0)
    leased = store.dialog(M, "5")
    assert await store.take_lease(leased, "alive")
    await redis.delete(fast_settings.queue_name)  # the drain jobs were lost (worker crash)
    for member in (f"{M}/4", f"{M}/5"):
        await redis.zadd(store.keys.pending, {member: 1})  # long silent
    assert await store.sweep(stale_ms=1000) == 1
    [job_id] = await redis.zrange(fast_settings.queue_name, 0, -1)
    job = job_deserializer(await redis.get(b"arq:job:" + job_id))
    assert job["a"] == [M, "4"]
    await redis.delete(b"arq:job:" + job_id)


class _Once:
    """A handler whose effect counts its runs; `fail_effect` makes execute raise."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.fail_effect = False

    def decide(self, state: bytes | None, event: StoredEvent) -> Decision:
        n = json.loads(state or b"0") + 1
        return Decision(json.dumps(n).encode(), [EffectRecord(f"fx{event.seq}", "k", {})])

    async def execute(self, effect: EffectRecord) -> None:
        self.runs.append(effect.effect_id)
        if self.fail_effect:
            raise RuntimeError("portal said no")


async def test_done_effect_never_runs_again_and_failing_effect_is_dead_lettered(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """Effects run once; one failing max_attempts times goes to the DLQ and the dialog goes on."""
    store = Store(redis, fast_settings)
    handler = _Once()
    runner = Runner(store, handler, fast_settings, owner="t", backoff_base_s=0.001)
    await _ingest(store, "6", 0)
    assert await runner.drain(M, "6") == "done"
    assert await runner.drain(M, "6") == "done"  # a duplicate drain: nothing runs twice
    assert handler.runs == ["fx1"]
    handler.fail_effect = True
    await _ingest(store, "6", 1)
    assert await asyncio.wait_for(runner.drain(M, "6"), 10) == "done"
    assert handler.runs == ["fx1"] + ["fx2"] * fast_settings.max_attempts
    [letter] = await redis.xrange(store.keys.dlq)
    assert letter[1][b"kind"] == b"effect"
    assert letter[1][b"effect_id"] == b"fx2"
    assert await store.effect_status(store.dialog(M, "6"), "fx2") == "dead"


async def test_budget_spent_hands_back_with_a_continuation(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """Past drain_budget_events the drain releases the lease and queues a continuation."""
    settings = fast_settings.model_copy(update={"drain_budget_events": 2})
    store = Store(redis, settings)
    runner = Runner(store, _Once(), settings, owner="t")
    for n in range(5):
        await _ingest(store, "7", n)
    await redis.delete(settings.queue_name)
    assert await runner.drain(M, "7") == "handed_back"
    d = store.dialog(M, "7")
    assert await redis.llen(d.inbox) == 3
    assert not await redis.exists(d.lease)
    assert await redis.exists(d.sched)
    assert await redis.zcard(settings.queue_name) == 1


async def test_handbacks_do_not_count_as_tries_of_the_next_event(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """With a budget of one event and one allowed try, every event still gets applied."""
    settings = fast_settings.model_copy(update={"drain_budget_events": 1, "max_attempts": 1})
    store = Store(redis, settings)
    handler = _Once()
    runner = Runner(store, handler, settings, owner="t")
    for n in range(4):
        await _ingest(store, "8", n)
    outcomes = [await runner.drain(M, "8") for _ in range(5)]
    assert outcomes == ["handed_back"] * 3 + ["done", "done"]
    assert handler.runs == ["fx1", "fx2", "fx3", "fx4"]
    assert await redis.xlen(store.keys.dlq) == 0


class _Echo(_Once):
    """Its first effect returns a follow-up event into the same dialog."""

    async def execute(self, effect: EffectRecord) -> list[FollowUp]:  # type: ignore[override]
        self.runs.append(effect.effect_id)
        return (
            [FollowUp("9", "TIMER_FIRED", {"of": effect.effect_id})]
            if effect.effect_id == "fx1"
            else []
        )


async def test_follow_up_events_are_queued_once_and_handled_in_the_same_drain(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """A follow-up comes back as an event; re-sending it (a re-run after a crash) is absorbed."""
    store = Store(redis, fast_settings)
    handler = _Echo()
    runner = Runner(store, handler, fast_settings, owner="t")
    await _ingest(store, "9", 0)
    assert await runner.drain(M, "9") == "done"
    assert handler.runs == ["fx1", "fx2"]
    result, _ = await store.ingest(M, "9", "fx:fx1:0", "TIMER_FIRED", 1, {})
    assert result is IngestResult.DUPLICATE
