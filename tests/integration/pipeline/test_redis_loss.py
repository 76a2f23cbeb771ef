"""A Redis that comes back empty is noticed within seconds, said aloud, and healed where it can
be: the configured portal is accepted again without a restart, /readyz reports the loss until an
operator acknowledges it. Real processes (`orchestrator ingress`, `orchestrator worker`) on a
real Redis that keeps nothing on disk."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from orchestrator.bitrix.auth import AuthStore
from orchestrator.ingress.portals import Portals
from orchestrator.pipeline.epoch import persistence_mode
from orchestrator.pipeline.keys import Keys
from orchestrator.redis.server import EmbeddedRedis, _free_port
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import (
    DOMAIN,
    FORM,
    MEMBER,
    ROOT,
    TOKEN,
    _serve,
    eventually,
    form,
    message_payload,
)

WEBHOOK = f"http://{DOMAIN}/rest/1/hook-code/"


def _env(settings: Settings, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": redis_url,
        "KEY_PREFIX": settings.key_prefix,
        "QUEUE_NAME": settings.queue_name,
        "SPOOL_DIR": settings.spool_dir,
        "REDIS_EPOCH_CHECK_S": "0.2",
        "B24_MEMBER_ID": MEMBER,
        "B24_APPLICATION_TOKEN": TOKEN,
        "B24_WEBHOOK_URL": WEBHOOK,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }


class Processes:
    """Subprocesses of the test, each logging to its own file; stopped at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Path:
        log = self.tmp_path / f"{name}.log"
        with open(log, "wb") as out:
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "orchestrator.cli", *args],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        return log

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    yield running
    running.stop()


def _log_lines(path: Path, event: str) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            line = json.loads(raw)
            if isinstance(line, dict) and line.get("event") == event:
                lines.append(line)
    return lines


async def _json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        return await resp.json()


async def _metric(http: aiohttp.ClientSession, url: str, name: str) -> float | None:
    async with http.get(f"{url}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return None


async def _load(http: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> list[int]:
    """Post events of the configured portal one after another until stopped; their statuses."""
    statuses = []
    message_id = 0
    while not stop.is_set():
        message_id += 1
        body = form(message_payload(message_id % 5 + 1, message_id, f"load {message_id}"))
        with contextlib.suppress(aiohttp.ClientError):
            async with http.post(f"{url}/b24/events", data=body, headers=FORM) as resp:
                statuses.append(resp.status)
        await asyncio.sleep(0.02)
    return statuses


async def test_a_redis_restarted_empty_under_load_is_noticed_and_healed(
    volatile_redis: EmbeddedRedis,
    volatile_client: aioredis.Redis,
    fast_settings: Settings,
    processes: Processes,
) -> None:
    """Under a steady stream of events, Redis restarts with nothing: the ingress and the worker
    each log `redis_data_lost` at error level and count it; the configured portal is registered
    again (registry and REST credentials) and its events are accepted, with no restart of
    ours; /readyz and the gauge report the loss until `orchestrator redis ack-loss`."""
    port = _free_port()
    env = _env(fast_settings, volatile_redis.url)
    ingress_log = processes.start("ingress", ["ingress", "--port", str(port)], env)
    worker_log = processes.start(
        "worker", ["worker", "--handler", "tests.integration.recording:factory"], env
    )
    url = f"http://127.0.0.1:{port}"
    keys = Keys(fast_settings.key_prefix)
    async with aiohttp.ClientSession() as http:

        async def up() -> bool:
            with contextlib.suppress(aiohttp.ClientError):
                return "redis" in await _json(http, f"{url}/readyz")
            return False

        async def learned() -> bool:  # the processes know the epoch and the portal is there
            return bool(await volatile_client.exists(keys.epoch, keys.portal(MEMBER)) == 2)

        await eventually(up)
        await eventually(learned)
        stop = asyncio.Event()
        load = asyncio.create_task(_load(http, url, stop))
        await asyncio.sleep(1.0)
        assert not (await _json(http, f"{url}/readyz")).get("redis_data_lost")
        assert not _log_lines(ingress_log, "redis_data_lost")  # nothing lost so far
        volatile_redis.stop()
        volatile_redis.start()

        async def noticed() -> bool:
            ready = await _json(http, f"{url}/readyz")
            return bool(ready.get("redis_data_lost")) and bool(
                _log_lines(ingress_log, "redis_data_lost")
                and _log_lines(worker_log, "redis_data_lost")
            )

        await eventually(noticed, within_s=15)
        assert await _metric(http, url, "ol_redis_data_losses_total") == 1.0
        assert await _metric(http, url, "ol_redis_data_loss_unacknowledged") == 1.0
        for log in (ingress_log, worker_log):
            assert {line["level"] for line in _log_lines(log, "redis_data_lost")} == {"error"}
        portal = await Portals(volatile_client, keys).get(MEMBER)
        assert portal is not None
        assert portal.verify(TOKEN)
        assert (
            await AuthStore(volatile_client, prefix=keys.prefix).load(MEMBER)
        ).endpoint == WEBHOOK
        accepted_after = len(await volatile_client.keys(f"{keys.prefix}:*:dedup:*"))
        await asyncio.sleep(1.0)
        stop.set()
        statuses = await load
        assert len(await volatile_client.keys(f"{keys.prefix}:*:dedup:*")) > accepted_after
        assert statuses[-5:] == [200] * 5  # accepted again, no restart

        status = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "orchestrator.cli", "redis", "status"],
            env=env,
            cwd=ROOT,
            check=False,
        )
        assert status.returncode == 1  # a loss waits for its acknowledgment
        ack = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "orchestrator.cli", "redis", "ack-loss"],
            env=env,
            cwd=ROOT,
            check=False,
        )
        assert ack.returncode == 0

        async def acknowledged() -> bool:
            ready = await _json(http, f"{url}/readyz")
            gauge = await _metric(http, url, "ol_redis_data_loss_unacknowledged")
            return "redis_data_lost" not in ready and gauge == 0.0

        await eventually(acknowledged, within_s=10)
    assert all(p.poll() is None for p in processes.procs)


async def test_an_ingress_notices_at_start_a_redis_emptied_while_it_was_down(
    volatile_redis: EmbeddedRedis, fast_settings: Settings
) -> None:
    """The ingress remembers the epoch beside its spool: stopped, Redis emptied, started again,
    it reports the loss at once (no process was running to notice it)."""
    settings = fast_settings.model_copy(
        update={"redis_url": volatile_redis.url, "redis_epoch_check_s": 0.2}
    )
    async with aiohttp.ClientSession() as http:
        first = await _serve(settings)
        try:
            await eventually(lambda: _marker_written(settings))
            assert "redis_data_lost" not in await _json(http, f"{first.url}/readyz")
        finally:
            await first.stop()
        volatile_redis.stop()
        volatile_redis.start()
        second = await _serve(settings)
        try:

            async def reported() -> bool:
                return "redis_data_lost" in await _json(http, f"{second.url}/readyz")

            await eventually(reported, within_s=10)
        finally:
            await second.stop()


async def _marker_written(settings: Settings) -> bool:
    return await asyncio.to_thread((Path(settings.spool_dir) / ".redis-epoch").exists)


async def test_persistence_is_read_from_redis_itself(volatile_redis: EmbeddedRedis) -> None:
    """`CONFIG GET` tells a Redis that keeps acknowledged events only in memory from one with
    an append-only file."""
    durable = EmbeddedRedis(persistent=True)
    durable.start()
    try:
        for server, mode in ((volatile_redis, "none"), (durable, "aof")):
            client = aioredis.Redis.from_url(server.url)
            try:
                assert await persistence_mode(client) == mode
            finally:
                await client.aclose()
    finally:
        durable.close()
