"""One drain job per wake-up: arq's queue never holds two jobs waiting to drain one dialog.

arq (arq/worker.py) takes a job id out of the queue ZSET only in `finish_job` /
`finish_failed_job`, after the job function returned: a running drain's job stays in the queue,
marked by its `arq:in-progress:<id>` key. So the invariant, per dialog, is:

* at a quiet point (no drain running, no ingest in flight) the queue holds exactly one drain job
  for the dialog, the one its `sched` key names, while sched is set (the dialog is in the
  pending set), and none once sched is cleared: `ZCARD queue == ZCARD pending`;
* while a drain runs, its own job stays in the queue until arq finishes it; besides it the dialog
  has at most one job waiting (the continuation of a handback, or the wake-up of an ingest that
  came after the exit handshake), never two waiting. So `ZCARD queue` may exceed the pending
  set by the drains running, and only by them.

arq is driven one job at a time through its own `Worker.start_jobs` (its real start, run and
finish code); the sweeper is called directly with stale_ms=0, so every pending dialog counts as
silent for a whole lease period: the worst case for it.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix
from arq.worker import Worker

from harness.bench.e2e_watch import drain_jobs
from orchestrator.pipeline.keys import job_key
from orchestrator.pipeline.queue import job_deserializer, job_serializer
from orchestrator.pipeline.records import EffectRecord, IngestResult, StoredEvent
from orchestrator.pipeline.runner import Decision, DialogHandler, FollowUp
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import WorkerSpawner, eventually
from tests.integration.recording import RecordingHandler
from worker.main import build_worker
from worker.settings import shutdown, startup

M = "m-test-1"  # the member id the spawned workers' RecordingHandler expects nothing of


class _Gated:
    """Counts events into the state, one effect per event. An effect of a chat with a gate
    waits for it (a drain caught mid-way); an effect may return follow-up events once."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = {}
        self.follow_ups: dict[str, list[FollowUp]] = {}  # effect id -> its follow-ups
        self.ran: list[str] = []

    def decide(self, state: bytes | None, event: StoredEvent) -> Decision:
        n = json.loads(state or b"0") + 1
        effect = EffectRecord(f"{event.chat_id}:{event.seq}", "k", {})
        return Decision(json.dumps(n).encode(), [effect])

    async def execute(self, effect: EffectRecord) -> Sequence[FollowUp] | None:
        self.ran.append(effect.effect_id)
        chat = effect.effect_id.partition(":")[0]
        gate = self.gates.get(chat)
        if gate is not None:
            self.entered.setdefault(chat, asyncio.Event()).set()
            await gate.wait()
        return self.follow_ups.pop(effect.effect_id, None)


@dataclass
class _Arq:
    """A real arq Worker whose jobs the test starts one by one, and the views of the queue."""

    redis: aioredis.Redis
    store: Store
    worker: Worker
    queue: str
    handler: Any
    running: dict[str, asyncio.Task[Any]] = field(default_factory=dict)

    async def ingest(self, chat: str, n: int) -> IngestResult:
        result, _ = await self.store.ingest(M, chat, f"ev-{chat}-{n}", "X", 1, {"n": n})
        return result

    async def jobs(self) -> dict[str, list[tuple[str, bool]]]:
        """Every job in the queue ZSET by the dialog it drains: (job id, running)."""
        out: dict[str, list[tuple[str, bool]]] = defaultdict(list)
        for raw in await self.redis.zrange(self.queue, 0, -1):
            job_id = raw.decode()
            record = await self.redis.get(job_key(job_id))
            assert record is not None, f"job {job_id} is queued without its record"
            member, chat = job_deserializer(record)["a"]
            running = bool(await self.redis.exists(in_progress_key_prefix + job_id))
            out[f"{member}/{chat}"].append((job_id, running))
        return out

    async def job_of(self, chat: str) -> str:
        """The one job waiting for a dialog."""
        [(job_id, running)] = (await self.jobs())[f"{M}/{chat}"]
        assert not running
        return job_id

    async def start(self, job_id: str) -> None:
        """Have arq start a job (its own checks, its in-progress key, its run_job)."""
        await self.worker.start_jobs([job_id.encode()])
        self.running[job_id] = self.worker.tasks.pop(job_id)

    async def finish(self, job_id: str) -> None:
        """Wait for a started job to be finished by arq (out of the queue)."""
        await self.running.pop(job_id)

    async def run(self, chat: str) -> None:
        """Run the dialog's waiting job to its end."""
        job_id = await self.job_of(chat)
        await self.start(job_id)
        await self.finish(job_id)

    async def assert_quiet(self, chats: Iterable[str], draining: Iterable[str] = ()) -> None:
        """The quiet-point invariant (module docstring) for these dialogs; the queue holds jobs
        of no others but those of the dialogs `draining` (see assert_draining for them)."""
        jobs = await self.jobs()
        members = {f"{M}/{c}" for c in (*chats, *draining)}
        assert set(jobs) <= members, f"jobs for other dialogs: {set(jobs) - members}"
        for chat in chats:
            d = self.store.dialog(M, chat)
            sched = await self.redis.get(d.sched)
            pending = await self.redis.zscore(self.store.keys.pending, d.pending_member)
            listed = jobs.get(d.pending_member, [])
            if sched is None:
                assert (listed, pending) == ([], None), f"dialog {chat}: {listed}"
            else:
                # one job, not running, the one sched names; the dialog is pending
                assert listed == [(sched.decode(), False)], f"dialog {chat}: {listed}"
                assert pending is not None

    async def assert_draining(self, chat: str, waiting: int) -> None:
        """While a drain runs: its own job, running, and `waiting` (at most 1) waiting."""
        listed = (await self.jobs())[f"{M}/{chat}"]
        assert sorted(running for _, running in listed) == [False] * waiting + [True]


@asynccontextmanager
async def _driven(settings: Settings, handler: DialogHandler) -> AsyncIterator[_Arq]:
    """A real arq Worker on the test queue that polls nothing: the test starts each job."""
    assert settings.redis_url
    pool: ArqRedis = await create_pool(
        RedisSettings.from_dsn(settings.redis_url),
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        default_queue_name=settings.queue_name,
    )
    worker = build_worker(settings, lambda _s, _r: handler, handle_signals=False, redis_pool=pool)
    worker.ctx["redis"] = pool
    await startup(worker.ctx)  # the runner (and a sweeper that never wakes: see _settings)
    store = Store(pool, settings)
    arq = _Arq(pool, store, worker, settings.queue_name, handler)
    try:
        yield arq
    finally:
        for task in arq.running.values():
            task.cancel()
        await asyncio.gather(*arq.running.values(), return_exceptions=True)
        await shutdown(worker.ctx)
        await pool.aclose()


@pytest.fixture
def drive_settings(fast_settings: Settings) -> Settings:
    """The workers' own sweeper never runs (the test sweeps); a drain ends only when empty."""
    return fast_settings.model_copy(
        update={"sweep_interval_s": 3600.0, "drain_budget_events": 1000, "drain_budget_s": 600.0}
    )


async def test_a_backlog_the_sweeper_passes_over_keeps_one_job_per_dialog(
    drive_settings: Settings,
) -> None:
    """Dialogs whose jobs wait for a busy worker longer than a lease period are pending,
    unleased and stale to the sweeper; it must not queue a second job beside the waiting one
    (each pass used to add one per dialog: twice the jobs after one pass, three times after two)."""
    chats = [str(c) for c in range(5)]
    async with _driven(drive_settings, _Gated()) as arq:
        for chat in chats:
            assert await arq.ingest(chat, 0) is IngestResult.SCHEDULED
            assert await arq.ingest(chat, 1) is IngestResult.APPENDED
        await arq.assert_quiet(chats)
        for _ in range(3):
            assert await arq.store.sweep(stale_ms=0) == 0
            await arq.assert_quiet(chats)
        for chat in chats:
            await arq.run(chat)
        await arq.assert_quiet(chats)
        assert not await arq.redis.exists(drive_settings.queue_name)
        assert sorted(arq.handler.ran) == sorted(f"{c}:{s}" for c in chats for s in (1, 2))


async def test_a_burst_into_a_dialog_being_drained_queues_nothing_more(
    drive_settings: Settings,
) -> None:
    """Events arriving while the dialog's drainer holds the lease only append (sched is set);
    the sweeper leaves a leased dialog alone; another dialog gets its one job."""
    handler = _Gated()
    handler.gates["b"] = asyncio.Event()
    async with _driven(drive_settings, handler) as arq:
        await arq.ingest("b", 0)
        job_b = await arq.job_of("b")
        await arq.start(job_b)
        await handler.entered.setdefault("b", asyncio.Event()).wait()
        burst = [await arq.ingest("b", n) for n in range(1, 21)]
        assert set(burst) == {IngestResult.APPENDED}
        assert await arq.ingest("c", 0) is IngestResult.SCHEDULED
        assert await arq.store.sweep(stale_ms=0) == 0
        await arq.assert_draining("b", waiting=0)
        await arq.assert_quiet(["c"], draining=["b"])
        handler.gates["b"].set()
        await arq.finish(job_b)
        await arq.assert_quiet(["b", "c"])
        assert not await arq.redis.exists(arq.store.dialog(M, "b").sched)  # drained, exited
        await arq.run("c")
        await arq.assert_quiet(["b", "c"])
        assert handler.ran.count("c:1") == 1
        assert [e for e in handler.ran if e.startswith("b:")] == [f"b:{s}" for s in range(1, 22)]


async def test_handbacks_leave_exactly_the_continuation(drive_settings: Settings) -> None:
    """A drain past its budget hands back: its continuation is the one job (sched names it);
    an ingest meanwhile only appends; the sweeper does not duplicate the waiting continuation."""
    settings = drive_settings.model_copy(update={"drain_budget_events": 2})
    handler = _Gated()
    async with _driven(settings, handler) as arq:
        for n in range(5):
            await arq.ingest("h", n)
        runs = 0
        while await arq.redis.exists(arq.store.dialog(M, "h").sched):
            await arq.run("h")
            runs += 1
            await arq.assert_quiet(["h"])
            if runs == 1:  # handed back: the continuation waits
                assert await arq.ingest("h", 5) is IngestResult.APPENDED
                assert await arq.store.sweep(stale_ms=0) == 0
                await arq.assert_quiet(["h"])
        assert runs == 3  # 2 + 2 + 2 events: two handbacks, then the exit
        assert handler.ran == [f"h:{s}" for s in range(1, 7)]


async def test_an_ingest_after_the_exit_before_arq_finishes_counts_twice_only_meanwhile(
    drive_settings: Settings,
) -> None:
    """Between the exit handshake and arq's finish_job the finished drain's job is still in the
    queue; an ingest then rightly queues a new wake-up: two jobs in the ZSET for one pending
    dialog, one of them running. Once arq finishes, one job again. A plain ZCARD of the queue
    counts that running job as queued; the bench chart's measure (drain_jobs) does not."""
    handler = _Gated()
    async with _driven(drive_settings, handler) as arq:
        seen: list[list[tuple[str, bool]]] = []
        counts: list[tuple[int, int, tuple[int, int]]] = []

        async def ingest_at_job_end(ctx: dict[str, Any]) -> None:
            if not seen:
                assert await arq.ingest("e", 1) is IngestResult.SCHEDULED
                seen.append((await arq.jobs())[f"{M}/e"])
                queue = drive_settings.queue_name
                counts.append(
                    (
                        await arq.redis.zcard(arq.store.keys.pending),
                        await arq.redis.zcard(queue),
                        await drain_jobs(arq.redis, queue),
                    )
                )

        arq.worker.on_job_end = ingest_at_job_end
        await arq.ingest("e", 0)
        first = await arq.job_of("e")
        await arq.start(first)
        await arq.finish(first)
        [listed] = seen
        assert sorted(listed, key=lambda j: j[1]) == [(await arq.job_of("e"), False), (first, True)]
        # one dialog pending, two jobs by ZCARD: 1 waiting + 1 running
        assert counts == [(1, 2, (1, 1))]
        await arq.assert_quiet(["e"])
        await arq.run("e")
        await arq.assert_quiet(["e"])
        assert handler.ran == ["e:1", "e:2"]


async def test_follow_ups_schedule_their_dialog_once(drive_settings: Settings) -> None:
    """An effect's follow-up into its own dialog is appended to the drain in hand; one into
    another dialog wakes that dialog with one job, which the sweeper does not duplicate."""
    handler = _Gated()
    handler.follow_ups["f:1"] = [FollowUp("f", "TIMER_FIRED", {}), FollowUp("g", "ECHO", {})]
    async with _driven(drive_settings, handler) as arq:
        await arq.ingest("f", 0)
        await arq.run("f")
        await arq.assert_quiet(["f", "g"])
        assert handler.ran == ["f:1", "f:2"]  # the follow-up handled in the same drain
        assert await arq.store.sweep(stale_ms=0) == 0
        await arq.assert_quiet(["f", "g"])
        await arq.run("g")
        await arq.assert_quiet(["f", "g"])
        assert handler.ran == ["f:1", "f:2", "g:1"]


@pytest.mark.slow
async def test_a_killed_drainers_job_is_replaced_not_doubled(
    drive_settings: Settings,
    redis: aioredis.Redis,
    recording: RecordingHandler,
    spawn_worker: WorkerSpawner,
) -> None:
    """A worker SIGKILLed mid-drain leaves its job in the queue, marked in progress, which arq
    would run again once that mark expires (its job timeout + 10 s). The sweeper queues the
    replacement once the lease expired, and takes the dead job out of the queue, so the
    dialog has one job, not a replacement and a zombie."""
    store = Store(redis, drive_settings)
    d = store.dialog(M, "k")
    for n in range(3):
        await store.ingest(M, "k", f"ev-k-{n}", "X", 1, {})
    [dead_job] = [j.decode() for j in await redis.zrange(drive_settings.queue_name, 0, -1)]
    stuck = spawn_worker("tests.integration.recording:stuck_factory")

    async def first_effect_hanging() -> bool:
        return (await store.state(d)).version >= 1

    await eventually(first_effect_hanging)
    stuck.kill()
    await asyncio.to_thread(stuck.wait, 30)
    assert await redis.exists(in_progress_key_prefix + dead_job)

    async def lease_expired() -> bool:
        return not await redis.exists(d.lease)

    await eventually(lease_expired)  # a liveness bound: the lease is 2 s
    async with _driven(drive_settings, recording) as arq:
        assert await arq.store.sweep(stale_ms=0) == 1
        await arq.assert_quiet(["k"])
        assert await arq.job_of("k") != dead_job
        assert await arq.store.sweep(stale_ms=0) == 0  # its replacement waits: nothing more
        await arq.run("k")
        await arq.assert_quiet(["k"])
    lines = [line.split(b"|")[1] for line in await redis.lrange(recording.log_key, 0, -1)]
    assert lines == [b"1", b"2", b"3"]  # the dead worker's effect never completed; now once each


async def _watches(redis: aioredis.Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_watch", {}).get("calls", 0))


async def test_a_poll_passes_running_drains_without_arq_s_per_job_check(
    drive_settings: Settings,
) -> None:
    """A running drain's job stays in arq's queue until it finishes, and arq checks each job id
    a poll reads with WATCH/EXISTS/ZSCORE/UNWATCH. Our worker drops the running ones with one
    pipelined EXISTS first: re-reading them costs no WATCH, and nothing starts twice; a job
    that waits still goes through arq's own guarded start."""
    handler = _Gated()
    chats = [f"r{n}" for n in range(5)]
    for chat in chats:
        handler.gates[chat] = asyncio.Event()
    async with _driven(drive_settings, handler) as arq:
        running = []
        for chat in chats:
            await arq.ingest(chat, 0)
            running.append(await arq.job_of(chat))
            await arq.start(running[-1])
        await arq.ingest("w", 0)
        waiting = await arq.job_of("w")

        before = await _watches(arq.redis)
        await arq.worker.start_jobs([j.encode() for j in running])  # a poll re-reading them
        assert await _watches(arq.redis) == before
        assert not arq.worker.tasks  # none started again
        await arq.start(waiting)
        assert await _watches(arq.redis) == before + 1  # arq's guarded start of the new one
        await arq.finish(waiting)
        for chat, job_id in zip(chats, running, strict=True):
            handler.gates[chat].set()
            await arq.finish(job_id)
        await arq.assert_quiet([*chats, "w"])
        assert sorted(handler.ran) == sorted(f"{c}:1" for c in [*chats, "w"])
