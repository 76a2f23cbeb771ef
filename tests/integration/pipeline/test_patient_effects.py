"""Patient effects (queue handoffs, votes, leads) outlive a portal outage: more tries, longer
waits, and the dialog is handed back with a delayed continuation while it waits."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from orchestrator.pipeline.queue import now_ms
from orchestrator.pipeline.records import EffectRecord, StoredEvent
from orchestrator.pipeline.runner import INLINE_WAIT_MAX_S, Decision, Runner
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings

M = "m-patient"


class _Outage:
    """Each event makes one patient effect; the portal fails the first `failures` tries."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs: list[tuple[str, int]] = []

    def decide(self, state: bytes | None, event: StoredEvent) -> Decision:
        n = json.loads(state or b"0") + 1
        effect = EffectRecord(f"lead{event.seq}", "CreateLead", {}, patient=True)
        return Decision(json.dumps(n).encode(), [effect])

    async def execute(self, effect: EffectRecord) -> None:
        self.runs.append((effect.effect_id, effect.attempt))
        if len(self.runs) <= self.failures:
            raise ConnectionError("CRM is down")


def _settings(fast: Settings, patient_max_attempts: int) -> Settings:
    return fast.model_copy(update={"patient_max_attempts": patient_max_attempts})


async def test_a_patient_effect_waits_out_an_outage_without_holding_the_dialog(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """Past the inline waits the dialog is handed back, due later; the sweeper and new events
    leave it alone; the next drain tries again and the effect is done, never dead-lettered."""
    settings = _settings(fast_settings, patient_max_attempts=8)
    store = Store(redis, settings)
    # waits 0.3, 0.6, 1.2 s are slept through; the 4th (2.4 s) hands the dialog back
    handler = _Outage(failures=5)
    runner = Runner(store, handler, settings, owner="t", backoff_base_s=0.3)
    await store.ingest(M, "1", "ev-1", "ONIMBOTMESSAGEADD", 1, {})
    d = store.dialog(M, "1")
    await redis.delete(settings.queue_name)

    before = now_ms()
    assert await runner.drain(M, "1") == "handed_back"
    assert [attempt for _, attempt in handler.runs] == [1, 2, 3, 4]
    assert not await redis.exists(d.lease)
    [(_, due)] = await redis.zrange(settings.queue_name, 0, -1, withscores=True)
    # jittered between half and all of the 2.4 s wait
    assert before + 1200 <= due <= now_ms() + 2400
    assert await redis.zscore(store.keys.pending, d.pending_member) == due
    assert await store.sweep(stale_ms=0) == 0  # not stale: its continuation is not due yet
    await store.ingest(M, "1", "ev-2", "ONIMBOTMESSAGEADD", 2, {})
    assert await redis.zcard(settings.queue_name) == 1  # the continuation serves it too

    # the continuation: try 5 fails (handed back again), try 6 works, then event 2 runs
    assert await runner.drain(M, "1") == "handed_back"
    assert await runner.drain(M, "1") == "done"
    assert handler.runs[4:] == [("lead1", 5), ("lead1", 6), ("lead2", 1)]
    assert await store.effect_status(d, "lead1") == "done"
    assert await redis.xlen(store.keys.dlq) == 0


async def test_a_patient_effect_is_dead_lettered_after_its_own_tries(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """More tries than a quick effect gets, and then the DLQ, with the dialog going on."""
    settings = _settings(fast_settings, patient_max_attempts=fast_settings.max_attempts + 2)
    store = Store(redis, settings)
    handler = _Outage(failures=100)
    runner = Runner(store, handler, settings, owner="t", backoff_base_s=0.001)
    await store.ingest(M, "2", "ev-1", "ONIMBOTMESSAGEADD", 1, {})
    assert await runner.drain(M, "2") == "done"
    assert len(handler.runs) == settings.patient_max_attempts > settings.max_attempts
    [letter] = await redis.xrange(store.keys.dlq)
    assert letter[1][b"effect_id"] == b"lead1"


def test_patience_is_part_of_the_stored_effect() -> None:
    """The domain decides at commit time; the record keeps it across crashes and replays."""
    patient = EffectRecord("x", "CreateLead", {"a": 1}, patient=True)
    assert EffectRecord.from_json(patient.to_json()) == patient
    quick = EffectRecord("y", "SendMessage", {})
    assert "patient" not in quick.to_json()
    assert not EffectRecord.from_json(quick.to_json()).patient
    assert Settings().patient_backoff_cap_s > INLINE_WAIT_MAX_S


class _Flaky:
    """One quick effect per event; the portal fails the first `failures` tries cleanly."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs: list[int] = []

    def decide(self, state: bytes | None, event: StoredEvent) -> Decision:
        return Decision(b"s", [EffectRecord(f"msg{event.seq}", "SendMessage", {})])

    async def execute(self, effect: EffectRecord) -> None:
        self.runs.append(effect.attempt)
        if len(self.runs) <= self.failures:
            raise ConnectionError("portal 500")


async def test_kills_and_clean_failures_are_counted_apart(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """Tries whose workers died do not use up the retries of clean failures (and the other way
    round): after max_attempts - 1 crashed tries the effect still gets its failing tries and
    runs; max_attempts crashed tries alone exhaust it ("crashed while running")."""
    store = Store(redis, fast_settings)
    limit = fast_settings.max_attempts
    handler = _Flaky(failures=limit - 1)
    runner = Runner(store, handler, fast_settings, owner="t", backoff_base_s=0.001)
    await store.ingest(M, "3", "ev-1", "ONIMBOTMESSAGEADD", 1, {})
    d = store.dialog(M, "3")
    await redis.hset(d.attempts, "f:msg1", limit - 1)  # tries begun by workers that died
    assert await runner.drain(M, "3") == "done"
    # limit - 1 clean failures, then it ran: the try numbers count every try begun
    assert handler.runs == list(range(limit, 2 * limit))
    assert await store.effect_status(d, "msg1") == "done"
    assert not await redis.hexists(d.attempts, "x:msg1")

    await store.ingest(M, "3", "ev-2", "ONIMBOTMESSAGEADD", 2, {})
    await redis.hset(d.attempts, "f:msg2", limit)  # as many crashed tries as allowed
    assert await runner.drain(M, "3") == "done"
    assert handler.runs[limit:] == []  # not run again
    [letter] = await redis.xrange(store.keys.dlq)
    assert letter[1][b"effect_id"] == b"msg2"
    assert letter[1][b"error"] == b"crashed while running"
