"""Shared fixtures: a real Redis (REDIS_URL, else an embedded server), a per-test key prefix,
and the Bitrix24 emulator on port 0 inside the test process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from orchestrator.redis.server import EmbeddedRedis
from orchestrator.settings import Settings


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The Redis the suite asked for: REDIS_URL if set, else an embedded server of its own."""
    configured = Settings().redis_url
    if configured:
        yield configured
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture
def key_prefix() -> str:
    """A prefix unique to this test, so tests never see each other's keys."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis(redis_url: str, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A client on the test Redis; every key under this test's prefix is deleted afterwards."""
    client: aioredis.Redis = aioredis.Redis.from_url(redis_url, decode_responses=False)
    yield client
    async for key in client.scan_iter(match=f"{key_prefix}*", count=1000):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
def settings(redis_url: str, key_prefix: str) -> Settings:
    """Settings bound to the test Redis and this test's prefix and queue."""
    return Settings(
        redis_url=redis_url,
        key_prefix=key_prefix,
        queue_name=f"{key_prefix}:queue",
        log_format="console",
        spool_dir=f"/tmp/{key_prefix}-spool",
    )


@pytest.fixture
async def emulator() -> AsyncIterator[Any]:
    """The emulator (standard plan, one seeded portal) on 127.0.0.1 and a free port."""
    from emulator.server import EmulatorConfig, run_emulator

    async with run_emulator(EmulatorConfig()) as emu:
        yield emu
