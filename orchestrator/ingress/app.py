"""The aiohttp ingress: verify → persist → enqueue → 200; health, readiness and metrics.

Acknowledged means persisted: in Redis (one Lua call), or — while Redis is unreachable — in the
local spool, because Bitrix24 never re-delivers an event and a 5xx would lose it for good. When
the spool cannot take it either (a full disk, its cap, an unwritable volume), the answer is a 503
that says why, and the loss is logged and counted: it is lost all the same, but never silently.
`start_ingress` is the one way it is served (the CLI, the demo stack and the tests alike), so
the connection limits production runs with are the ones the tests exercise.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path

import redis.asyncio as aioredis
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator.bitrix.auth import AuthStore
from orchestrator.bitrix.bot_store import BotStore
from orchestrator.bitrix.transport import Transport
from orchestrator.errors import ConfigurationError, InvalidEvent, SpoolUnavailable
from orchestrator.events.models import Event, OfflineEventNotice
from orchestrator.ingress.connections import IdleConnectionCap
from orchestrator.ingress.install import VERIFY_TIMEOUT_S, InstallVerifier
from orchestrator.ingress.intake import ERROR_CODES, Intake, error_code, parse_body, spooled_body
from orchestrator.ingress.portals import ConfiguredPortal, Portals
from orchestrator.ingress.spool import Spool, SpoolRecord
from orchestrator.ingress.spool_replay import SpoolReplayer
from orchestrator.observe import metrics
from orchestrator.pipeline.epoch import EpochWatch
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.queue import now_ms
from orchestrator.pipeline.records import IngestResult
from orchestrator.pipeline.store import Store
from orchestrator.redis.client import open_client
from orchestrator.settings import Settings

__all__ = [
    "INTAKE",
    "REDIS",
    "SETTINGS",
    "SPOOL",
    "IngressServer",
    "build_app",
    "open_redis",
    "start_ingress",
]

log = structlog.get_logger(__name__)

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", aioredis.Redis)
INTAKE = web.AppKey("intake", Intake)
SPOOL = web.AppKey("spool", Spool)
SPOOL_LOCK = web.AppKey("spool_lock", asyncio.Lock)
EPOCH = web.AppKey("epoch", EpochWatch)
# The ingress remembers Redis's epoch beside its spool (the volume that outlives the process).
EPOCH_MARKER = ".redis-epoch"

# the two answers of the hot path, serialized once
_ACCEPTED = json.dumps({"ok": True, "duplicate": False}).encode()
_DUPLICATE = json.dumps({"ok": True, "duplicate": True}).encode()

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
READY_PING_TIMEOUT_S = 0.5
EPOCH_START_TIMEOUT_S = 2.0


def open_redis(settings: Settings) -> aioredis.Redis:
    """A client that gives up quickly, so an outage turns into spooling, not hanging requests."""
    if not settings.redis_url:
        raise ConfigurationError("REDIS_URL is not set")
    return open_client(settings.redis_url, socket_connect_timeout=1.0, socket_timeout=2.0)


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = open_redis(settings)
    app[REDIS] = client
    # the one outbound call an ingress makes: an install's grant, at the OAuth server
    oauth = Transport(timeout_s=VERIFY_TIMEOUT_S, max_connections=4)
    await oauth.open()
    app[INTAKE] = Intake(
        Store(client, settings),
        Portals(client, Keys(settings.key_prefix)),
        InstallVerifier(settings, oauth),
        AuthStore(client, prefix=settings.key_prefix),
        ConfiguredPortal.from_settings(settings),
        BotStore(client, prefix=settings.key_prefix),
    )
    yield
    await oauth.close()
    await client.aclose()


async def _stop(task: asyncio.Task[None], stopping: asyncio.Event) -> None:
    """End a background loop: the event first, since on Python 3.11 a cancel can be lost inside
    redis-py (its `asyncio.wait_for` returns the result of a send that finished meanwhile)."""
    stopping.set()
    task.cancel()
    await asyncio.wait([task])


async def _epoch_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[EPOCH] = watch = EpochWatch(
        app[REDIS],
        Keys(settings.key_prefix),
        who=f"ingress {socket.gethostname()}:{os.getpid()}",
        on_loss=app[INTAKE].ensure_configured,
        marker=Path(settings.spool_dir) / EPOCH_MARKER,
        interval_s=settings.redis_epoch_check_s,
    )
    # known before the first event is served, when Redis answers (else the loop learns it later)
    with contextlib.suppress(RedisError, OSError, TimeoutError):
        async with asyncio.timeout(EPOCH_START_TIMEOUT_S):
            await watch.start()
    stopping = asyncio.Event()
    task = asyncio.create_task(watch.run(stopping))
    yield
    await _stop(task, stopping)


async def _spool_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[SPOOL] = spool = Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes)
    app[SPOOL_LOCK] = lock = asyncio.Lock()
    replayer = SpoolReplayer(spool, lock, app[INTAKE], app[REDIS], settings)
    stopping = asyncio.Event()
    task = asyncio.create_task(replayer.run(stopping))
    yield
    await _stop(task, stopping)
    async with lock:
        await asyncio.to_thread(spool.close)


# Every reason a refusal is counted under exists from the start, so the exposition's series never
# depend on what strangers send.
for _code in {*ERROR_CODES.values(), "install_refused", "rejected"}:
    metrics.EVENTS_REJECTED.labels(reason=_code)


@functools.lru_cache(maxsize=4096)
def _accepted_counter(name: str, member_id: str) -> Counter:
    """EVENTS_IN's child for these labels (`.labels()` takes a lock and builds a dict per call)."""
    # names are the few handled events and member ids are verified portals: the cache stays
    # small, and it is bounded all the same
    return metrics.EVENTS_IN.labels(event=name, member_id=member_id)


def _reject(exc: InvalidEvent) -> web.Response:
    code = error_code(exc)
    metrics.EVENTS_REJECTED.labels(reason=code).inc()
    return web.json_response({"error": code, "reason": exc.reason}, status=exc.status)


async def _read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise InvalidEvent(f"body of {request.content_length} bytes exceeds {limit}", status=413)
    try:
        if request.content.is_eof():  # the usual case: the body came with the headers
            body = await request.read()
        else:  # a slow (or slowloris) client must not hold a request open for long
            async with asyncio.timeout(timeout_s):
                body = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise InvalidEvent(f"body exceeds {limit} bytes", status=413) from exc
    except TimeoutError as exc:
        raise InvalidEvent(f"body not received within {timeout_s} s", status=408) from exc
    if len(body) > limit:  # a chunked body has no Content-Length to check up front
        raise InvalidEvent(f"body exceeds {limit} bytes", status=413)
    return body


async def handle_event(request: web.Request) -> web.Response:
    """POST /b24/events: one Bitrix24 event."""
    started = time.perf_counter()
    app = request.app
    received = now_ms()
    try:
        settings = app[SETTINGS]
        body = await _read_body(
            request, settings.ingress_max_body_bytes, settings.ingress_body_timeout_s
        )
        content_type = request.headers.get("Content-Type", "")
        payload, event = parse_body(body, content_type)
        try:
            result = await app[INTAKE].accept(event, received)
        except UNREACHABLE as exc:
            if isinstance(event, OfflineEventNotice):  # a hint: the sweep catches up, keep none
                return web.json_response({"ok": True, "hint": "dropped"})
            try:
                record = SpoolRecord(spooled_body(event, payload), "application/json", received)
                await _spool(app, record, exc)
            except SpoolUnavailable as lost:
                return _lost(event, lost)
            return web.json_response({"ok": True, "spooled": True})
    except InvalidEvent as exc:
        if exc.status == 408:
            return await _answer_and_hang_up(request, _reject(exc))
        return _reject(exc)
    if result is IngestResult.DUPLICATE:
        metrics.EVENTS_DUPLICATE.labels(member_id=event.member_id).inc()
    elif result is not IngestResult.HINT:
        _accepted_counter(event.name, event.member_id).inc()
    metrics.ACK_SECONDS.observe(time.perf_counter() - started)
    return web.Response(
        body=_DUPLICATE if result is IngestResult.DUPLICATE else _ACCEPTED,
        content_type="application/json",
    )


async def _answer_and_hang_up(request: web.Request, response: web.Response) -> web.Response:
    """Send the answer, then close the connection (aiohttp would otherwise linger on it for
    seconds, reading the rest of a body we no longer want)."""
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response


async def _spool(app: web.Application, record: SpoolRecord, exc: BaseException) -> None:
    async with app[SPOOL_LOCK]:
        await asyncio.to_thread(app[SPOOL].append, record)
    metrics.EVENTS_SPOOLED.inc()
    log.warning("event_spooled", error=type(exc).__name__)


def _lost(event: Event, exc: SpoolUnavailable) -> web.Response:
    """Redis is out of reach and the spool refused the event too: it is lost for good."""
    code = "spool_full" if exc.full else "spool_unavailable"
    metrics.EVENTS_LOST.labels(reason=code).inc()
    metrics.SPOOL_ERRORS.labels(op=exc.op).inc()
    log.error(
        "event_lost",
        error=code,
        reason=exc.reason,
        member_id=event.member_id,  # not verified: the registry is out of reach
        event_name=event.name,
        dialog_id=event.dialog_id,
        dedup_key=event.dedup_key,
    )
    return web.json_response({"error": code, "reason": exc.reason}, status=503)


async def healthz(_: web.Request) -> web.Response:
    """Alive."""
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    """Ready while an event can still be accepted durably: in Redis, or else in the spool."""
    # Redis down alone must not make the replica unready: a load balancer would then drop the
    # portal's events before they reach the spool (docs/design.md §2, item 5); none is re-sent.
    redis_up = await _redis_answers(request.app[REDIS])
    problem = await asyncio.to_thread(request.app[SPOOL].check)
    accepting = redis_up or problem is None
    body: dict[str, object] = {
        "redis": "up" if redis_up else "down",
        "spool": "ok" if problem is None else "full" if problem.full else "unwritable",
        "accepting": accepting,
    }
    if problem is not None:
        body["spool_reason"] = problem.reason
    loss = request.app[EPOCH].unacknowledged
    if loss is not None:
        # said, not acted on: an unready pod would lose the portal's events (see above)
        body["redis_data_lost"] = asdict(loss)
    return web.json_response(body, status=200 if accepting else 503)


async def _redis_answers(client: aioredis.Redis) -> bool:
    try:
        # bounded below a probe's usual 1 s timeout, so the answer is ours, not the prober's
        async with asyncio.timeout(READY_PING_TIMEOUT_S):
            await client.ping()
    except (*UNREACHABLE, TimeoutError):
        return False
    return True


async def metrics_view(request: web.Request) -> web.Response:
    """Prometheus exposition; queue depths are read at scrape time."""
    with contextlib.suppress(*UNREACHABLE):  # the counters are still worth serving
        await metrics.refresh_queue_gauges(request.app[REDIS], request.app[SETTINGS])
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_app(settings: Settings) -> web.Application:
    """The ingress application (its resources open and close with the app)."""
    # +1: let our own check answer 413 with a JSON reason before aiohttp's plain one would
    app = web.Application(client_max_size=settings.ingress_max_body_bytes + 1)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_epoch_ctx)
    app.cleanup_ctx.append(_spool_ctx)
    app.router.add_post("/b24/events", handle_event)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    return app


@dataclass(frozen=True)
class IngressServer:
    """The ingress serving on a socket, as `start_ingress` left it."""

    url: str
    runner: web.AppRunner
    guard: asyncio.Task[None] | None  # enforces the idle-connection cap (None: no cap)

    @property
    def port(self) -> int:
        """The port it listens on (the free one picked when started on port 0)."""
        return int(self.runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening, let requests in flight finish, then close Redis and the spool."""
        if self.guard is not None:
            self.guard.cancel()
            await asyncio.wait([self.guard])
        await self.runner.cleanup()


async def start_ingress(settings: Settings, host: str, port: int) -> IngressServer:
    """Serve `build_app(settings)` on host:port (0: a free port) with its connection limits."""
    # aiohttp's keep-alive timer is our header-read timeout: it is armed when a connection opens
    # and again after each answer, and when it fires on a connection still waiting for a whole
    # request head it closes it, so a slowloris head and an idle keep-alive connection alike
    # are dropped (a slow body is ingress_body_timeout_s's business, see _read_body).
    app = build_app(settings)
    cap = IdleConnectionCap(settings.ingress_max_idle_connections)
    if cap.max_idle:  # 0: no cap, and no middleware on the hot path either
        app.middlewares.append(cap.middleware)  # before setup: the app freezes its middlewares
    runner = web.AppRunner(
        app, access_log=None, keepalive_timeout=settings.ingress_header_timeout_s
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    assert runner.server is not None  # set by setup()
    guard = asyncio.create_task(cap.run(runner.server)) if cap.max_idle else None
    bound_host, bound_port = runner.addresses[0][:2]
    if ":" in bound_host:  # an IPv6 address goes in brackets in a URL
        bound_host = f"[{bound_host}]"
    return IngressServer(f"http://{bound_host}:{bound_port}", runner, guard)
