"""Spool files across process deaths: the lock of a SIGKILLed writer is gone, so the next
ingress adopts and replays its file; a live writer's file is left alone."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from orchestrator.ingress.portals import Portals
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import MEMBER, ROOT, _serve, eventually, form
from tests.integration.pipeline.conftest import message_payload as payload

# A writer like the ingress: append one record durably, say so, then stay alive holding it.
_WRITER = """
import sys, time
from orchestrator.ingress.spool import Spool, SpoolRecord
spool = Spool(sys.argv[1])
spool.append(SpoolRecord(sys.stdin.buffer.read(), "application/x-www-form-urlencoded", 1))
print("written", flush=True)
time.sleep(600)
"""


@pytest.fixture
def writers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Spool-writer subprocesses, killed at the end of the test."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


def _start_writer(procs: list[subprocess.Popen[bytes]], spool_dir: Path, body: bytes) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(spool_dir)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    procs.append(proc)
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(body)
    proc.stdin.close()
    assert proc.stdout.readline() == b"written\n"


async def _messages(redis: aioredis.Redis, store: Store) -> set[str]:
    entries = await redis.lrange(store.dialog(MEMBER, "5").inbox, 0, -1)
    return {"killed" if b"killed" in e else "alive" for e in entries}


def _queued(
    redis: aioredis.Redis, store: Store, expected: set[str]
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await _messages(redis, store) == expected

    return check


def _spool_empty(spool_dir: Path) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not await asyncio.to_thread(lambda: list(spool_dir.glob("spool-*")))

    return check


async def test_a_killed_writers_file_is_replayed_and_a_live_writers_is_not_touched(
    redis: aioredis.Redis,
    fast_settings: Settings,
    portal: Portals,
    writers: list[subprocess.Popen[bytes]],
) -> None:
    """Writer A is SIGKILLed after spooling: the ingress adopts and replays its event. Writer
    B still runs: its `.open` file stays as it is and its event stays out of Redis until B
    dies too."""
    spool_dir = Path(fast_settings.spool_dir)
    await asyncio.to_thread(
        _start_writer, writers, spool_dir, form(payload(5, 501, "from the killed writer"))
    )
    await asyncio.to_thread(
        _start_writer, writers, spool_dir, form(payload(5, 502, "from the alive writer"))
    )
    killed, alive = writers
    killed.send_signal(signal.SIGKILL)
    await asyncio.to_thread(killed.wait, 10)
    store = Store(redis, fast_settings)

    ingress = await _serve(fast_settings)  # its replayer ticks every 0.5 s
    try:
        await eventually(_queued(redis, store, {"killed"}))
        # several replayer ticks later, the live writer's file is still its own
        await asyncio.sleep(1.5)
        assert await _messages(redis, store) == {"killed"}
        [still_open] = await asyncio.to_thread(lambda: list(spool_dir.glob("spool-*.open")))
        assert f"-{alive.pid}-" in still_open.name
        alive.send_signal(signal.SIGKILL)
        await asyncio.to_thread(alive.wait, 10)
        await eventually(_queued(redis, store, {"killed", "alive"}))
        await eventually(_spool_empty(spool_dir))
    finally:
        await ingress.stop()
