"""The worker's own small HTTP endpoint: `/metrics` (Prometheus) and `/healthz` (liveness).

One per worker process, on `Settings.worker_metrics_port` (0: off), bound to
`Settings.worker_metrics_host`: loopback by default, so a worker started from a shell does not
publish its metrics to the network; the container image sets 0.0.0.0 (all interfaces) so that
Prometheus can scrape the pod. Several worker processes on one host
(`orchestrator serve`) each get their own port — the first one's plus the process's index —
rather than prometheus_client's multiprocess mode: each process stays a plain scrape target with
its own counters, and no shared mmap directory has to be managed and wiped.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from orchestrator.observe import metrics
from orchestrator.redis.client import open_client
from orchestrator.settings import Settings

__all__ = ["build_observe_app", "start_observe_server"]

_SETTINGS = web.AppKey("settings", Settings)
_REDIS = web.AppKey("redis", aioredis.Redis)
_ALIVE: web.AppKey[Callable[[], bool]] = web.AppKey("alive")


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    # short timeouts: a scrape during an outage answers with the counters, not a hang
    url = app[_SETTINGS].redis_url
    client = open_client(str(url), socket_connect_timeout=1.0, socket_timeout=2.0)
    app[_REDIS] = client
    yield
    await client.aclose()


async def _metrics(request: web.Request) -> web.Response:
    with contextlib.suppress(RedisError, OSError):  # the counters are still worth serving
        await metrics.refresh_queue_gauges(request.app[_REDIS], request.app[_SETTINGS])
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(request: web.Request) -> web.Response:
    # the event loop answering is most of it; `alive` says the worker supervisor still runs
    if not request.app[_ALIVE]():
        return web.json_response({"ok": False}, status=503)
    return web.json_response({"ok": True})


def build_observe_app(settings: Settings, alive: Callable[[], bool]) -> web.Application:
    """The /metrics and /healthz application of one worker process."""
    app = web.Application()
    app[_SETTINGS] = settings
    app[_ALIVE] = alive
    app.cleanup_ctx.append(_redis_ctx)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    return app


async def start_observe_server(
    settings: Settings, alive: Callable[[], bool]
) -> web.AppRunner | None:
    """Serve the endpoint where the settings say; None when `worker_metrics_port` is 0 (off)."""
    if not settings.worker_metrics_port:
        return None
    runner = web.AppRunner(build_observe_app(settings, alive), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(
            runner, settings.worker_metrics_host, settings.worker_metrics_port
        ).start()
    except BaseException:
        await runner.cleanup()  # a port in use must not leave the app's Redis client open
        raise
    return runner
