"""The fetcher: one v2 bot's event log (`imbot.v2.Event.get`) into our inboxes, losing nothing.

The portal keeps a fetch-mode bot's events for 24 hours, until a call with a larger `offset`
deletes them (docs/bitrix24-bots-v2.md "Fetch mode"): the offset is a confirmation, not a
cursor. So the order of one round is fixed, and each step is safe to die after:

1. `Event.get {offset}` with the offset we saved last: the portal deletes what is below it
   (all of it stored by us before we saved it) and returns what is at or above it;
2. every event goes through the ingress's one-call ingest (dedup by its key, so a page read
   twice is handled once), then `WAITAOF` asks Redis to have it on disk;
3. the page's `nextOffset` is saved under our lease (a poller that lost the lease saves
   nothing); the portal hears of it only with step 1 of the next round.

3b. when the page was the last (`hasMore` false), the time the call was made is written as the
   bot's watermark: the dialogs' timers fire only up to it (orchestrator/pipeline/timers.py), so
   a silence timer never beats the client's answer still waiting in the portal's log.

Die after 1: the next round reads the same events again. After 2: they are deduplicated. After
3: the next holder confirms them. The offset never passes an event we have not stored, and an
event we could not parse (an event type the dialog does not know) is logged and counted, as the
HTTP ingress answers 422 to it.

Cadence, within the platform's guidance (poll every 5–30 s when idle, ≥ 2 s between pages):
`busy_s` after a full page or one that brought events we had not stored, `idle_min_s` after a
page of events we already had (its confirmation goes with the next poll), then `idle_min_s`
doubling to `idle_max_s` while the log stays empty. Where the portal's Open Lines events
are bound offline, the offline consumer's drains (one per ONOFFLINEEVENT notice) bring the
client's messages in first, and the log only confirms them. A dialog timer held back by the
watermark (orchestrator/pipeline/timers.py) publishes `Keys.fetch_wake`, which brings the next
poll forward (never closer than `min_gap_s` to the last). While a keyboard of ours is out
(`Keys.keyboards`, set by the executor when it sends one, which also wakes the poller), the idle
wait stays at `idle_min_s`: a button press has no other way to us. Each poll is one call through the
REST client, whose coalescer sends it first and lets it ride inside a `batch` with the dialogs'
own calls when there are any (orchestrator/bitrix/batch.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from redis.exceptions import ResponseError

from orchestrator.bitrix.bot_v2 import BotV2Api
from orchestrator.bitrix.models_v2 import BotEvent
from orchestrator.errors import InvalidEvent
from orchestrator.events.bots_v2 import fetched_ts
from orchestrator.events.models import parse_event
from orchestrator.ingress.intake import fetched_payload, ingest_event
from orchestrator.ingress.pull.lease import PollLease
from orchestrator.observe import metrics
from orchestrator.pipeline.records import IngestResult
from orchestrator.pipeline.store import Store

__all__ = ["WATERMARK_TTL_S", "BotFetcher", "Cadence", "Round"]

# A watermark no poller renewed for this long stops holding the dialogs' timers back.
WATERMARK_TTL_S = 3600

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Cadence:
    """How often to poll (seconds) and how much to ask for."""

    busy_s: float = 2.0
    idle_min_s: float = 5.0
    idle_max_s: float = 30.0
    limit: int = 500
    waitaof_ms: int = 200
    min_gap_s: float = 1.0  # the soonest a notice may bring the next poll

    def after(self, round_: Round, previous: float) -> float:
        """The wait before the next poll, given what this one did and the last wait: busy while
        pages are full or bring events we had not stored yet; a page of events the offline
        queue's drains already brought in (the client's messages, on a portal with offline
        events) is no reason to poll fast, but its confirmation goes out only with the next
        poll, so that comes after `idle_min_s`; empty pages back off to `idle_max_s`."""
        if round_.has_more or round_.stored:
            return self.busy_s
        if round_.fetched:
            return self.idle_min_s
        return min(self.idle_max_s, max(self.idle_min_s, previous * 2))


@dataclass(frozen=True)
class Round:
    """What one poll did."""

    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    refused: int = 0
    offset: int = 0
    has_more: bool = False
    saved: bool = True


# A hook for the fault tests: called with the name of each step as it is reached.
Checkpoint = Callable[[str], Awaitable[None]]


async def _no_checkpoint(_: str) -> None:
    return None


class BotFetcher:
    """Polls one bot's event log while it holds that bot's lease."""

    def __init__(
        self,
        store: Store,
        lease: PollLease,
        bots: BotV2Api,
        bot_id: int,
        *,
        cadence: Cadence | None = None,
        checkpoint: Checkpoint = _no_checkpoint,
    ) -> None:
        self.store = store
        self.lease = lease
        self.bots = bots
        self.bot_id = bot_id
        self.member_id = lease.member_id
        self.cadence = cadence or Cadence()
        self._checkpoint = checkpoint
        self._aof = True  # False once Redis says it keeps no AOF
        # set by a notice from the portal (wake.py): poll now rather than at the next tick
        self.wake = asyncio.Event()

    async def poll_once(self) -> Round:
        """One round (steps 1–3 above); the caller holds the lease."""
        cursor = await self.lease.cursor()
        offset = int(cursor.get("offset") or 0)
        started = time.monotonic()
        asked_ms = int(time.time() * 1000)  # everything the portal logged before this is read
        page = await self.bots.events(self.bot_id, offset=offset, limit=self.cadence.limit)
        metrics.FETCH_POLLS.labels(member_id=self.member_id, empty=str(not page.events)).inc()
        await self._checkpoint("fetched")
        stored = duplicates = refused = 0
        for row in page.events:
            outcome = await self._ingest(row)
            if outcome is None:
                refused += 1
            elif outcome is IngestResult.DUPLICATE:
                duplicates += 1
            else:
                stored += 1
        if page.events:
            await self._durable()
            metrics.FETCH_EVENTS.labels(member_id=self.member_id).inc(len(page.events))
            newest = max(fetched_ts(row.date, time.time()) for row in page.events)
            metrics.FETCH_LAG.labels(member_id=self.member_id).set(max(0.0, time.time() - newest))
        await self._checkpoint("stored")
        saved = True
        if page.next_offset != offset:
            saved = await self.lease.save({"offset": page.next_offset})
            if saved:
                metrics.FETCH_CONFIRMS.labels(member_id=self.member_id).inc()
        if saved and not page.has_more:
            await self._mark(asked_ms)
        log.debug(
            "bot_events_fetched",
            bot_id=self.bot_id,
            fetched=len(page.events),
            stored=stored,
            duplicates=duplicates,
            offset=page.next_offset,
            took_ms=round((time.monotonic() - started) * 1000),
        )
        return Round(
            fetched=len(page.events),
            stored=stored,
            duplicates=duplicates,
            refused=refused,
            offset=page.next_offset,
            has_more=page.has_more,
            saved=saved,
        )

    async def _ingest(self, row: BotEvent) -> IngestResult | None:
        """Store one fetched event; None when it is not an event we take."""
        payload = fetched_payload(
            row.type,
            row.data,
            member_id=self.member_id,
            ts=fetched_ts(row.date, time.time()),
            event_id=row.event_id,
        )
        try:
            event = parse_event(payload)
        except InvalidEvent as exc:
            # as the HTTP ingress refuses it with 422/400: an event type we do not handle
            metrics.FETCH_REFUSED.labels(member_id=self.member_id, reason=exc.code or "").inc()
            log.info(
                "bot_event_skipped", event_id=row.event_id, type=row.type[:60], reason=str(exc)
            )
            return None
        return await ingest_event(self.store, event)

    async def _mark(self, asked_ms: int) -> None:
        """The log is in our inboxes up to when we asked: the dialogs' timers may fire up to
        there (orchestrator/pipeline/timers.py). Expires when no poller renews it."""
        key = self.store.keys.watermark(self.member_id)
        async with self.store.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, f"bot-{self.bot_id}", str(asked_ms))
            pipe.expire(key, WATERMARK_TTL_S)
            await pipe.execute()

    async def _durable(self) -> None:
        """Wait until Redis has the writes in its append-only file (when it keeps one), so a
        crash of Redis right after cannot lose what the portal is about to delete."""
        if not self._aof:
            return
        try:
            await self.store.redis.execute_command(  # type: ignore[no-untyped-call]
                "WAITAOF", 1, 0, self.cadence.waitaof_ms
            )
        except ResponseError as exc:
            # "WAITAOF cannot be used when numlocal is set but appendonly is disabled", or a
            # server that predates WAITAOF: acknowledged writes are what we have
            self._aof = False
            log.warning("fetcher_without_aof", reason=str(exc)[:120])

    async def run(self, stop: asyncio.Event) -> None:
        """Poll while we hold the lease; return when it is lost or on `stop`."""
        wait = 0.0
        while not stop.is_set() and await self.lease.renew():
            round_ = await self.poll_once()
            if not round_.saved:
                break
            wait = await self.next_wait(round_, wait)
            await self._sleep_holding(wait, stop)

    async def next_wait(self, round_: Round, previous: float) -> float:
        """The cadence's wait, kept at the quick end of the idle range while a button of ours
        may be pressed: its press comes only through this log (no offline event carries it)."""
        wait = self.cadence.after(round_, previous)
        if wait > self.cadence.idle_min_s and await self.store.redis.exists(
            self.store.keys.keyboards(self.member_id)
        ):
            return self.cadence.idle_min_s
        return wait

    async def _sleep_holding(self, seconds: float, stop: asyncio.Event) -> None:
        """Sleep until the next poll is due or a notice wakes us (but not sooner than
        `min_gap_s` after the last poll), renewing the lease often enough that a standby never
        takes a live one."""
        step = max(0.2, self.lease.ttl_ms / 3000)
        started = time.monotonic()
        deadline = started + seconds
        self.wake.clear()
        while not stop.is_set():
            now = time.monotonic()
            if now >= deadline or (self.wake.is_set() and now - started >= self.cadence.min_gap_s):
                return
            wait = min(step, deadline - now)
            if self.wake.is_set():
                wait = min(wait, started + self.cadence.min_gap_s - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(0.01, wait))
            if not await self.lease.renew():
                return
