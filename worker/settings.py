"""arq WorkerSettings built from our Settings, and the worker's startup/shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from arq import func
from arq.connections import RedisSettings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator.bitrix.client import BitrixClient
from orchestrator.errors import ConfigurationError
from orchestrator.ingress.pull.offline import OfflineConsumer
from orchestrator.ingress.pull.pollers import Pollers
from orchestrator.pipeline.queue import DRAIN_FUNCTION, job_deserializer, job_serializer
from orchestrator.pipeline.runner import DialogHandler, Runner
from orchestrator.pipeline.store import Store
from orchestrator.pipeline.timers import TIMER_POLL_S, TimerStore, poll_timers_forever
from orchestrator.settings import Settings
from worker.jobs import drain
from worker.sweeper import sweep_forever

__all__ = [
    "JOB_TIMEOUT_S",
    "HandlerFactory",
    "RideOut",
    "load_handler_factory",
    "shutdown",
    "startup",
    "worker_settings",
]

# A drain returns after Settings.drain_budget_s; this only catches a handler stuck in one call.
JOB_TIMEOUT_S = 60

log = structlog.get_logger(__name__)

T = TypeVar("T")

HandlerFactory = Callable[[Settings, Any], Any]


def load_handler_factory(path: str) -> HandlerFactory:
    """Import `module:callable`; the callable builds the DialogHandler (sync or async)."""
    module_name, _, attr = path.partition(":")
    if not attr:
        raise ConfigurationError(f"handler {path!r} is not of the form module:callable")
    factory: HandlerFactory = getattr(importlib.import_module(module_name), attr)
    return factory


async def startup(ctx: dict[str, Any]) -> None:
    """Open the store, the handler and the runner into ctx; start the sweeper and the timer
    poller, which live as long as this arq worker."""
    settings: Settings = ctx["settings"]
    store = Store(ctx["redis"], settings)
    handler = ctx["handler_factory"](settings, ctx["redis"])
    if inspect.isawaitable(handler):
        handler = await handler
    ctx["handler"] = handler
    owner = f"{socket.gethostname()}:{os.getpid()}"
    ctx["runner"] = Runner(store, handler, settings, owner=owner, stopping=ctx["stopping"])
    ctx["background_stop"] = stop = asyncio.Event()
    timers = TimerStore(ctx["redis"], settings.key_prefix)
    ctx["background"] = [
        asyncio.create_task(sweep_forever(store, settings, stop), name="sweeper"),
        asyncio.create_task(poll_timers_forever(timers, store, TIMER_POLL_S, stop), name="timers"),
    ]
    client = await _rest_client(handler, settings, ctx)
    consumer = OfflineConsumer.from_settings(settings, client, ctx["redis"])
    ctx["background"].append(asyncio.create_task(consumer.run_forever(stop), name="offline"))
    if settings.fetch_enabled:
        pollers = Pollers(ctx["redis"], settings, client.api, holder=owner)
        ctx["background"].append(asyncio.create_task(pollers.run_forever(stop), name="pollers"))


async def _rest_client(handler: Any, settings: Settings, ctx: dict[str, Any]) -> BitrixClient:
    """The handler's own REST client when it has one (so a poll shares the portal's budget and
    a `batch` with the dialogs' calls), else one of the pollers' own, closed at shutdown."""
    client = getattr(handler, "rest_client", None)
    if isinstance(client, BitrixClient):
        return client
    client = await BitrixClient.from_settings(settings, ctx["redis"]).open()
    ctx.setdefault("closers", []).append(client.close)
    return client


async def shutdown(ctx: dict[str, Any]) -> None:
    """Stop the sweeper and the timer poller and close the handler's resources (once)."""
    if ctx.pop("runner", None) is None:
        return
    tasks: list[asyncio.Task[None]] = ctx.get("background", [])
    if tasks:
        # the event first: on Python 3.11 a cancel can be lost inside redis-py's wait_for
        ctx["background_stop"].set()
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                # retrieved here, or asyncio reports "Task exception was never retrieved"
                log.error(
                    "background_task_failed", task=task.get_name(), error=repr(task.exception())
                )
    handler: DialogHandler | None = ctx.get("handler")
    close = getattr(handler, "aclose", None)
    if close is not None:
        await close()
    for closer in ctx.pop("closers", []):
        await closer()


class RideOut(Retry):
    """redis-py's Retry bounded by time rather than by count, which also retries connecting.

    redis-py 5 connects a pooled connection outside a command's retry, and its connect retry
    only catches redis errors while a refused connect raises OSError: so `Retry(retries=-1)`
    alone never saw an outage, and arq's poll loop died on the first refused connect.

    The window is the outage's, shared by every call and connection of one pool (deepcopy, which
    redis-py applies per connection, returns the same object): a call gives up once Redis has
    been failing for `window_s`, or once it has itself retried that long. Per call only, the
    pool's connect lock would make queued calls give up one window after another, and a count
    would multiply, as the connect retry nests inside the command's retry.
    """

    __slots__ = ("_down_since", "_window_s")

    def __init__(self, window_s: float) -> None:
        super().__init__(ExponentialBackoff(cap=1.0, base=0.05), retries=-1)
        self._window_s = window_s
        self._down_since: float | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> RideOut:
        return self

    async def call_with_retry(
        self, do: Callable[[], Awaitable[T]], fail: Callable[[RedisError], Any]
    ) -> T:
        failures, first_failed = 0, 0.0
        while True:
            try:
                result = await do()
            except self._supported_errors as error:
                failures += 1
                await fail(error)
                now = time.monotonic()
                if failures == 1:
                    first_failed = now
                if self._down_since is None:
                    self._down_since = now
                left = min(self._down_since, first_failed) + self._window_s - now
                if left <= 0:
                    raise
                await asyncio.sleep(min(left, self._backoff.compute(failures)))
            else:
                self._down_since = None
                return result


# What a worker's Redis calls retry (OSError: refused or timed-out connects). Not through
# `retry_on_timeout=True`: redis-py appends to this list for every connection it makes.
RETRIED = [RedisConnectionError, RedisTimeoutError, OSError]


def _redis_settings(url: str, ride_out_s: float) -> RedisSettings:
    """arq's connection settings (its pool is also the Store's and the handler's): every call
    retries for up to `ride_out_s`, so a Redis restart stalls the worker instead of killing
    it (a stalled drain's fenced commit then finds out whether its lease survived). Past
    that, the call raises and the supervisor in worker/main.py rebuilds the arq worker."""
    return dataclasses.replace(
        RedisSettings.from_dsn(url),
        retry_on_error=list(RETRIED),
        retry=RideOut(ride_out_s),
        conn_retries=30,
    )


def worker_settings(
    settings: Settings,
    handler_factory: HandlerFactory | None = None,
    stopping: asyncio.Event | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `arq.Worker` (the WorkerSettings of this deployment)."""
    if handler_factory is None:
        handler_factory = load_handler_factory(settings.worker_handler)
    if not settings.redis_url:
        raise ConfigurationError("REDIS_URL is not set")
    return {
        "functions": [func(drain, name=DRAIN_FUNCTION, keep_result=0, timeout=JOB_TIMEOUT_S)],
        "redis_settings": _redis_settings(settings.redis_url, settings.worker_redis_ride_out_s),
        "queue_name": settings.queue_name,
        "poll_delay": settings.worker_poll_delay_s,
        "keep_result": 0,
        "job_timeout": JOB_TIMEOUT_S,
        "max_jobs": settings.worker_concurrency,
        # arq waits this long for running drains after SIGTERM, then cancels them
        "job_completion_wait": math.ceil(settings.shutdown_grace_s),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "job_serializer": job_serializer,
        "job_deserializer": job_deserializer,
        "ctx": {
            "settings": settings,
            "handler_factory": handler_factory,
            "stopping": stopping or asyncio.Event(),
        },
    }
