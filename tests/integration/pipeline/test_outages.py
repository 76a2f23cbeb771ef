"""Redis unreachable: the ingress still answers 200 and spools, replayed once Redis is back;
workers stall through the outage instead of dying."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from orchestrator.ingress.portals import Portals
from orchestrator.ingress.spool import Spool
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.store import Store
from orchestrator.redis.server import EmbeddedRedis
from orchestrator.settings import Settings
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


async def test_the_spool_keeps_no_access_or_refresh_token_but_an_installs_proof(
    own_redis: EmbeddedRedis, own_client: aioredis.Redis, fast_settings: Settings
) -> None:
    """While Redis is down, a bot event carrying the bot's and the user's token pairs is spooled
    with its application token (checked at replay) and without either pair; an install keeps
    its refresh token (verified at replay) and drops its access token. After the outage the
    event reaches its inbox as usual."""
    settings = fast_settings.model_copy(update={"redis_url": own_redis.url})
    await Portals(own_client, Keys(settings.key_prefix)).register(MEMBER, DOMAIN, TOKEN)
    message = message_payload(12, 1201, "spooled with tokens")
    pair = {"access_token": "bot-at-9", "refresh_token": "bot-rt-9"}
    message["data"]["BOT"]["77"].update({**pair, "AUTH": dict(pair)})
    message["auth"].update({"access_token": "user-at-9", "refresh_token": "user-rt-9"})
    install = {
        "event": "ONAPPINSTALL",
        "ts": "1767225601",
        "data": {"VERSION": "1"},
        "auth": {
            "domain": DOMAIN,
            "member_id": "m-installing",
            "application_token": "install-app-token",
            "access_token": "install-at-9",
            "refresh_token": "install-rt-9",
        },
    }
    ingress = await _serve(settings)
    try:
        async with aiohttp.ClientSession() as http:
            own_redis.stop()
            for payload in (message, install):
                async with http.post(
                    f"{ingress.url}/b24/events", data=form(payload), headers=FORM
                ) as resp:
                    assert (await resp.json())["spooled"] is True
            spooled = await asyncio.to_thread(_spooled_bodies, Path(settings.spool_dir))
            modes = await asyncio.to_thread(_modes, Path(settings.spool_dir))
            assert modes == {0o600}  # readable by the ingress's user alone
            assert b"spooled with tokens" in spooled
            for secret in (b"bot-at-9", b"bot-rt-9", b"user-at-9", b"user-rt-9", b"install-at-9"):
                assert secret not in spooled
            assert b"install-rt-9" in spooled  # the install's proof, verified at replay
            assert TOKEN.encode() in spooled  # the event's proof, verified at replay
            own_redis.start()
            inbox = Store(own_client, settings).dialog(MEMBER, "12").inbox

            async def replayed() -> bool:
                return await own_client.llen(inbox) == 1

            await eventually(replayed)
        [entry] = await own_client.lrange(inbox, 0, -1)
        assert b"spooled with tokens" in entry
        assert not any(s in entry for s in (b"bot-at-9", b"user-rt-9", TOKEN.encode()))
    finally:
        await ingress.stop()


def _spooled_bodies(spool_dir: Path) -> bytes:
    """Every spooled record's body, as the replayer reads it (the lines hold them in base64)."""
    return b"".join(r.body for path in spool_dir.glob("spool-*") for r in Spool.read(path))


def _modes(spool_dir: Path) -> set[int]:
    return {path.stat().st_mode & 0o777 for path in spool_dir.glob("spool-*")}
