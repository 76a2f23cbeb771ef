"""Fixtures of the event pipeline tests: a registered portal, the ingress on a loopback port,
worker subprocesses and an in-process arq worker, each stopped at the end of its test."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from orchestrator.events.formdata import encode_form
from orchestrator.ingress.app import IngressServer, start_ingress
from orchestrator.ingress.portals import Portals
from orchestrator.pipeline.keys import Keys
from orchestrator.redis.server import EmbeddedRedis
from orchestrator.settings import Settings
from tests.integration.recording import RecordingHandler
from worker.main import build_worker

MEMBER = "m-test-1"
TOKEN = "app-token-s3cret"
DOMAIN = "acme.bitrix24.com"
ROOT = Path(__file__).resolve().parents[3]


def message_payload(
    chat: int | str,
    message_id: int,
    text: str = "hello",
    *,
    member: str = MEMBER,
    token: str = TOKEN,
    ts: int = 1767225601,
) -> dict[str, Any]:
    """An ONIMBOTMESSAGEADD in an Open Lines chat, as the portal sends it."""
    return {
        "event": "ONIMBOTMESSAGEADD",
        "event_handler_id": "41",
        "ts": str(ts),
        "data": {
            "BOT": {"77": {"BOT_ID": "77", "BOT_CODE": "support"}},
            "PARAMS": {
                "MESSAGE": text,
                "MESSAGE_ID": str(message_id),
                "CHAT_ID": str(chat),
                "DIALOG_ID": f"chat{chat}",
                "MESSAGE_TYPE": "L",
                "CHAT_ENTITY_TYPE": "LINES",
                "FROM_USER_ID": "4567",
            },
        },
        "auth": {"domain": DOMAIN, "member_id": member, "application_token": token},
    }


async def eventually(predicate: Callable[[], Awaitable[bool]], within_s: float = 30.0) -> None:
    """Poll until `predicate` holds; fail after `within_s` (a liveness bound, not a speed check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await predicate():
        assert loop.time() < deadline, f"condition not reached within {within_s} s"
        await asyncio.sleep(0.05)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def form(payload: dict[str, Any]) -> bytes:
    """The payload encoded like PHP's http_build_query."""
    return encode_form(payload)


@pytest.fixture
def fast_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Short leases and sweeps so recovery paths run within a test's time."""
    return settings.model_copy(
        update={
            "lease_ms": 2000,
            "sweep_interval_s": 0.5,
            "max_attempts": 3,
            "spool_dir": str(tmp_path / "spool"),
            "shutdown_grace_s": 2.0,
        }
    )


@pytest.fixture
async def portal(redis: aioredis.Redis, fast_settings: Settings) -> Portals:
    """The test portal, registered with TOKEN."""
    portals = Portals(redis, Keys(fast_settings.key_prefix))
    await portals.register(MEMBER, DOMAIN, TOKEN, source="test")
    return portals


async def _serve(settings: Settings) -> IngressServer:
    """The ingress on 127.0.0.1 and a free port, served as `orchestrator ingress` serves it."""
    return await start_ingress(settings, "127.0.0.1", 0)


@pytest.fixture
async def ingress_url(fast_settings: Settings, portal: Portals) -> AsyncIterator[str]:
    """The ingress app serving on 127.0.0.1 and a free port."""
    ingress = await _serve(fast_settings)
    yield ingress.url
    await ingress.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session with room for many concurrent connections."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        yield session


@pytest.fixture
async def recording(redis: aioredis.Redis, fast_settings: Settings) -> RecordingHandler:
    """A RecordingHandler on the test Redis (for in-process workers and for reading results)."""
    return RecordingHandler(redis, fast_settings.key_prefix)


@pytest.fixture
async def inproc_worker(
    fast_settings: Settings, recording: RecordingHandler
) -> AsyncIterator[None]:
    """An arq worker in this process draining with `recording`."""
    worker = build_worker(fast_settings, lambda _s, _r: recording, handle_signals=False)
    task = asyncio.create_task(worker.async_run())
    yield
    worker.handle_sig(signal.SIGTERM)
    await asyncio.wait([task], timeout=10)
    await worker.close()


WorkerSpawner = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def spawn_worker(fast_settings: Settings, tmp_path: Path) -> Iterator[WorkerSpawner]:
    """Start `orchestrator worker` subprocesses with the RecordingHandler; all killed at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": str(fast_settings.redis_url),
        "KEY_PREFIX": fast_settings.key_prefix,
        "QUEUE_NAME": fast_settings.queue_name,
        "LEASE_MS": str(fast_settings.lease_ms),
        "SWEEP_INTERVAL_S": str(fast_settings.sweep_interval_s),
        "MAX_ATTEMPTS": str(fast_settings.max_attempts),
        "SHUTDOWN_GRACE_S": str(fast_settings.shutdown_grace_s),
        "LOG_FORMAT": "console",
        "LOG_LEVEL": "WARNING",
        "WORKER_CONCURRENCY": "20",
    }

    def spawn(
        handler: str = "tests.integration.recording:factory", redis_url: str | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"worker-{len(procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "worker", "--handler", handler],
            cwd=ROOT,
            env={**env, "REDIS_URL": redis_url or env["REDIS_URL"]},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.fixture(autouse=True)
async def _drop_arq_jobs(redis: aioredis.Redis, fast_settings: Settings) -> AsyncIterator[None]:
    """arq's job records live outside our prefix: delete those of this test's queue after it."""
    yield
    job_ids = await redis.zrange(fast_settings.queue_name, 0, -1)
    if job_ids:
        await redis.delete(*(b"arq:job:" + j for j in job_ids))


def _server(persistent: bool) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(persistent=persistent)
    server.start()
    yield server
    server.close()


async def _client(server: EmbeddedRedis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(server.url)
    yield client
    await client.aclose()


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of this test alone, so it can be stopped and started (AOF keeps its data)."""
    yield from _server(persistent=True)


@pytest.fixture
async def own_client(own_redis: EmbeddedRedis) -> AsyncIterator[aioredis.Redis]:
    async for client in _client(own_redis):
        yield client


@pytest.fixture
def volatile_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of this test alone that keeps nothing on disk: a restart empties it."""
    yield from _server(persistent=False)


@pytest.fixture
async def volatile_client(volatile_redis: EmbeddedRedis) -> AsyncIterator[aioredis.Redis]:
    async for client in _client(volatile_redis):
        yield client
