"""Redis unreachable: the ingress still answers 200 and spools, replayed once Redis is back;
workers stall through the outage instead of dying."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from orchestrator.keys import Keys
from orchestrator.redis_server import EmbeddedRedis
from orchestrator.registry import Portals
from orchestrator.settings import Settings
from orchestrator.store import Store
from tests.integration.pipeline.conftest import (
    DOMAIN,
    FORM,
    MEMBER,
    TOKEN,
    WorkerSpawner,
    _serve,
    eventually,
    form,
    message_payload,
)


async def test_redis_down_spools_with_200_and_replays_when_back(
    own_redis: EmbeddedRedis, own_client: aioredis.Redis, fast_settings: Settings, tmp_path: Path
) -> None:
    """Three events during an outage: 200 + spooled; after restart all three are queued once."""
    settings = fast_settings.model_copy(update={"redis_url": own_redis.url})
    await Portals(own_client, Keys(settings.key_prefix)).register(MEMBER, DOMAIN, TOKEN)
    ingress = await _serve(settings)
    url = ingress.url
    try:
        async with aiohttp.ClientSession() as http:
            own_redis.stop()
            bodies = [form(message_payload(7, 900 + i, f"offline {i}")) for i in range(3)]
            for body in bodies:
                async with http.post(f"{url}/b24/events", data=body, headers=FORM) as resp:
                    assert resp.status == 200
                    assert (await resp.json())["spooled"] is True
            async with http.get(f"{url}/readyz") as resp:  # still ready: the spool accepts
                assert resp.status == 200
                assert await resp.json() == {"redis": "down", "spool": "ok", "accepting": True}
            forged = form(message_payload(7, 999, "forged", token="forged"))
            async with http.post(f"{url}/b24/events", data=forged, headers=FORM) as resp:
                assert resp.status == 200  # cannot be verified now; verified at replay

            own_redis.start()
            store = Store(own_client, settings)
            d = store.dialog(MEMBER, "7")

            spool_dir = Path(settings.spool_dir)

            async def replayed() -> bool:
                return await own_client.llen(d.inbox) == 3 and not any(
                    await asyncio.to_thread(lambda: list(spool_dir.glob("spool-*")))
                )

            await eventually(replayed)
            # a late duplicate of a spooled event is absorbed by the same dedup key
            async with http.post(f"{url}/b24/events", data=bodies[0], headers=FORM) as resp:
                assert (await resp.json())["duplicate"] is True
        entries = await own_client.lrange(d.inbox, 0, -1)
        assert [e.split(b"|", 1)[0] for e in entries] == [b"1", b"2", b"3"]
        assert all(b"offline" in e and b"forged" not in e for e in entries)
        assert not any(b"application_token" in e or TOKEN.encode() in e for e in entries)
        assert await own_client.exists(settings.queue_name)  # and a drain job is queued
    finally:
        await ingress.stop()


async def test_not_ready_only_when_neither_redis_nor_the_spool_can_take_an_event(
    own_redis: EmbeddedRedis, own_client: aioredis.Redis, fast_settings: Settings, tmp_path: Path
) -> None:
    """An unwritable spool with Redis up is still ready; with Redis down too, /readyz is 503
    and says why; Redis back makes it ready again."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")  # a spool dir below a plain file can never be created
    settings = fast_settings.model_copy(
        update={"redis_url": own_redis.url, "spool_dir": str(blocker / "spool")}
    )
    ingress = await _serve(settings)
    url = ingress.url
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> tuple[int, object]:
                async with http.get(f"{url}/readyz") as resp:
                    return resp.status, await resp.json()

            # the reason is the spool directory's: below a plain file, it cannot be made
            why = "Not a directory (ENOTDIR)"
            up = {"redis": "up", "spool": "unwritable", "spool_reason": why, "accepting": True}
            assert await ready() == (200, up)
            own_redis.stop()
            down = {"redis": "down", "spool": "unwritable", "spool_reason": why, "accepting": False}
            assert await ready() == (503, down)
            own_redis.start()

            async def ready_again() -> bool:
                return await ready() == (200, up)

            await eventually(ready_again)
    finally:
        await ingress.stop()


async def test_worker_survives_a_redis_restart_and_drains_afterwards(
    own_redis: EmbeddedRedis,
    own_client: aioredis.Redis,
    fast_settings: Settings,
    spawn_worker: WorkerSpawner,
) -> None:
    """A worker whose Redis goes away for seconds keeps running and handles what comes next."""
    settings = fast_settings.model_copy(update={"redis_url": own_redis.url})
    worker = spawn_worker(redis_url=own_redis.url)
    store = Store(own_client, settings)
    await store.ingest(MEMBER, "1", "before", "ONIMBOTMESSAGEADD", 1, {})
    log_key = f"{settings.key_prefix}:rec:log"

    async def handled(n: int) -> bool:
        return await own_client.llen(log_key) >= n

    await eventually(lambda: handled(1))
    own_redis.stop()
    await asyncio.sleep(2)
    own_redis.start()
    await store.ingest(MEMBER, "1", "after", "ONIMBOTMESSAGEADD", 1, {})
    await eventually(lambda: handled(2))
    assert worker.poll() is None
    assert [line.split(b"|")[2] for line in await own_client.lrange(log_key, 0, -1)] == [
        b"before",
        b"after",
    ]
