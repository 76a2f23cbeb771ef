"""Outbound events: the portal's queue server. Each payload is form-encoded like PHP
`http_build_query` and POSTed once — never retried, as on the real portal [docs/bitrix24.md §8].
Every attempt is journaled (`event_posted`) in the portal's journal once its outcome is known; a
push the portal's drop plan loses (emulator.push_drops) is journaled `event_dropped` instead."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

import aiohttp
import structlog

from emulator.journal import Journal
from emulator.push_drops import PushDrops, journal_drop
from emulator.transport import http_build_query

log = structlog.get_logger(__name__)

_Item = tuple[str, str, dict[str, Any], dict[str, Any]]  # (member_id, url, payload, note)


class EventDelivery:
    """One queue and one worker for every portal: events leave in the order they were raised."""

    def __init__(self, timeout_s: float = 10.0, log_size: int = 2000) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self._session: aiohttp.ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None
        self._journals: dict[str, Journal] = {}
        self._drops: dict[str, PushDrops] = {}

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._worker = asyncio.create_task(self._run(), name="emulator-event-delivery")

    async def close(self) -> None:
        """Stop delivering; events still queued are dropped, as a portal shutting down would."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def sink(self, member_id: str) -> PortalSink:
        """The EventSink handed to one portal."""
        return PortalSink(self, member_id)

    def attach_journal(self, member_id: str, journal: Journal) -> None:
        """Journal the deliveries of one portal's events into `journal`."""
        self._journals[member_id] = journal

    def attach_drops(self, member_id: str, drops: PushDrops) -> None:
        """Let `drops` lose some of one portal's pushes before they are sent."""
        self._drops[member_id] = drops

    def enqueue(
        self,
        member_id: str,
        url: str,
        payload: dict[str, Any],
        note: dict[str, Any] | None = None,
    ) -> None:
        self._queue.put_nowait((member_id, url, payload, dict(note or {})))

    async def settle(self) -> None:
        """Wait until every queued event has been attempted."""
        await self._queue.join()

    def log(self, member_id: str | None = None) -> list[dict[str, Any]]:
        """The deliveries attempted so far (oldest first), optionally for one portal."""
        return [dict(e) for e in self._log if member_id is None or e["member_id"] == member_id]

    async def _run(self) -> None:
        while True:
            member_id, url, payload, note = await self._queue.get()
            try:
                drops = self._drops.get(member_id)
                reason = drops.decide(str(payload.get("event") or "")) if drops else None
                if reason is not None:  # lost on the way: no attempt, never retried
                    journal_drop(self._journals.get(member_id), url, payload, note, reason)
                    continue
                entry = await self._deliver(member_id, url, payload)
                self._journal(member_id, entry, note)
            finally:
                self._queue.task_done()

    def _journal(self, member_id: str, entry: dict[str, Any], note: dict[str, Any]) -> None:
        journal = self._journals.get(member_id)
        if journal is None:
            return
        fields = {
            "name": str(entry["event"] or "").upper(),
            **({"chat_id": note["chat_id"]} if note.get("chat_id") else {}),
            "dedup": note.get("dedup"),
            "url": entry["url"],
            "status": entry["status"],
            "ok": entry["status"] == 200,
        }
        if entry["error"] is not None:
            fields["error"] = entry["error"]
        journal.append("event_posted", **fields)

    async def _deliver(self, member_id: str, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "member_id": member_id,
            "url": url,
            "event": payload.get("event"),
            "status": None,
            "error": None,
            "ts": time.time(),
        }
        self._log.append(entry)
        assert self._session is not None, "delivery used before start()"
        body = http_build_query(payload)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            async with self._session.post(url, data=body.encode(), headers=headers) as resp:
                await resp.read()
                entry["status"] = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # The queue server gives up at once: the event is lost for this handler.
            entry["error"] = f"{type(exc).__name__}: {exc}"
            log.info(
                "event_delivery_failed", url=url, event_name=entry["event"], error=entry["error"]
            )
        return entry


class PortalSink:
    """EventSink for one portal: tags each event with the portal's member_id."""

    def __init__(self, delivery: EventDelivery, member_id: str) -> None:
        self._delivery = delivery
        self.member_id = member_id

    def post(self, url: str, payload: dict[str, Any], note: dict[str, Any] | None = None) -> None:
        self._delivery.enqueue(self.member_id, url, payload, note)
