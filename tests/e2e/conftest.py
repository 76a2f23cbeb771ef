"""Fixtures of the end-to-end tests: the whole stack (ingress, workers with the production
handler, the emulated portal) on loopback, with the demo's portal settings and scenario."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from harness.demo.portal_setup import write_demo_scenario
from harness.demo.stack import Stack, StackOptions, run_stack
from orchestrator.dialog.state import DialogState
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings


async def eventually(predicate: Callable[[], Awaitable[bool]], within_s: float = 40.0) -> None:
    """Poll until `predicate` holds; fail after `within_s` (a liveness bound, not a speed check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await predicate():
        assert loop.time() < deadline, f"condition not reached within {within_s} s"
        await asyncio.sleep(0.05)


@pytest.fixture
def e2e_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Test settings with the demo scenario and quick recovery."""
    return settings.model_copy(
        update={
            "scenario_path": write_demo_scenario(tmp_path / "scenario.yaml"),
            "lease_ms": 2000,
            "sweep_interval_s": 0.5,
            "shutdown_grace_s": 2.0,
            "spool_dir": str(tmp_path / "spool"),
            "log_level": "WARNING",
        }
    )


@pytest.fixture
async def stack(e2e_settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Stack]:
    """The whole stack with one in-process worker."""
    async with run_stack(e2e_settings, StackOptions(workers=1, in_process=True)) as running:
        yield running
    await drop_arq_jobs(redis, e2e_settings.queue_name)


async def drop_arq_jobs(redis: aioredis.Redis, queue: str) -> None:
    """arq's job records live outside our prefix: delete those of this test's queue."""
    job_ids = await redis.zrange(queue, 0, -1)
    if job_ids:
        await redis.delete(*(b"arq:job:" + j for j in job_ids))
    await redis.delete(queue)


async def dialog_state(stack: Stack, chat_id: int) -> DialogState | None:
    """Our committed state of a dialog."""
    store = Store(stack.redis, stack.settings)
    state = await store.state(store.dialog(stack.member_id, str(chat_id)))
    return DialogState.from_json(state.data) if state.data else None


async def stored_values(redis: aioredis.Redis, patterns: list[str]) -> dict[bytes, bytes]:
    """Every key matching `patterns`, with its value(s) joined into bytes (for scanning)."""
    found: dict[bytes, bytes] = {}
    for pattern in patterns:
        async for key in redis.scan_iter(match=pattern, count=1000):
            kind = (await redis.type(key)).decode()
            if kind == "string":
                found[key] = await redis.get(key) or b""
            elif kind == "hash":
                found[key] = b" ".join(k + b"=" + v for k, v in (await redis.hgetall(key)).items())
            elif kind in ("set",):
                found[key] = b" ".join(await redis.smembers(key))
            elif kind == "list":
                found[key] = b" ".join(await redis.lrange(key, 0, -1))
            elif kind == "zset":
                found[key] = b" ".join(await redis.zrange(key, 0, -1))
            elif kind == "stream":
                entries = await redis.xrange(key)
                found[key] = b" ".join(k + b"=" + v for _, f in entries for k, v in f.items())
            else:
                found[key] = b""
    return found
