"""The event ledger: a pass-through between the portal and the ingresses that writes down every
event they acknowledged, and the per-event accounting at the end of a chaos run.

It plays the load balancer in front of the ingress replicas, as production runs them: a POST
goes to the next replica in turn, and one that fails (refused, reset, timed out, a 5xx) is sent
to the next replica instead, up to one try each. The ingress deduplicates, so a retried event is
absorbed where the first try did land (nginx: `proxy_next_upstream error timeout http_502
http_503 non_idempotent`; docs/operations.md §2).

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

    targets: list[str] = field(default_factory=list)
    acknowledged: set[EventId] = field(default_factory=set)
    spooled: int = 0  # acknowledgements that said the event went to the spool
    refused: int = 0  # deliveries no ingress acknowledged (the portal never retries)
    failovers: int = 0  # tries a replica failed and the next one took
    url: str = ""
    _next: int = 0
    _runner: web.AppRunner | None = None
    _http: aiohttp.ClientSession | None = None

    def tap(self, ingress_event_urls: list[str]) -> str:
        """Balance over the ingresses; the portal posts to the returned URL (StackOptions)."""
        self.targets = list(ingress_event_urls)
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
        self._next = (self._next + 1) % max(1, len(self.targets))
        order = self.targets[self._next :] + self.targets[: self._next]
        for n, target in enumerate(order):
            if n:
                self.failovers += 1
            answer = await self._try(target, body, content_type)
            if answer is not None and answer[0] < 500:
                break
        else:
            self.refused += 1
            return web.Response(status=502)
        status, reply = answer
        if status == 200:
            event_id = _identify(body, content_type)
            if event_id is not None:
                self.acknowledged.add(event_id)
            self.spooled += b'"spooled"' in reply
        else:
            self.refused += 1
        return web.Response(status=status, body=reply, content_type="application/json")

    async def _try(self, target: str, body: bytes, content_type: str) -> tuple[int, bytes] | None:
        assert self._http is not None, "the ledger forwards only once started"
        try:
            async with self._http.post(
                target, data=body, headers={"Content-Type": content_type}
            ) as answer:
                return answer.status, await answer.read()
        except (aiohttp.ClientError, TimeoutError):
            return None


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
    for path in Path(directory).rglob("spool-*.*"):  # every replica's spool, below the first
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
