"""The worker's own /metrics and /healthz endpoint, and the per-process ports `serve` hands out."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.cli.serve import worker_env
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings
from worker.observe import start_observe_server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session."""
    async with aiohttp.ClientSession() as session:
        yield session


async def test_worker_endpoint_serves_queue_depths_per_portal_and_liveness(
    settings: Settings, redis: aioredis.Redis, http: aiohttp.ClientSession
) -> None:
    """/metrics reads the pending dialogs per portal from Redis at scrape time; /healthz is 200
    while the worker runs and 503 once it is stopping."""
    store = Store(redis, settings)
    for member, chat in (("m-a", "1"), ("m-a", "2"), ("m-b", "1")):
        await store.ingest(member, chat, f"e{member}{chat}", "ONIMBOTMESSAGEADD", 1, {})
    alive = True
    port = _free_port()
    runner = await start_observe_server(
        settings.model_copy(update={"worker_metrics_port": port}), lambda: alive
    )
    assert runner is not None
    try:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        pending = {
            s.labels["member_id"]: s.value
            for f in text_string_to_metric_families(text)
            if f.name == "ol_portal_pending_dialogs"
            for s in f.samples
        }
        assert pending == {"m-a": 2.0, "m-b": 1.0}
        assert 'ol_queue_depth{queue="pending_dialogs"} 3.0' in text
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 200
        alive = False
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 503
    finally:
        await runner.cleanup()
        job_ids = await redis.zrange(settings.queue_name, 0, -1)
        await redis.delete(settings.queue_name, *(b"arq:job:" + j for j in job_ids))


async def test_worker_endpoint_is_off_when_its_port_is_zero(settings: Settings) -> None:
    """WORKER_METRICS_PORT=0 (the default) serves nothing."""
    assert await start_observe_server(settings, lambda: True) is None


async def _answers(host: str, port: int) -> bool:
    """Whether a TCP connection to host:port is accepted (False: refused)."""
    try:
        _, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@pytest.mark.parametrize(
    ("configured", "bound", "reachable"),
    [
        (None, "127.0.0.1", {"127.0.0.1": True, "127.0.0.2": False}),  # the default: loopback
        ("127.0.0.2", "127.0.0.2", {"127.0.0.1": False, "127.0.0.2": True}),
        ("0.0.0.0", "0.0.0.0", {"127.0.0.1": True, "127.0.0.2": True}),  # what the image sets
    ],
)
async def test_worker_endpoint_binds_where_worker_metrics_host_says(
    settings: Settings, configured: str | None, bound: str, reachable: dict[str, bool]
) -> None:
    """The socket is bound to WORKER_METRICS_HOST (127.0.0.1 unless set), and only there: on
    Linux every 127.x.y.z is a local address, so a second one shows what is refused."""
    update: dict[str, object] = {"worker_metrics_port": _free_port()}
    if configured is not None:
        update["worker_metrics_host"] = configured
    runner = await start_observe_server(settings.model_copy(update=update), lambda: True)
    assert runner is not None
    try:
        [(host, port)] = runner.addresses
        assert host == bound
        assert {h: await _answers(h, port) for h in reachable} == reachable
    finally:
        await runner.cleanup()


def test_serve_gives_each_worker_process_its_own_metrics_port() -> None:
    """With a base port P, worker i gets P + i; with 0 the environment is left alone."""
    env = {"A": "1"}
    ports = {worker_env(env, 9100, i)["WORKER_METRICS_PORT"] for i in range(4)}
    assert ports == {"9100", "9101", "9102", "9103"}
    assert worker_env(env, 0, 3) == env
