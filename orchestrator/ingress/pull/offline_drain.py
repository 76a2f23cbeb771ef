"""Draining one portal's offline event queue: the two read modes, poison rows, the cursor.

The why and the overview are in orchestrator/ingress/pull/offline.py; this is the per-portal part
the consumer runs under the portal's lease: `OfflineDrainer.drain(member_id)`.

Extended mode (feature `rest_offline_extended` == "Y"): reserve with `clear=0`, write the process
id to the cursor, store every good row, mark poison rows with `event.offline.error`, confirm with
`event.offline.clear`, empty the cursor; a process id found in the cursor is re-read first.
At-most-once mode (anything else): `clear=1`, which deletes the rows as it returns them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from orchestrator.bitrix.client import BitrixClient
from orchestrator.bitrix.methods import PortalApi
from orchestrator.bitrix.models_v2 import OfflineEvent
from orchestrator.bitrix.offline import OFFLINE_EXTENDED, OfflineApi
from orchestrator.errors import AccessDenied, InvalidEvent, MethodError
from orchestrator.events.convert import stored_inputs
from orchestrator.events.models import Event, parse_event
from orchestrator.ingress.intake import fetched_payload, ingest_event
from orchestrator.ingress.pull.lease import PollLease
from orchestrator.observe import metrics
from orchestrator.pipeline.queue import now_ms
from orchestrator.pipeline.records import IngestResult
from orchestrator.pipeline.store import Store

__all__ = [
    "AT_MOST_ONCE_NOTE",
    "LEASE_NAME",
    "OFFLINE_EVENT_NAMES",
    "ORPHAN_PAGES",
    "DrainReport",
    "OfflineDrainer",
    "row_event",
]

log = structlog.get_logger(__name__)

LEASE_NAME = "offline"
# The events register-bot binds offline (orchestrator/cli/register_bot_v2.py OFFLINE_EVENTS).
OFFLINE_EVENT_NAMES = frozenset({"ONSESSIONSTART", "ONSESSIONFINISH", "ONOPENLINEMESSAGEADD"})
# `event.offline.list` pages (50 rows each) one sweep reads looking for orphaned reservations.
ORPHAN_PAGES = 4
AT_MOST_ONCE_NOTE = (
    "the portal lacks rest_offline_extended: rows are read with clear=1, which deletes them as "
    "it returns them, so a crash or a Redis outage between the read and the store loses that "
    "batch; the reconciliation of open dialogs is the safety net"
)


@dataclass
class DrainReport:
    """What one drain of one portal did (for logs and tests)."""

    member_id: str
    held: bool = False
    mode: str = ""  # "extended" | "at_most_once"
    batches: int = 0
    rows: int = 0
    ingested: int = 0
    duplicates: int = 0
    poison: int = 0
    resumed: int = 0  # batches re-read by the process id a crashed holder left
    owed: int = 0  # stored batches whose confirm goes out with the next read
    adopted: int = 0  # batches reserved under a process id nobody knew, finished here
    lease_lost: bool = False


class _LeaseLost(Exception):
    """The lease went to another holder: stop after the batch in hand."""


def _epoch(timestamp: str) -> int:
    """TIMESTAMP_X (ISO-8601 with offset, whole seconds) as Unix seconds; ValueError if absent."""
    moment = datetime.fromisoformat(timestamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def row_event(member_id: str, row: OfflineEvent) -> Event:
    """A queue row as the event its push would have been (the same dedup key and inputs);
    raises InvalidEvent or ValueError for a row we cannot use (poison)."""
    if row.event_name.upper() not in OFFLINE_EVENT_NAMES:
        raise InvalidEvent(f"event {row.event_name[:60]!r} is not one we bind offline", status=422)
    payload = fetched_payload(
        row.event_name, row.data, member_id=member_id, ts=_epoch(row.timestamp)
    )
    event = parse_event(payload)
    stored_inputs(event)  # a conversion that fails is poison: found here, before any write
    return event


async def _save(lease: PollLease, report: DrainReport, process_id: str, confirm: list[str]) -> bool:
    """Write the cursor under the lease: the batch being stored (a successor re-reads it) and
    the stored batches whose confirm is owed; False when the lease is gone."""
    report.owed = len(confirm)
    return await lease.save({"process_id": process_id, "confirm": " ".join(confirm)})


class OfflineDrainer:
    """Drains one portal at a time under its lease; caches each portal's licence answer."""

    def __init__(
        self,
        client: BitrixClient,
        store: Store,
        *,
        holder: str,
        batch_limit: int = 500,
        lease_ttl_ms: int = 15_000,
        auth_connector: str | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.holder = holder
        self.batch_limit = batch_limit
        self.lease_ttl_ms = lease_ttl_ms
        self.auth_connector = auth_connector
        self.leases: dict[str, PollLease] = {}
        self.extended: dict[str, bool] = {}
        self.stopping = False  # set: finish the batch in hand, read no other

    def lease(self, member_id: str) -> PollLease:
        """This process's lease object on one portal's offline queue."""
        lease = self.leases.get(member_id)
        if lease is None:
            lease = PollLease(
                self.store.redis,
                self.store.keys,
                member_id,
                LEASE_NAME,
                holder=self.holder,
                ttl_ms=self.lease_ttl_ms,
            )
            self.leases[member_id] = lease
        return lease

    async def forget(self, member_id: str) -> None:
        """Hand a portal's lease over and forget what we knew of it."""
        lease = self.leases.pop(member_id, None)
        self.extended.pop(member_id, None)
        if lease is not None:
            await lease.release()

    async def drain(self, member_id: str, *, adopt: bool = False) -> DrainReport:
        """Drain one portal's queue while batches come back full, if we hold (or take) its
        lease; `adopt`: then look for reservations nobody knows (`_adopt_orphans`). Raises on
        Redis or portal trouble (the caller retries later)."""
        report = DrainReport(member_id)
        lease = self.lease(member_id)
        if not await lease.acquire():
            return report
        report.held = True
        metrics.OFFLINE_TAKEOVERS.labels(member_id=member_id).inc()
        try:
            return await self._drain_held(member_id, lease, report, adopt=adopt)
        finally:
            # held for one drain only: the next wake-up or sweep, in whichever worker, takes it
            # at once (the cursor keeps a reserved batch's process id for it)
            await lease.release()

    async def _drain_held(
        self, member_id: str, lease: PollLease, report: DrainReport, *, adopt: bool
    ) -> DrainReport:
        api = self.client.api(member_id)
        extended = await self._probe(member_id, api)
        report.mode = "extended" if extended else "at_most_once"
        queue = api.offline(auth_connector=self.auth_connector)
        try:
            while True:
                if extended:
                    more = await self._reserved_batch(member_id, queue, lease, report)
                else:
                    more = await self._taken_batch(member_id, queue, report)
                if not more or self.stopping:
                    break
                if not await lease.renew():
                    raise _LeaseLost
            if extended and adopt and not self.stopping:
                await self._adopt_orphans(member_id, queue, lease, report)
        except _LeaseLost:
            report.lease_lost = True
            report.owed = 0  # the new holder's drain sends them
            log.warning("offline_lease_lost", member_id=member_id, holder=self.holder)
        except AccessDenied as exc:
            if exc.code == "WRONG_LICENSE":  # the licence changed: ask feature.get again
                self.extended.pop(member_id, None)
            raise
        return report

    async def _adopt_orphans(
        self, member_id: str, queue: OfflineApi, lease: PollLease, report: DrainReport
    ) -> None:
        """Finish the batches reserved under a process id our cursor does not know: a read
        whose answer was lost, or a holder that died before writing the id down. Under the
        lease nobody else reads, so such rows would stay reserved until the portal's 30-day
        purge. Each is re-read by its id, stored (deduplicated) and confirmed like our own."""
        cursor = await lease.cursor()
        seen = {"", cursor.get("process_id", ""), *cursor.get("confirm", "").split()}
        orphans: list[str] = []
        start: int | None = None
        for _ in range(ORPHAN_PAGES):  # bounded: one sweep looks at this many rows at most
            page = await queue.list(filter={">PROCESS_ID": ""}, order={"ID": "ASC"}, start=start)
            for row in page.items:
                if row.process_id not in seen:
                    seen.add(row.process_id)
                    orphans.append(row.process_id)
            start = page.next
            if start is None:
                break
        for process_id in orphans:
            report.adopted += 1
            log.warning("offline_orphan_adopted", member_id=member_id, process_id=process_id)
            if not await lease.save({"process_id": process_id}):
                raise _LeaseLost
            await self._reserved_batch(member_id, queue, lease, report)  # resumes it

    async def _probe(self, member_id: str, api: PortalApi) -> bool:
        known = self.extended.get(member_id)
        if known is None:
            known = await api.feature_get(OFFLINE_EXTENDED) == "Y"
            self.extended[member_id] = known
            if known:
                log.info("offline_extended", member_id=member_id)
            else:
                log.warning("offline_at_most_once", member_id=member_id, note=AT_MOST_ONCE_NOTE)
        return known

    async def _reserved_batch(
        self, member_id: str, queue: OfflineApi, lease: PollLease, report: DrainReport
    ) -> bool:
        """Reserve (or resume) and store one batch, confirming the batches stored before it in
        the same request; whether to read another."""
        cursor = await lease.cursor()
        resumed = cursor.get("process_id", "")
        owed = cursor.get("confirm", "").split()
        if resumed:
            batch = await queue.get(process_id=resumed, limit=self.batch_limit)
            report.resumed += 1
            log.info(
                "offline_batch_resumed",
                member_id=member_id,
                process_id=resumed,
                rows=len(batch.events),
            )
            if batch.events:
                await self._store_batch(member_id, queue, resumed, batch.events, report)
            if not await _save(lease, report, "", [*owed, resumed]):
                raise _LeaseLost
            return True
        # The confirms owed go out with the read: the coalescer sends them as one request.
        clears = [asyncio.create_task(queue.clear(process_id)) for process_id in owed]
        read = asyncio.create_task(queue.get(limit=self.batch_limit))
        cleared = await asyncio.gather(*clears, return_exceptions=True)
        await asyncio.wait([read])
        # A confirm the portal refused (MethodError: it answered, and would answer the same) is
        # let go, its rows already stored; one lost on the way is owed again.
        still_owed = [
            p
            for p, c in zip(owed, cleared, strict=True)
            if isinstance(c, BaseException) and not isinstance(c, MethodError)
        ]
        for process_id, failed in zip(owed, cleared, strict=True):
            if isinstance(failed, BaseException):
                log.warning(
                    "offline_clear_failed",
                    member_id=member_id,
                    process_id=process_id,
                    error=type(failed).__name__,
                    owed_again=process_id in still_owed,
                )
        if len(still_owed) < len(owed):
            metrics.OFFLINE_BATCHES.labels(member_id=member_id, mode="cleared").inc(
                len(owed) - len(still_owed)
            )
        if read.exception() is not None and len(still_owed) < len(owed):
            await _save(lease, report, "", still_owed)  # what the failed read cleared
        batch = read.result()  # raises the read's error
        process_id = (batch.process_id or "") if batch.events else ""  # an empty read has one too
        if batch.events and not process_id:
            raise InvalidEvent("event.offline.get clear=0 returned rows without a process id")
        # written before any row is stored: a successor re-reads this batch after our crash
        kept = await _save(lease, report, process_id, still_owed)
        if not batch.events:
            metrics.OFFLINE_LAG_SECONDS.labels(member_id=member_id).set(0)
            if not kept:
                raise _LeaseLost
            return False
        await self._store_batch(member_id, queue, process_id, batch.events, report)
        if not kept or not await _save(lease, report, "", [*still_owed, process_id]):
            raise _LeaseLost
        return len(batch.events) >= self.batch_limit

    async def _store_batch(
        self,
        member_id: str,
        queue: OfflineApi,
        process_id: str,
        rows: list[OfflineEvent],
        report: DrainReport,
    ) -> None:
        """Store a reserved batch's good rows and turn its poison rows into error rows."""
        poison = await self._store_rows(member_id, rows, report)
        if poison:
            await queue.error(process_id, poison)
        report.batches += 1

    async def _taken_batch(self, member_id: str, queue: OfflineApi, report: DrainReport) -> bool:
        """Read one batch with clear=1 (deleted by the read) and store it; whether to read on."""
        await self.store.redis.ping()  # no read while Redis is out: the rows would be lost
        batch = await queue.get(clear=True, limit=self.batch_limit)
        if not batch.events:
            metrics.OFFLINE_LAG_SECONDS.labels(member_id=member_id).set(0)
            return False
        report.batches += 1
        metrics.OFFLINE_BATCHES.labels(member_id=member_id, mode="taken").inc()
        try:
            await self._store_rows(member_id, batch.events, report)
        except BaseException:
            log.error(
                "offline_batch_lost",
                member_id=member_id,
                rows=len(batch.events),
                stored=report.ingested + report.duplicates,
                message_ids=[row.message_id for row in batch.events],
                note=AT_MOST_ONCE_NOTE,
            )
            raise
        return len(batch.events) >= self.batch_limit

    async def _store_rows(
        self, member_id: str, rows: list[OfflineEvent], report: DrainReport
    ) -> list[str]:
        """Ingest every usable row; the MESSAGE_IDs of the poison ones."""
        first = rows[0].timestamp
        with contextlib.suppress(ValueError):
            lag = max(0.0, time.time() - _epoch(first))
            metrics.OFFLINE_LAG_SECONDS.labels(member_id=member_id).set(lag)
        poison: list[str] = []
        for row in rows:
            report.rows += 1
            try:
                event = row_event(member_id, row)
            except (InvalidEvent, ValueError) as exc:  # pydantic's ValidationError included
                poison.append(row.message_id)
                report.poison += 1
                metrics.OFFLINE_ROWS.labels(member_id=member_id, outcome="poison").inc()
                log.warning(
                    "offline_row_poison",
                    member_id=member_id,
                    row_id=row.id,
                    message_id=row.message_id,
                    event_name=row.event_name[:60],
                    reason=str(exc)[:300],
                )
                continue
            result = await ingest_event(self.store, event, now_ms())
            duplicate = result is IngestResult.DUPLICATE
            report.duplicates += duplicate
            report.ingested += not duplicate
            outcome = "duplicate" if duplicate else "ingested"
            metrics.OFFLINE_ROWS.labels(member_id=member_id, outcome=outcome).inc()
        return poison
