"""`orchestrator worker`: one arq worker process, kept alive across Redis outages.

SIGTERM/SIGINT: stop taking dialogs (arq stops polling), drains hand their dialog on after the
event in hand (lease released, sched kept, a continuation queued), arq waits up to
`shutdown_grace_s` for them, then cancels what is left; a cancelled drain's lease simply expires
and the sweeper re-schedules the dialog.

Redis gone: every Redis call retries for up to `worker_redis_ride_out_s` (worker/settings.py),
so a restart of a few seconds only stalls the worker. A longer outage ends arq's poll loop with
a Redis error (arq has no setting to survive it); a small supervisor then retires that arq
worker — its tasks ended and their outcomes retrieved, its drains' leases left to expire — and
starts a fresh one in this same process once Redis answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
from typing import Any

import structlog
from arq.constants import in_progress_key_prefix
from arq.worker import Worker

from orchestrator.bitrix.auth import AuthStore
from orchestrator.bitrix.client import configured_webhooks
from orchestrator.cli.startup import portal_mode, redis_for, wait_for_redis
from orchestrator.observe.logs import configure_logging
from orchestrator.pipeline.epoch import EpochWatch
from orchestrator.pipeline.keys import Keys
from orchestrator.redis.client import open_client
from orchestrator.settings import Settings, load_settings
from worker.jobs import REDIS_DOWN
from worker.observe import start_observe_server
from worker.settings import (
    HandlerFactory,
    load_handler_factory,
    shutdown,
    worker_settings,
)

__all__ = ["DrainWorker", "Supervisor", "build_worker", "cli_main", "watch_epoch"]

log = structlog.get_logger(__name__)

PAUSE_S = 0.5  # before a fresh arq worker after one died, doubling up to MAX_PAUSE_S
MAX_PAUSE_S = 5.0
HEALTH_KEY_DELETE_S = 1.0


class DrainWorker(Worker):
    """arq's Worker, minus a cost that grows with the fleet's running drains.

    arq keeps a job in its queue until the job finishes, and each poll checks every due job id
    it reads with four round trips (WATCH, EXISTS, ZSCORE, UNWATCH) before skipping one that
    runs already - its own or another worker's. Polling every 20 ms, that re-checked each
    running drain ~50 times a second per worker (~6,000 Redis commands/s in a chaos run). One
    pipelined EXISTS of the in-progress marks drops those first; arq's own check still guards
    the start of every job left, so nothing starts twice.
    """

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        if job_ids:
            async with self.pool.pipeline(transaction=False) as pipe:
                for job_id in job_ids:
                    pipe.exists(in_progress_key_prefix + job_id.decode())
                running = await pipe.execute()
            job_ids = [job_id for job_id, busy in zip(job_ids, running, strict=True) if not busy]
        await super().start_jobs(job_ids)


def build_worker(
    settings: Settings,
    handler_factory: HandlerFactory | None = None,
    stopping: asyncio.Event | None = None,
    **overrides: Any,
) -> Worker:
    """An arq Worker for our settings (signals are the caller's business)."""
    kwargs = worker_settings(settings, handler_factory, stopping)
    kwargs.update(overrides)
    return DrainWorker(**kwargs)


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
        if self.stopping.is_set():
            return  # arq is already waiting out the grace; a second wait would cancel twice
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
        # for the process's life, across arq workers: a Redis emptied meanwhile is noticed
        watcher = self.loop.create_task(watch_epoch(self.settings, self.stopping))
        pause = PAUSE_S
        try:
            while not self.stopping.is_set():
                self.worker = build_worker(
                    self.settings, self.handler_factory, self.stopping, handle_signals=False
                )
                if self.loop.run_until_complete(self._run_one(self.worker)):
                    pause = PAUSE_S
                    continue
                self.loop.run_until_complete(self._pause(pause))
                pause = min(pause * 2, MAX_PAUSE_S)
        finally:
            self.stopping.set()
            self.loop.run_until_complete(asyncio.wait([watcher]))
            if observer is not None:
                self.loop.run_until_complete(observer.cleanup())
            self.loop.close()
        return 0

    async def _run_one(self, worker: Worker) -> bool:
        """Run one arq worker to its end; False when it ended because Redis was gone.

        Not `Worker.run()`: its closing step talks to Redis, and with Redis gone it raised
        over the original error and left task errors unretrieved (see `_retire`).
        """
        try:
            await worker.async_run()
        except asyncio.CancelledError:
            pass  # stopped by a signal: arq cancels its main task after the grace
        except REDIS_DOWN as exc:
            log.warning("worker_lost_redis", error=repr(exc))
            await _retire(worker, signalled=False)
            return False
        except Exception:
            await _retire(worker, signalled=False)
            raise
        await _retire(worker, signalled=True)
        return True

    async def _pause(self, seconds: float) -> None:
        log.info("worker_restart_pause", seconds=seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)


async def watch_epoch(settings: Settings, stopping: asyncio.Event) -> None:
    """Notice a Redis that lost its data (orchestrator/pipeline/epoch.py) until stopped; on a loss
    the webhook portal the settings name gets its credentials back at once."""
    redis = open_client(str(settings.redis_url), socket_connect_timeout=1.0, socket_timeout=2.0)
    webhooks = configured_webhooks(settings)
    auth = AuthStore(redis, prefix=settings.key_prefix)

    async def restore() -> None:
        for member_id, url in webhooks.items():
            await auth.register_webhook(member_id, url)

    watch = EpochWatch(
        redis,
        Keys(settings.key_prefix),
        who=f"worker {socket.gethostname()}:{os.getpid()}",
        on_loss=restore,
        interval_s=settings.redis_epoch_check_s,
    )
    try:
        await watch.run(stopping)
    finally:
        await redis.aclose()


async def _retire(worker: Worker, *, signalled: bool) -> None:
    """End what a stopped arq worker left running, retrieve every outcome, close its resources.

    In place of arq's `Worker.close()`, which cancels its job tasks once more: a second cancel
    abandons the `finish_job` (and the drain) a job task was waiting for, and their Redis errors
    then surfaced as "Task exception was never retrieved". Here each task is cancelled at most
    once and awaited; drains that fail while cancelled (a stall hit by the cancel) are logged.
    """
    jobs = list(worker.tasks.values())
    drains = list(worker.job_tasks.values())
    for task in jobs:
        if not task.done() and not task.cancelling():
            task.cancel()
    if jobs or drains:
        await asyncio.wait([*jobs, *drains])
    for task in (*jobs, *drains):
        if not task.cancelled() and task.exception() is not None:
            log.warning("job_ended_with_error", error=repr(task.exception()))
    worker.tasks.clear()
    pool, worker._pool = worker._pool, None
    if pool is not None and signalled:  # arq's liveness key (it also expires by itself)
        with contextlib.suppress(*REDIS_DOWN, TimeoutError):
            await asyncio.wait_for(pool.delete(worker.health_check_key), HEALTH_KEY_DELETE_S)
    try:
        await shutdown(worker.ctx)
    except REDIS_DOWN as exc:  # a closer that needed Redis must not end the process
        log.warning("worker_shutdown_failed", error=repr(exc))
    if pool is not None:
        with contextlib.suppress(*REDIS_DOWN):
            await pool.aclose(close_connection_pool=True)


def cli_main(args: argparse.Namespace) -> int:
    """`orchestrator worker`."""
    overrides: dict[str, Any] = {}
    if args.concurrency:
        overrides["worker_concurrency"] = args.concurrency
    settings = load_settings(**overrides)
    configure_logging(settings.log_format, settings.log_level)
    factory = load_handler_factory(args.handler) if args.handler else None
    with contextlib.ExitStack() as stack:
        url = redis_for(settings, args, stack)
        wait_for_redis(url, settings.redis_start_wait_s)
        settings = settings.model_copy(update={"redis_url": url})
        # the one line an operator looks for: what this worker drains, how, for which portals
        log.info(
            "worker_starting",
            queue=settings.queue_name,
            concurrency=settings.worker_concurrency,
            handler=args.handler or settings.worker_handler,
            fetch=settings.fetch_enabled,
            metrics_port=settings.worker_metrics_port or None,
            **portal_mode(settings),
        )
        return Supervisor(settings, factory).run()
