"""The event ledger: a pass-through between the portal and the ingress that writes down every
event the ingress acknowledged, and the per-event accounting at the end of a chaos run.

Every acknowledged event is identified the way the ingress stores it: (member_id, dialog,
dedup key), parsed from the very body the ingress answered 200 to (spooled ones included). At the
end each one must be found in exactly one place:

    handled   its id is in the dialog's history: a worker committed it (or dead-lettered it)
    queued    its id is still in the dialog's inbox (accepted, not yet applied)
    spooled   it is still in a spool file (acknowledged while Redis was down, not replayed)
    lost      none of these: acknowledged, then gone
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from orchestrator.errors import InvalidEvent
from orchestrator.ingress.intake import parse_body
from orchestrator.ingress.spool import Spool
from orchestrator.pipeline.keys import PORTAL_DIALOG
from orchestrator.pipeline.records import StoredEvent
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings

__all__ = ["Accounting", "EventLedger", "account"]

EventId = tuple[str, str, str]  # member_id, dialog, dedup key


def _identify(body: bytes, content_type: str) -> EventId | None:
    try:
        _, event = parse_body(body, content_type)
    except InvalidEvent:
        return None
    return event.member_id, event.dialog_id or PORTAL_DIALOG, event.dedup_key


@dataclass
class EventLedger:
    """Serves `/b24/events` on loopback and forwards each request to the ingress unchanged."""

    target: str = ""
    acknowledged: set[EventId] = field(default_factory=set)
    spooled: int = 0  # acknowledgements that said the event went to the spool
    refused: int = 0  # deliveries the ingress did not acknowledge (the portal never retries)
    url: str = ""
    _runner: web.AppRunner | None = None
    _http: aiohttp.ClientSession | None = None

    def tap(self, ingress_event_url: str) -> str:
        """Forward to the ingress; the portal posts to the returned URL (StackOptions.event_tap)."""
        self.target = ingress_event_url
        return self.url

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/b24/events", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/b24/events"
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def close(self) -> None:
        """Stop listening; close the forwarding session."""
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        assert self._http is not None, "the ledger forwards only once started"
        try:
            async with self._http.post(
                self.target, data=body, headers={"Content-Type": content_type}
            ) as answer:
                reply = await answer.read()
                status = answer.status
        except (aiohttp.ClientError, TimeoutError):
            self.refused += 1
            return web.Response(status=502)
        if status == 200:
            event_id = _identify(body, content_type)
            if event_id is not None:
                self.acknowledged.add(event_id)
            self.spooled += b'"spooled"' in reply
        else:
            self.refused += 1
        return web.Response(status=status, body=reply, content_type="application/json")


@dataclass
class Accounting:
    """Where every acknowledged event ended up."""

    acknowledged: int = 0
    spooled_on_ack: int = 0
    handled: int = 0
    dead_lettered: int = 0
    queued: int = 0
    still_spooled: int = 0
    lost: int = 0
    refused: int = 0
    lost_examples: list[str] = field(default_factory=list)


def _spool_ids(directory: str) -> set[EventId]:
    found: set[EventId] = set()
    for path in Path(directory).glob("spool-*.*"):
        for record in Spool.read(path):
            event_id = _identify(record.body, record.content_type)
            if event_id is not None:
                found.add(event_id)
    return found


async def _dialog_ids(store: Store, member_id: str, dialog: str) -> tuple[dict[str, str], set[str]]:
    """The dialog's history ids (id -> outcome) and its inbox ids."""
    d = store.dialog(member_id, dialog)
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.lrange(d.history, 0, -1)
        pipe.lrange(d.inbox, 0, -1)
        history, inbox = await pipe.execute()
    done: dict[str, str] = {}
    for raw in history:
        record: dict[str, Any] = json.loads(raw)
        done[str(record.get("event_id"))] = str(record.get("outcome"))
    queued = {StoredEvent.from_entry(member_id, dialog, e).event_id for e in inbox}
    return done, queued


def _by_dialog(ids: set[EventId]) -> Iterator[tuple[tuple[str, str], set[str]]]:
    grouped: dict[tuple[str, str], set[str]] = {}
    for member_id, dialog, key in ids:
        grouped.setdefault((member_id, dialog), set()).add(key)
    yield from grouped.items()


async def account(redis: aioredis.Redis, settings: Settings, ledger: EventLedger) -> Accounting:
    """Find every acknowledged event in the history, the inbox or the spool."""
    store = Store(redis, settings)
    spool = await asyncio.to_thread(_spool_ids, settings.spool_dir)
    result = Accounting(
        acknowledged=len(ledger.acknowledged),
        spooled_on_ack=ledger.spooled,
        refused=ledger.refused,
    )
    for (member_id, dialog), keys in _by_dialog(ledger.acknowledged):
        done, queued = await _dialog_ids(store, member_id, dialog)
        for key in keys:
            if key in done:
                result.handled += 1
                result.dead_lettered += done[key] == "dead"
            elif key in queued:
                result.queued += 1
            elif (member_id, dialog, key) in spool:
                result.still_spooled += 1
            else:
                result.lost += 1
                if len(result.lost_examples) < 10:
                    result.lost_examples.append(f"{member_id[:8]}/{dialog}: {key}")
    return result
