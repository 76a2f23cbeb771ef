"""A busy worker process survives a Redis restart: same process, no stray task errors, and
everything sent before and after the outage is handled exactly once, in order — whether its
Redis calls ride the outage out, or give up and its supervisor rebuilds the arq worker."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from orchestrator.ingress.portals import Portals
from orchestrator.pipeline.keys import Keys
from orchestrator.redis.server import EmbeddedRedis
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import (
    DOMAIN,
    MEMBER,
    TOKEN,
    WorkerSpawner,
    _serve,
    eventually,
)
from tests.integration.pipeline.test_processes import (
    _check_exactly_once_in_order,
    _send_dialog,
)
from tests.integration.recording import RecordingHandler

pytestmark = pytest.mark.slow

OUTAGE_S = 3.0  # as long as the chaos run keeps Redis down


@pytest.mark.parametrize(
    ("ride_out_s", "rebuilt"),
    [(10.0, False), (0.5, True)],
    ids=["calls-ride-it-out", "arq-worker-rebuilt"],
)
async def test_busy_worker_keeps_its_process_through_a_redis_restart(
    ride_out_s: float,
    rebuilt: bool,
    own_redis: EmbeddedRedis,
    own_client: aioredis.Redis,
    fast_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """Redis stops for seconds while drains are mid-effect: the worker process stays the same
    one, logs no unretrieved task exception, and drains what was sent before and after."""
    monkeypatch.setenv("WORKER_REDIS_RIDE_OUT_S", str(ride_out_s))
    spawn_worker: WorkerSpawner = request.getfixturevalue("spawn_worker")  # sees the env
    settings = fast_settings.model_copy(update={"redis_url": own_redis.url})
    await Portals(own_client, Keys(settings.key_prefix)).register(MEMBER, DOMAIN, TOKEN)
    recording = RecordingHandler(own_client, settings.key_prefix)
    ingress = await _serve(settings)
    url = ingress.url
    # each effect takes 0.2 s, so drains are in the middle of one when Redis goes
    worker = spawn_worker("tests.integration.recording:slow_factory", redis_url=own_redis.url)
    pid = worker.pid
    before, after, per = range(1, 11), range(11, 16), 8
    try:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(_send_dialog(http, url, chat, per) for chat in before))

            async def draining() -> bool:
                return await own_client.llen(recording.log_key) >= 10

            await eventually(draining, within_s=30)
            await asyncio.to_thread(own_redis.stop)
            await asyncio.sleep(OUTAGE_S)
            await asyncio.to_thread(own_redis.start)
            assert worker.poll() is None, "the worker exited while Redis was down"
            await asyncio.gather(*(_send_dialog(http, url, chat, per) for chat in after))

            async def all_handled() -> bool:
                total = (len(before) + len(after)) * per
                return await own_client.llen(recording.log_key) >= total

            await eventually(all_handled, within_s=60)
    finally:
        await ingress.stop()
    await _check_exactly_once_in_order(own_client, recording, settings, range(1, 16), per)
    assert worker.poll() is None
    assert worker.pid == pid
    log = (tmp_path / "worker-0.log").read_text(errors="replace")
    assert "Task exception was never retrieved" not in log
    assert "Traceback" not in log
    # which way it survived: the short ride-out must have taken the rebuild path
    assert ("worker_lost_redis" in log) is rebuilt


async def test_sigterm_while_redis_is_down_stops_the_worker_cleanly(
    own_redis: EmbeddedRedis,
    own_client: aioredis.Redis,
    fast_settings: Settings,
    spawn_worker: WorkerSpawner,
    tmp_path: Path,
) -> None:
    """A worker stopped in the middle of an outage still exits 0 within its grace plus the
    ride-out, without stray task errors (it cannot hand its dialogs back: the sweeper will)."""
    settings = fast_settings.model_copy(update={"redis_url": own_redis.url})
    await Portals(own_client, Keys(settings.key_prefix)).register(MEMBER, DOMAIN, TOKEN)
    recording = RecordingHandler(own_client, settings.key_prefix)
    ingress = await _serve(settings)
    url = ingress.url
    worker = spawn_worker("tests.integration.recording:slow_factory", redis_url=own_redis.url)
    try:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(_send_dialog(http, url, chat, 8) for chat in range(1, 6)))

        async def draining() -> bool:
            return await own_client.llen(recording.log_key) >= 5

        await eventually(draining, within_s=30)
    finally:
        await ingress.stop()
    await asyncio.to_thread(own_redis.stop)
    worker.send_signal(signal.SIGTERM)
    bound_s = settings.shutdown_grace_s + settings.worker_redis_ride_out_s + 10
    assert await asyncio.to_thread(worker.wait, bound_s) == 0
    log = (tmp_path / "worker-0.log").read_text(errors="replace")
    assert "Task exception was never retrieved" not in log
    assert "Traceback" not in log
