"""The offline event consumer: drains each portal's offline event queue into the dialogs' inboxes.

`register-bot --api v2` binds ONSESSIONSTART, ONSESSIONFINISH and ONOPENLINEMESSAGEADD as
offline events and flags the portal's record (`Portals.mark_offline_events`): the portal then
writes a row per changed object into the app's queue instead of pushing the event once and
never again (docs/bitrix24-offline-events.md). This consumer reads those rows with
`event.offline.get` and hands each to the ingress's own one-call ingest (`ingest_event`: dedup,
append, schedule), in one of two modes chosen per portal by `feature.get rest_offline_extended`
(asked once per portal and process; anything but "Y" counts as not licensed):

* extended (reserve, store, confirm): `clear=0` reserves up to OFFLINE_BATCH_LIMIT rows under a
  process id, which is written to the lease's cursor BEFORE any row is ingested; rows that do
  not parse or convert (poison) go to `event.offline.error` and never block the queue; only when
  every good row is stored is the batch's process id moved to the cursor's `confirm` list, and
  its `event.offline.clear` goes out with the next read, in the same request (at light load a
  drain per client message would otherwise spend two requests of the portal's budget); a drain
  is made for it when no read comes within CONFIRM_AFTER_S.
  A consumer that dies in between leaves the process id in the cursor, and the next holder
  re-reads that batch (`process_id=`) first: its rows dedup against what was already stored
  (the same TIMESTAMP_X gives the same dedup key), so nothing is lost or doubled.
* at most once (no licence): `clear=1` deletes the rows as it returns them. A crash (or a Redis
  outage) between the read and the store loses that batch for good; the consumer checks Redis
  before each read to narrow the window, logs `offline_at_most_once` when it first meets such a
  portal, and the reconciliation of open dialogs in the dialog machine is the safety net.

One consumer per portal across the cluster: each drain runs under the portal's `PollLease`
("offline"), renewed between batches and released when the drain ends, so a wake-up is served
at once by whichever worker gets it, and a dead drainer's portal is free again one lease period
(OFFLINE_LEASE_MS) later; a holder that loses the lease stops after the batch in hand (whose
process id it still confirms itself; the cursor also keeps it for the next drain).
Every worker runs an `OfflineConsumer`; `run_forever(stop)` sweeps every flagged portal each
OFFLINE_POLL_S (jittered) and drains a portal at once when the ingress publishes its member id on
`Keys.offline_wake` (an ONOFFLINEEVENT, ingress/intake.py). Those notices are hints, hence the
sweep. register-bot binds onOfflineEvent with minTimeout 0 (one notice per portal request that
wrote rows); where a binding has a positive minTimeout (one made before register-bot set it),
the portal drops the notices inside that window, so each notice there also schedules a drain
when the window has passed. Bursts coalesce: at most one
drain in flight per portal, and one more queued behind it. Trouble with Redis or the portal is
logged, counted (`ol_offline_errors`) and retried at the next wake-up or sweep; the loop never
dies. Metrics: `ol_offline_rows`, `ol_offline_batches`, `ol_offline_takeovers`,
`ol_offline_lag_seconds` (orchestrator/observe/metrics.py).

Only the events we bind offline are ingested; a row of any other event is marked as an error
row (visible with `error=1`), as a poison row is. Rows a read reserved whose answer never came
back (a lost answer, or a crash before the cursor was written) are reserved under an id nobody
knows: the drain each sweep makes also lists the reserved rows (`event.offline.list`, at most
ORPHAN_PAGES pages) and finishes every batch whose process id the cursor does not know, as it
resumes its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket

import redis.asyncio as aioredis
import structlog

from orchestrator.bitrix.client import BitrixClient
from orchestrator.errors import InvalidEvent
from orchestrator.ingress.portals import Portals
from orchestrator.ingress.pull.offline_drain import DrainReport, OfflineDrainer
from orchestrator.ingress.pull.wake import listen
from orchestrator.observe import metrics
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings

__all__ = ["CONFIRM_AFTER_S", "NOTICE_MARGIN_S", "OfflineConsumer"]

# Where the binding's minTimeout is positive, a drain this long after it ends catches the rows
# whose notices the portal dropped inside it.
NOTICE_MARGIN_S = 1.0
# A stored batch is confirmed (`event.offline.clear`) in the same request as the next read; when
# no read comes within this many seconds, a drain is made for it.
CONFIRM_AFTER_S = 5.0

log = structlog.get_logger(__name__)


class OfflineConsumer:
    """Drains the offline queues of the flagged portals; one per worker process."""

    def __init__(
        self,
        client: BitrixClient,
        store: Store,
        portals: Portals,
        *,
        holder: str,
        poll_s: float = 60.0,
        batch_limit: int = 500,
        lease_ttl_ms: int = 15_000,
        auth_connector: str | None = None,
        concurrency: int = 8,
        shutdown_grace_s: float = 10.0,
    ) -> None:
        self.portals = portals
        self.holder = holder
        self.poll_s = poll_s
        self.shutdown_grace_s = shutdown_grace_s
        self.drainer = OfflineDrainer(
            client,
            store,
            holder=holder,
            batch_limit=batch_limit,
            lease_ttl_ms=lease_ttl_ms,
            auth_connector=auth_connector,
        )
        self._redis: aioredis.Redis = store.redis
        self._keys: Keys = store.keys
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._slots = asyncio.Semaphore(concurrency)
        self._follow_ups: set[asyncio.TimerHandle] = set()
        self._confirm_timers: dict[str, asyncio.TimerHandle] = {}
        self._adopt: set[str] = set()  # portals whose next drain looks for orphaned batches

    @classmethod
    def from_settings(
        cls, settings: Settings, client: BitrixClient, redis: aioredis.Redis
    ) -> OfflineConsumer:
        """The consumer of a worker process: OFFLINE_* settings, holder "<host>:<pid>"."""
        return cls(
            client,
            Store(redis, settings),
            Portals(redis, Keys(settings.key_prefix)),
            holder=f"{socket.gethostname()}:{os.getpid()}",
            poll_s=settings.offline_poll_s,
            batch_limit=settings.offline_batch_limit,
            lease_ttl_ms=settings.offline_lease_ms,
            shutdown_grace_s=settings.shutdown_grace_s,
        )

    async def drain(self, member_id: str, *, adopt: bool = False) -> DrainReport:
        """Drain one portal now (if we hold or can take its lease); raises on trouble."""
        return await self.drainer.drain(member_id, adopt=adopt)

    def kick(self, member_id: str) -> asyncio.Task[None]:
        """Drain a portal soon: one drain in flight per portal, and at most one more queued
        behind it however many wake-ups arrive meanwhile."""
        task = self._inflight.get(member_id)
        if task is not None and not task.done():
            self._again.add(member_id)
            return task
        task = asyncio.create_task(self._drain_while_asked(member_id))
        self._inflight[member_id] = task
        return task

    async def _drain_while_asked(self, member_id: str) -> None:
        try:
            while not self.drainer.stopping:
                self._again.discard(member_id)
                async with self._slots:
                    await self._drain_logged(member_id)
                if member_id not in self._again:
                    return
        finally:
            if self._inflight.get(member_id) is asyncio.current_task():
                del self._inflight[member_id]

    async def _drain_logged(self, member_id: str) -> None:
        """One drain; its trouble is logged and counted, never raised (retried next time)."""
        adopt = member_id in self._adopt
        self._adopt.discard(member_id)
        try:
            report = await self.drain(member_id, adopt=adopt)
        except Exception as exc:  # Redis, the portal, a token: the next wake-up or sweep retries
            metrics.OFFLINE_ERRORS.labels(member_id=member_id).inc()
            log.warning(
                "offline_drain_failed",
                member_id=member_id,
                error=type(exc).__name__,
                reason=str(exc)[:300],
            )
            return
        if not report.held and adopt:
            self._adopt.add(member_id)  # the holder's drain did not look: ours next time
        if report.rows or report.lease_lost or report.resumed or report.adopted:
            log.info("offline_drained", **vars(report))
        # the confirm rides with the next read; when none comes in CONFIRM_AFTER_S, one is made
        # (one timer per portal, set again by each drain: a busy portal needs none)
        timer = self._confirm_timers.pop(member_id, None)
        if timer is not None:
            timer.cancel()
        if report.owed and not self.drainer.stopping:
            self._confirm_timers[member_id] = asyncio.get_running_loop().call_later(
                CONFIRM_AFTER_S, self._follow_up, member_id
            )

    async def sweep(self) -> None:
        """Drain every flagged portal (and let go of the leases of portals no longer flagged)."""
        members = await self.portals.offline_event_portals()
        for gone in set(self.drainer.leases) - set(members):
            await self.drainer.forget(gone)
        self._adopt.update(members)  # a sweep also looks for orphaned reservations
        tasks = [self.kick(member_id) for member_id in members]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _on_wake(self, member_id: str) -> None:
        try:
            portal = await self.portals.get(member_id)
        except InvalidEvent:  # not a member id we could have published
            return
        if portal is None or not portal.offline_events:
            return
        self.kick(member_id)
        if portal.notice_min_timeout > 0:
            # the portal sends one notice per minTimeout and drops the rest
            # (docs/bitrix24-offline-events.md §1.10): rows written just after this notice
            # raise none, so look again once that window has passed
            handle = asyncio.get_running_loop().call_later(
                portal.notice_min_timeout + NOTICE_MARGIN_S, self._follow_up, member_id
            )
            self._follow_ups.add(handle)

    def _follow_up(self, member_id: str) -> None:
        now = asyncio.get_running_loop().time()
        self._follow_ups = {h for h in self._follow_ups if h.when() > now}  # those still to run
        if not self.drainer.stopping:
            self.kick(member_id)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Sweep every OFFLINE_POLL_S (jittered ±20 %) and on wake-ups until `stop` is set;
        then let the drains in flight finish their batch (up to the shutdown grace) and hand
        the leases over."""
        log.info(
            "offline_consumer_started",
            holder=self.holder,
            poll_s=self.poll_s,
            batch_limit=self.drainer.batch_limit,
        )
        listener = asyncio.create_task(
            listen(self._redis, self._keys.offline_wake, self._on_wake, stop)
        )
        try:
            while not stop.is_set():
                try:
                    await self.sweep()
                except Exception as exc:  # the registry is in Redis: retried next tick
                    log.warning("offline_sweep_failed", error=type(exc).__name__)
                await _wait(stop, self.poll_s * random.uniform(0.8, 1.2))
        finally:
            self.drainer.stopping = True
            for handle in [*self._follow_ups, *self._confirm_timers.values()]:
                handle.cancel()
            listener.cancel()
            drains = list(self._inflight.values())
            if drains:
                _, late = await asyncio.wait(drains, timeout=self.shutdown_grace_s)
                for task in late:
                    task.cancel()
            await asyncio.gather(listener, *drains, return_exceptions=True)
            await self._release_all()
            log.info("offline_consumer_stopped", holder=self.holder)

    async def _release_all(self) -> None:
        for lease in list(self.drainer.leases.values()):
            with contextlib.suppress(Exception):
                await lease.release()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds` or until `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
