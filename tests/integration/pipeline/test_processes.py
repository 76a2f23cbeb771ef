"""The whole pipeline across processes: ingress → Redis → arq worker subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import (
    FORM,
    ROOT,
    WorkerSpawner,
    eventually,
    form,
    message_payload,
)
from tests.integration.recording import RecordingHandler

pytestmark = pytest.mark.slow


async def _send_dialog(
    http: aiohttp.ClientSession, url: str, chat: int, count: int, gap_s: float = 0.0
) -> None:
    """One dialog's messages, in order (a client types one message after another)."""
    for i in range(count):
        body = form(message_payload(chat, chat * 1000 + i, str(i)))
        async with http.post(f"{url}/b24/events", data=body, headers=FORM) as resp:
            assert resp.status == 200, await resp.text()
        if gap_s:
            await asyncio.sleep(gap_s)


async def _check_exactly_once_in_order(
    redis: aioredis.Redis, recording: RecordingHandler, settings: Settings, dialogs: range, per: int
) -> None:
    lines = [line.decode().split("|") for line in await redis.lrange(recording.log_key, 0, -1)]
    by_chat: dict[int, list[int]] = defaultdict(list)
    for chat, _seq, _event_id, text in lines:
        by_chat[int(chat)].append(int(text))
    assert sorted(by_chat) == list(dialogs)
    for chat in dialogs:
        assert by_chat[chat] == list(range(per)), f"dialog {chat}: {by_chat[chat]}"
    store = Store(redis, settings)
    for chat in dialogs:  # each event committed exactly once
        state = await store.state(store.dialog("m-test-1", str(chat)))
        assert (state.version, state.seq) == (per, per)


async def test_thousand_events_over_fifty_dialogs_to_three_workers_exactly_once_in_order(
    ingress_url: str,
    http: aiohttp.ClientSession,
    redis: aioredis.Redis,
    recording: RecordingHandler,
    spawn_worker: WorkerSpawner,
    fast_settings: Settings,
) -> None:
    """1,000 events sent concurrently (50 dialogs × 20) are each handled once, in dialog order."""
    for _ in range(3):
        spawn_worker()
    dialogs, per = range(1, 51), 20
    await asyncio.gather(*(_send_dialog(http, ingress_url, chat, per) for chat in dialogs))

    async def all_handled() -> bool:
        return await redis.llen(recording.log_key) >= len(dialogs) * per

    await eventually(all_handled, within_s=90)
    await _check_exactly_once_in_order(redis, recording, fast_settings, dialogs, per)
    runs = await redis.hvals(recording.runs_key)
    assert len(runs) == 1000
    assert set(runs) == {b"1"}  # no crash here: every effect ran exactly once


async def test_sigkilled_worker_loses_nothing_and_its_dialogs_finish_within_30s(
    ingress_url: str,
    http: aiohttp.ClientSession,
    redis: aioredis.Redis,
    recording: RecordingHandler,
    spawn_worker: WorkerSpawner,
    fast_settings: Settings,
) -> None:
    """SIGKILL one of two workers mid-run: every event still applied once, in order, in time."""
    victim = spawn_worker()
    spawn_worker()
    dialogs, per = range(1, 31), 20
    sending = asyncio.gather(
        *(_send_dialog(http, ingress_url, chat, per, gap_s=0.1) for chat in dialogs)
    )

    async def some_handled() -> bool:
        return await redis.llen(recording.log_key) >= 60

    await eventually(some_handled, within_s=60)
    victim.send_signal(signal.SIGKILL)
    killed_at = asyncio.get_running_loop().time()
    await asyncio.to_thread(victim.wait, 10)
    await sending

    async def all_handled() -> bool:
        return await redis.llen(recording.log_key) >= len(dialogs) * per

    # liveness bound from the kill: lease expiry + sweeper (not a speed assertion)
    elapsed = asyncio.get_running_loop().time() - killed_at
    await eventually(all_handled, within_s=max(0.0, 30 - elapsed))
    await _check_exactly_once_in_order(redis, recording, fast_settings, dialogs, per)
    # a re-run can only come from an effect in flight at the kill (at most one per dialog)
    reruns = [int(n) for n in await redis.hvals(recording.runs_key) if int(n) > 1]
    assert len(reruns) <= len(dialogs)
    assert all(n == 2 for n in reruns)


async def test_sigterm_hands_the_dialog_back_and_another_worker_finishes_it(
    ingress_url: str,
    http: aiohttp.ClientSession,
    redis: aioredis.Redis,
    recording: RecordingHandler,
    spawn_worker: WorkerSpawner,
    fast_settings: Settings,
) -> None:
    """On SIGTERM a worker stops after the event in hand, releases the lease, keeps sched and
    queues a continuation; it exits 0 within its grace, and a new worker drains the rest."""
    await _send_dialog(http, ingress_url, 77, 15)
    first = spawn_worker("tests.integration.recording:slow_factory")

    async def started() -> bool:
        return await redis.llen(recording.log_key) >= 2

    await eventually(started, within_s=30)
    first.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(first.wait, 20) == 0
    d = Store(redis, fast_settings).dialog("m-test-1", "77")
    handled = await redis.llen(recording.log_key)
    assert handled < 15  # it stopped early instead of draining everything
    assert not await redis.exists(d.lease)
    assert await redis.exists(d.sched)
    assert await redis.zcard(fast_settings.queue_name) >= 1  # the continuation
    spawn_worker()

    async def all_handled() -> bool:
        return await redis.llen(recording.log_key) >= 15

    await eventually(all_handled, within_s=30)
    await _check_exactly_once_in_order(redis, recording, fast_settings, range(77, 78), 15)


def _start_serve(settings: Settings, port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": str(settings.redis_url),
        "KEY_PREFIX": settings.key_prefix,
        "QUEUE_NAME": settings.queue_name,
        "INGRESS_HOST": "127.0.0.1",
        "SPOOL_DIR": str(tmp_path / "spool"),
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_GRACE_S": "2",
    }
    with open(tmp_path / "serve.log", "wb") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestrator.cli",
                "serve",
                "--workers",
                "2",
                "--port",
                str(port),
                "--handler",
                "tests.integration.recording:factory",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def test_serve_runs_ingress_and_workers_and_stops_cleanly_on_sigterm(
    portal: object,
    http: aiohttp.ClientSession,
    redis: aioredis.Redis,
    recording: RecordingHandler,
    fast_settings: Settings,
    tmp_path: Path,
) -> None:
    """`orchestrator serve` accepts and handles an event end to end, then exits 0 on SIGTERM."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _start_serve(fast_settings, port, tmp_path)
    try:

        async def up() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(up, within_s=30)
        async with http.post(
            f"http://127.0.0.1:{port}/b24/events",
            headers=FORM,
            data=form(message_payload(3, 3001, "via serve")),
        ) as resp:
            assert resp.status == 200

        async def handled() -> bool:
            return await redis.llen(recording.log_key) == 1

        await eventually(handled, within_s=30)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _start_ingress(settings: Settings, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REDIS_URL": str(settings.redis_url),
        "KEY_PREFIX": settings.key_prefix,
        "QUEUE_NAME": settings.queue_name,
        "SPOOL_DIR": str(log_path.parent / "spool"),
        "LOG_FORMAT": "console",
    }
    command = ["ingress", "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", *command],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_ingress_process_serves_and_exits_0_on_a_stop_signal(
    portal: object,
    http: aiohttp.ClientSession,
    redis: aioredis.Redis,
    fast_settings: Settings,
    tmp_path: Path,
    signum: signal.Signals,
) -> None:
    """`orchestrator ingress` (start_ingress under its own signal handling) accepts an event,
    then stops cleanly on SIGTERM or SIGINT: exit code 0 and no traceback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path / "ingress.log"
    proc = _start_ingress(fast_settings, port, log_path)
    try:

        async def up() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(up, within_s=30)
        body = form(message_payload(4, 4001, "via ingress"))
        async with http.post(f"http://127.0.0.1:{port}/b24/events", headers=FORM, data=body) as r:
            assert r.status == 200
        proc.send_signal(signum)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        job_ids = await redis.zrange(fast_settings.queue_name, 0, -1)
        await redis.delete(fast_settings.queue_name, *(b"arq:job:" + j for j in job_ids))
    assert "Traceback" not in log_path.read_text()
