"""The glue between a dialog's mailbox and its handler: one fenced drainer per dialog.

A drain takes the dialog's lease, then for each event: peek the head → `handler.decide` (pure)
→ one fenced Lua commit (state + effects, pop the event) → run the effects not done yet, each
marked done. It stops at the exit handshake (nothing left), or when its budget is spent or the
worker is stopping (then it hands the dialog on to a continuation job). Generic over the domain:
the production handler (dialog machine + REST client) and the tests' RecordingHandler both
implement `DialogHandler`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import structlog
from redis.exceptions import RedisError
from structlog.contextvars import bound_contextvars

from orchestrator.bitrix.fence import fenced
from orchestrator.errors import LeaseLost, RetryLater
from orchestrator.observe import metrics
from orchestrator.pipeline.keys import DialogKeys
from orchestrator.pipeline.queue import now_ms
from orchestrator.pipeline.records import EffectRecord, Peeked, StoredEvent
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings

__all__ = [
    "Decision",
    "DialogHandler",
    "DrainOutcome",
    "FollowUp",
    "GivesUp",
    "RetryPolicy",
    "Runner",
    "backoff_s",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    """What `decide` returns: the dialog's next state and the effects to run, as data."""

    new_state: bytes
    effects: list[EffectRecord] = field(default_factory=list)
    # status changes (from, to) this decision makes, counted once it is committed
    transitions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class FollowUp:
    """An event an effect produces (e.g. a reply that must come back into a dialog)."""

    chat_id: str
    name: str
    payload: dict[str, Any]
    member_id: str | None = None  # None: the portal of the dialog that ran the effect


class DialogHandler(Protocol):
    """The domain plugged into the runner."""

    def decide(self, state: bytes | None, event: StoredEvent) -> Decision:
        """Pure and sync: the next state and effects (with deterministic ids) for one event."""
        ...

    async def execute(self, effect: EffectRecord) -> Sequence[FollowUp] | None:
        """Run one effect; may return follow-up events; raise to have it retried."""
        ...


@runtime_checkable
class GivesUp(Protocol):
    """A handler that can work around an effect that ran out of tries (optional)."""

    def give_up(self, effect: EffectRecord, error_code: str) -> Sequence[FollowUp] | None:
        """Follow-ups that stand in for the effect (e.g. a failure the domain handles), or
        None to dead-letter it for replay."""
        ...


class DrainOutcome(StrEnum):
    """How a drain ended."""

    BUSY = "busy"  # another drainer holds the dialog
    DONE = "done"  # nothing left; sched, lease and pending cleared
    HANDED_BACK = "handed_back"  # budget spent or stopping; a continuation is queued
    LOST = "lost"  # the lease went to someone else mid-drain


def backoff_s(attempt: int, base: float = 0.05, cap: float = 2.0) -> float:
    """Delay before try `attempt + 1`: exponential from `base`, capped."""
    return min(cap, base * 2.0 ** max(0, attempt - 1))


# A retry wait up to this long is slept through while holding the lease; a longer one hands
# the dialog back with a delayed continuation, so a portal outage holds no worker slot.
INLINE_WAIT_MAX_S = 2.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, and how patiently, an effect is tried before it is dead-lettered."""

    max_attempts: int
    cap_s: float

    def wait_s(self, attempt: int, base_s: float) -> float:
        """The wait after failed try `attempt`."""
        return backoff_s(attempt, base_s, self.cap_s)


class _Lease:
    """Keeps a lease alive in the background and remembers if it was lost."""

    def __init__(self, store: Store, d: DialogKeys, token: str, interval_s: float) -> None:
        self.store, self.d, self.token, self.interval_s = store, d, token, interval_s
        self.lost = False

    async def keep(self) -> None:
        while not self.lost:
            await asyncio.sleep(self.interval_s)
            try:
                self.lost = not await self.store.renew_lease(self.d, self.token)
            except RedisError as exc:
                # the fenced commit will fail anyway if the lease expires meanwhile
                log.warning("lease_renew_failed", error=str(exc))

    def ensure(self) -> None:
        if self.lost:
            raise LeaseLost(self.d.pending_member)


class Runner:
    """Drains dialogs for one worker process."""

    def __init__(
        self,
        store: Store,
        handler: DialogHandler,
        settings: Settings,
        *,
        owner: str,
        stopping: asyncio.Event | None = None,
        backoff_base_s: float = 0.05,
    ) -> None:
        self.store = store
        self.handler = handler
        self.owner = owner
        self.stopping = stopping or asyncio.Event()
        self.max_attempts = settings.max_attempts
        self.quick = RetryPolicy(settings.max_attempts, INLINE_WAIT_MAX_S)
        self.patient = RetryPolicy(settings.patient_max_attempts, settings.patient_backoff_cap_s)
        self.budget_events = settings.drain_budget_events
        self.budget_s = settings.drain_budget_s
        self.renew_every_s = settings.lease_ms / 3000
        self.backoff_base_s = backoff_base_s

    async def drain(self, member_id: str, chat_id: str) -> DrainOutcome:
        """Drain one dialog until it is empty, the budget is spent or the worker stops."""
        d = self.store.dialog(member_id, chat_id)
        token = await self.store.take_lease(d, self.owner)
        if token is None:
            return DrainOutcome.BUSY
        lease = _Lease(self.store, d, token, self.renew_every_s)
        keeper = asyncio.create_task(lease.keep())
        try:
            return await self._loop(d, token, lease)
        except LeaseLost:
            log.warning("lease_lost")
            return DrainOutcome.LOST
        finally:
            keeper.cancel()
            await asyncio.wait([keeper])

    async def _loop(self, d: DialogKeys, token: str, lease: _Lease) -> DrainOutcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.budget_s
        handled = 0
        while True:
            lease.ensure()
            # effects of the last commit first: a crash after a commit leaves them here
            try:
                await self._run_effects(d, token, lease)
            except RetryLater as later:
                # the effect and everything queued behind it wait; the lease is released
                return await self._stop(d, token, later.wait_s)
            # checked before peeking: a peek counts a try of the head event
            spent = handled >= self.budget_events or loop.time() >= deadline
            if spent or self.stopping.is_set():
                return await self._stop(d, token)
            peeked = await self.store.peek(d)
            if peeked is None:
                if await self._exit(d, token):
                    return DrainOutcome.DONE
                continue
            handled += await self._apply(d, token, peeked)

    async def _exit(self, d: DialogKeys, token: str) -> bool:
        """The exit handshake: True when the dialog was left empty and unscheduled."""
        exited = await self.store.exit(d, token)
        if exited == -1:
            raise LeaseLost(d.pending_member)
        return exited == 1

    async def _stop(self, d: DialogKeys, token: str, wait_s: float = 0.0) -> DrainOutcome:
        """Budget spent, stopping or an effect waiting: exit if nothing is left, else hand on
        to a continuation due in `wait_s`."""
        if await self._exit(d, token):
            return DrainOutcome.DONE
        if not await self.store.handback(d, token, round(wait_s * 1000)):
            raise LeaseLost(d.pending_member)
        return DrainOutcome.HANDED_BACK

    async def _apply(self, d: DialogKeys, token: str, peeked: Peeked) -> int:
        """Decide and commit the head event; 1 when it left the inbox, 0 to try it again."""
        with bound_contextvars(event_id=peeked.event.event_id, seq=peeked.event.seq):
            return await self._apply_bound(d, token, peeked)

    async def _apply_bound(self, d: DialogKeys, token: str, peeked: Peeked) -> int:
        event, attempts = peeked.event, peeked.attempt
        if attempts > self.max_attempts:
            # tried that often without even failing cleanly: it crashed its workers
            return await self._dead_event(d, token, event, "crashed while handling", attempts)
        try:
            decision = self.handler.decide(peeked.state.data, event)
        except Exception as exc:
            if attempts >= self.max_attempts:
                return await self._dead_event(d, token, event, _describe(exc), attempts)
            log.warning("decide_failed", attempt=attempts, error=_describe(exc))
            metrics.PIPELINE_RETRIES.labels(kind="event").inc()
            await asyncio.sleep(backoff_s(attempts, self.backoff_base_s))
            return 0
        committed = await self.store.commit(d, token, event, decision.new_state, decision.effects)
        log.debug("event_applied", event_name=event.name, committed=committed)
        if committed:
            _observe_commit(d.member_id, event, decision)
        return 1

    async def _dead_event(
        self, d: DialogKeys, token: str, event: StoredEvent, error: str, attempts: int
    ) -> int:
        entry = await self.store.dead_event(d, token, event, error, attempts)
        metrics.DEAD_LETTERS.labels(kind="event").inc()
        log.error(
            "event_dead_lettered",
            event_name=event.name,
            error=error,
            attempts=attempts,
            dlq_id=entry,
        )
        return 1

    async def _run_effects(self, d: DialogKeys, token: str, lease: _Lease) -> None:
        for effect in await self.store.pending_effects(d):
            await self._run_effect(d, token, lease, effect)

    async def _run_effect(
        self, d: DialogKeys, token: str, lease: _Lease, effect: EffectRecord
    ) -> None:
        with bound_contextvars(effect_id=effect.effect_id, effect_kind=effect.kind):
            await self._run_effect_bound(d, token, lease, effect)

    async def _run_effect_bound(
        self, d: DialogKeys, token: str, lease: _Lease, effect: EffectRecord
    ) -> None:
        policy = self.patient if effect.patient else self.quick
        while True:
            lease.ensure()
            # the lease re-checked right before a possibly non-idempotent call
            attempts, failed = await self.store.begin_effect(d, token, effect.effect_id)
            # tries begun that neither finished nor failed: their workers died. Counted apart
            # from clean failures, so kills (a rollout, a node going away) do not use up an
            # effect's retries, while one that kills every worker running it still stops.
            if attempts - 1 - failed >= policy.max_attempts:
                await self._exhausted(
                    d, token, effect, "crashed while running", "crashed_while_running", attempts
                )
                return
            started = time.perf_counter()
            try:
                # every write of the effect passes the lease again right before it is sent
                # (orchestrator/bitrix/fence.py): a wait in between may outlast the lease
                with fenced(lambda: self._still_ours(d, token)):
                    follow_ups = await self.handler.execute(replace(effect, attempt=attempts))
            except LeaseLost:
                raise
            except Exception as exc:
                metrics.EFFECT_SECONDS.labels(kind=effect.kind).observe(
                    time.perf_counter() - started
                )
                if await self.store.effect_failed(d, effect.effect_id) >= policy.max_attempts:
                    await self._exhausted(
                        d, token, effect, _describe(exc), type(exc).__name__, attempts
                    )
                    return
                wait_s = policy.wait_s(attempts, self.backoff_base_s)
                log.warning("effect_failed", attempt=attempts, error=_describe(exc), wait_s=wait_s)
                metrics.EFFECTS.labels(kind=effect.kind, outcome="failed").inc()
                metrics.PIPELINE_RETRIES.labels(kind="effect").inc()
                if wait_s > INLINE_WAIT_MAX_S:
                    # jittered (half to all of it): dialogs failing together in an outage
                    # must not all come back together
                    raise RetryLater(wait_s * random.uniform(0.5, 1.0)) from exc
                await asyncio.sleep(wait_s)
                continue
            metrics.EFFECT_SECONDS.labels(kind=effect.kind).observe(time.perf_counter() - started)
            await self._ingest_follow_ups(d, effect, follow_ups or ())
            await self.store.effect_done(d, effect.effect_id)
            metrics.EFFECTS.labels(kind=effect.kind, outcome="done").inc()
            return

    async def _still_ours(self, d: DialogKeys, token: str) -> None:
        """The write fence: renew the lease (ours for a whole period again) or stop."""
        if not await self.store.renew_lease(d, token):
            log.warning("write_fenced")
            raise LeaseLost(d.pending_member)

    async def _exhausted(
        self,
        d: DialogKeys,
        token: str,
        effect: EffectRecord,
        error: str,
        code: str,
        attempts: int,
    ) -> None:
        """Out of tries: its clean failures, or its tries whose workers died, reached the
        limit; `code` says which for the domain (the exception's name, or
        crashed_while_running). The domain may stand in for the effect (it is marked done,
        the follow-ups queued); else it becomes a dead letter."""
        instead = self.handler.give_up(effect, code) if isinstance(self.handler, GivesUp) else None
        if instead is None:
            await self._dead_effect(d, token, effect, error, attempts)
            return
        log.warning("effect_given_up", error=error, attempts=attempts)
        await self._ingest_follow_ups(d, effect, instead)
        await self.store.effect_done(d, effect.effect_id)
        metrics.EFFECTS.labels(kind=effect.kind, outcome="given_up").inc()

    async def _dead_effect(
        self, d: DialogKeys, token: str, effect: EffectRecord, error: str, attempts: int
    ) -> None:
        entry = await self.store.dead_effect(d, token, effect.effect_id, error, attempts)
        metrics.DEAD_LETTERS.labels(kind="effect").inc()
        metrics.EFFECTS.labels(kind=effect.kind, outcome="dead").inc()
        log.error(
            "effect_dead_lettered",
            error=error,
            attempts=attempts,
            dlq_id=entry,
        )

    async def _ingest_follow_ups(
        self, d: DialogKeys, effect: EffectRecord, follow_ups: Sequence[FollowUp]
    ) -> None:
        # ids derive from the effect id: a re-run after a crash re-sends the same ids, which
        # the dedup key absorbs
        for index, f in enumerate(follow_ups):
            await self.store.ingest(
                f.member_id or d.member_id,
                f.chat_id,
                f"fx:{effect.effect_id}:{index}",
                f.name,
                now_ms() // 1000,
                f.payload,
            )


def _observe_commit(member_id: str, event: StoredEvent, decision: Decision) -> None:
    """Metrics of one committed event: its lag since acceptance and the status changes."""
    lag_s = max(0.0, (now_ms() - event.received_ms) / 1000)
    metrics.EVENT_LAG_SECONDS.labels(member_id=member_id).observe(lag_s)
    for before, after in decision.transitions:
        metrics.DIALOG_TRANSITIONS.labels(
            member_id=member_id, from_status=before, to_status=after
        ).inc()


def _describe(exc: BaseException) -> str:
    with contextlib.suppress(Exception):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__
