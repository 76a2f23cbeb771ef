"""`orchestrator worker`: one arq worker process, kept alive across Redis outages.

SIGTERM/SIGINT: stop taking dialogs (arq stops polling), drains hand their dialog on after the
event in hand (lease released, sched kept, a continuation queued), arq waits up to
`shutdown_grace_s` for them, then cancels what is left; a cancelled drain's lease simply expires
and the sweeper re-schedules the dialog.

Redis gone: arq's poll loop dies on a refused connection, so a small supervisor cleans up the
dead worker (its drains' leases expire on their own) and starts a fresh one once Redis answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

import structlog
from arq.worker import Worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator.logs import configure_logging
from orchestrator.settings import Settings, load_settings
from worker.observe import start_observe_server
from worker.settings import (
    HandlerFactory,
    load_handler_factory,
    shutdown,
    worker_settings,
)

__all__ = ["Supervisor", "build_worker", "cli_main"]

log = structlog.get_logger(__name__)

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


def build_worker(
    settings: Settings,
    handler_factory: HandlerFactory | None = None,
    stopping: asyncio.Event | None = None,
    **overrides: Any,
) -> Worker:
    """An arq Worker for our settings (signals are the caller's business)."""
    kwargs = worker_settings(settings, handler_factory, stopping)
    kwargs.update(overrides)
    return Worker(**kwargs)


class Supervisor:
    """Runs workers one after another in this process until a signal stops it."""

    def __init__(self, settings: Settings, handler_factory: HandlerFactory | None) -> None:
        self.settings = settings
        self.handler_factory = handler_factory
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.stopping = asyncio.Event()
        self.worker: Worker | None = None

    def _on_signal(self, signum: signal.Signals) -> None:
        self.stopping.set()  # the drains hand back after the event in hand
        worker = self.worker
        if worker is not None and worker.main_task is not None and not worker.main_task.done():
            worker.handle_sig_wait_for_completion(signum)

    def run(self) -> int:
        """Until signalled; returns the exit code."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._on_signal, sig)
        # served by this loop, so it answers while arq runs and while Redis is awaited
        observer = self.loop.run_until_complete(
            start_observe_server(self.settings, lambda: not self.stopping.is_set())
        )
        pause = 0.5
        try:
            while not self.stopping.is_set():
                self.worker = build_worker(
                    self.settings, self.handler_factory, self.stopping, handle_signals=False
                )
                try:
                    self.worker.run()
                    pause = 0.5
                except REDIS_DOWN as exc:
                    log.warning("worker_lost_redis", error=str(exc), retry_in_s=pause)
                    self.loop.run_until_complete(_bury(self.worker))
                    self.loop.run_until_complete(self._pause(pause))
                    pause = min(pause * 2, 5.0)
        finally:
            if observer is not None:
                self.loop.run_until_complete(observer.cleanup())
            self.loop.close()
        return 0

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)


async def _bury(worker: Worker) -> None:
    """Release what a worker that died on a Redis error left behind."""
    for task in worker.tasks.values():
        task.cancel()
    if worker.tasks:
        await asyncio.wait(list(worker.tasks.values()))
    await shutdown(worker.ctx)
    if worker._pool is not None:
        with contextlib.suppress(Exception):
            await worker._pool.close(close_connection_pool=True)


def cli_main(args: argparse.Namespace) -> int:
    """`orchestrator worker`."""
    overrides: dict[str, Any] = {}
    if args.concurrency:
        overrides["worker_concurrency"] = args.concurrency
    settings = load_settings(**overrides)
    configure_logging(settings.log_format, settings.log_level)
    factory = load_handler_factory(args.handler) if args.handler else None
    return Supervisor(settings, factory).run()
