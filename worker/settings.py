"""arq WorkerSettings built from our Settings, and the worker's startup/shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import math
import os
import socket
from collections.abc import Callable
from typing import Any

from arq import func
from arq.connections import RedisSettings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator.errors import ConfigurationError
from orchestrator.queue import DRAIN_FUNCTION, job_deserializer, job_serializer
from orchestrator.runner import DialogHandler, Runner
from orchestrator.settings import Settings
from orchestrator.store import Store
from worker.jobs import drain
from worker.sweeper import sweep_forever

__all__ = [
    "JOB_TIMEOUT_S",
    "HandlerFactory",
    "load_handler_factory",
    "shutdown",
    "startup",
    "worker_settings",
]

# A drain returns after Settings.drain_budget_s; this only catches a handler stuck in one call.
JOB_TIMEOUT_S = 60

HandlerFactory = Callable[[Settings, Any], Any]


def load_handler_factory(path: str) -> HandlerFactory:
    """Import `module:callable`; the callable builds the DialogHandler (sync or async)."""
    module_name, _, attr = path.partition(":")
    if not attr:
        raise ConfigurationError(f"handler {path!r} is not of the form module:callable")
    factory: HandlerFactory = getattr(importlib.import_module(module_name), attr)
    return factory


async def startup(ctx: dict[str, Any]) -> None:
    """Open the store, the handler, the runner and the sweeper into ctx."""
    settings: Settings = ctx["settings"]
    store = Store(ctx["redis"], settings)
    handler = ctx["handler_factory"](settings, ctx["redis"])
    if inspect.isawaitable(handler):
        handler = await handler
    ctx["handler"] = handler
    owner = f"{socket.gethostname()}:{os.getpid()}"
    ctx["runner"] = Runner(store, handler, settings, owner=owner, stopping=ctx["stopping"])
    ctx["sweeper"] = asyncio.create_task(sweep_forever(store, settings, ctx["stopping"]))


async def shutdown(ctx: dict[str, Any]) -> None:
    """Stop the sweeper and close the handler's resources (once)."""
    if ctx.pop("runner", None) is None:
        return
    sweeper: asyncio.Task[None] | None = ctx.get("sweeper")
    if sweeper is not None:
        sweeper.cancel()
        await asyncio.wait([sweeper])
    handler: DialogHandler | None = ctx.get("handler")
    close = getattr(handler, "aclose", None)
    if close is not None:
        await close()


def _redis_settings(url: str) -> RedisSettings:
    """arq's connection settings; every command retries until Redis is back, so an outage
    stalls the worker instead of killing it (a stalled drain's fenced commit then finds out
    whether its lease survived)."""
    return dataclasses.replace(
        RedisSettings.from_dsn(url),
        retry_on_timeout=True,
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=-1),
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
        "redis_settings": _redis_settings(settings.redis_url),
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
