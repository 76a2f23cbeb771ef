"""Redis down and the spool out of room (a really full filesystem, or the SPOOL_MAX_BYTES cap):
what cannot be spooled is answered 503 with a reason and counted; everything answered 200 is
replayed once Redis is back, with the disk still full and without restarting the ingress; and
the next outage spools again."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from orchestrator.dialog.inputs import ClientMessage, OperatorMessage
from orchestrator.events.convert import inputs_of_stored
from orchestrator.ingress.portals import Portals
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.records import StoredEvent
from orchestrator.pipeline.store import Store
from orchestrator.redis.server import EmbeddedRedis
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import (
    DOMAIN,
    FORM,
    MEMBER,
    TOKEN,
    _serve,
    eventually,
    form,
    message_payload,
)
from tests.tmpfs import small_tmpfs

CHATS = (31, 32, 33)  # the events are spread over a few dialogs


@dataclass
class Outcome:
    """What the ingress answered, by message id."""

    acked: list[int] = field(default_factory=list)
    refused: dict[int, dict[str, Any]] = field(default_factory=dict)


def _chat(message_id: int) -> int:
    return CHATS[message_id % len(CHATS)]


async def _post(http: aiohttp.ClientSession, url: str, message_id: int, outcome: Outcome) -> int:
    body = form(message_payload(_chat(message_id), message_id, f"kept or lost? #{message_id}"))
    async with http.post(f"{url}/b24/events", data=body, headers=FORM) as resp:
        answer = await resp.json()
        if resp.status == 200:
            assert answer == {"ok": True, "spooled": True}
            outcome.acked.append(message_id)
        else:
            assert resp.status == 503, (resp.status, answer)
            outcome.refused[message_id] = answer
        return resp.status


async def _post_until_refused(
    http: aiohttp.ClientSession, url: str, first: int, outcome: Outcome
) -> None:
    """Post events until five in a row are refused (the spool holds far fewer than 400)."""
    in_a_row = 0
    for message_id in range(first, first + 400):
        in_a_row = in_a_row + 1 if await _post(http, url, message_id, outcome) == 503 else 0
        if in_a_row == 5:
            return
    raise AssertionError(f"the spool never filled up: {len(outcome.acked)} events taken")


async def _ready(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{url}/readyz") as resp:
        return resp.status, await resp.json()


async def _queued(client: aioredis.Redis, store: Store) -> set[int]:
    """The message ids in the dialogs' inboxes."""
    found = set()
    for chat in CHATS:
        for entry in await client.lrange(store.dialog(MEMBER, str(chat)).inbox, 0, -1):
            event = StoredEvent.from_entry(MEMBER, str(chat), entry)
            found |= {
                inp.message_id
                for inp in inputs_of_stored(event.payload)
                if isinstance(inp, OperatorMessage | ClientMessage)
            }
    return found


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"{name}_total", labels) or 0.0


async def _replayed_all(
    client: aioredis.Redis, store: Store, spool_dir: Path, acked: list[int]
) -> None:
    """Every event answered 200 reaches its inbox, and the spool empties."""

    async def done() -> bool:
        files = await asyncio.to_thread(lambda: list(spool_dir.glob("spool-*")))
        return not files and await _queued(client, store) >= set(acked)

    await eventually(done)


async def _outage_spools_again(
    http: aiohttp.ClientSession,
    url: str,
    redis: EmbeddedRedis,
    client: aioredis.Redis,
    store: Store,
    spool_dir: Path,
) -> None:
    """A next outage: three events spooled with 200, and replayed once Redis is back."""
    redis.stop()
    again = Outcome()
    for message_id in (901, 902, 903):
        assert await _post(http, url, message_id, again) == 200
    assert await _ready(http, url) == (200, {"redis": "down", "spool": "ok", "accepting": True})
    redis.start()
    await _replayed_all(client, store, spool_dir, again.acked)


async def test_a_really_full_disk_refuses_with_503_and_replays_every_200_without_a_restart(
    own_redis: EmbeddedRedis, own_client: aioredis.Redis, fast_settings: Settings
) -> None:
    """The spool on a 64 KiB tmpfs, Redis down: events are spooled until the disk is full, then
    answered 503 `spool_full` (ENOSPC) and counted, and /readyz says so. Redis comes back while
    the disk is still full: every event answered 200 reaches its dialog's inbox, none answered
    503 does, the same ingress goes on, and it spools again on the next outage."""
    spool_dir = Path(fast_settings.spool_dir)
    settings = fast_settings.model_copy(update={"redis_url": own_redis.url, "spool_max_bytes": 0})
    await Portals(own_client, Keys(settings.key_prefix)).register(MEMBER, DOMAIN, TOKEN)
    store = Store(own_client, settings)
    with small_tmpfs(spool_dir, "64k"):
        lost_before = _count("ol_events_lost", reason="spool_full")
        ingress = await _serve(settings)
        url = ingress.url
        try:
            async with aiohttp.ClientSession() as http:
                own_redis.stop()
                outcome = Outcome()
                with capture_logs() as logs:
                    await _post_until_refused(http, url, 1, outcome)
                assert outcome.acked  # the disk took some before it filled up
                for answer in outcome.refused.values():
                    assert answer["error"] == "spool_full"
                    assert "(ENOSPC)" in answer["reason"]
                lost = [line for line in logs if line["event"] == "event_lost"]
                assert len(lost) == len(outcome.refused)
                assert all(line["log_level"] == "error" for line in lost)
                # the replayer ticked meanwhile: Redis down is no spool failure, and stays quiet
                assert not [line for line in logs if line["log_level"] == "error"][len(lost) :]
                assert _count("ol_events_lost", reason="spool_full") - lost_before == len(lost)
                status, ready = await _ready(http, url)
                assert (status, ready["spool"], ready["accepting"]) == (503, "full", False)
                assert "(ENOSPC)" in ready["spool_reason"]

                own_redis.start()  # the disk is still full: claim, read, ingest, unlink
                await _replayed_all(own_client, store, spool_dir, outcome.acked)
                assert await _queued(own_client, store) == set(outcome.acked)

                await _outage_spools_again(http, url, own_redis, own_client, store, spool_dir)
        finally:
            await ingress.stop()


async def test_the_spool_cap_refuses_with_503_and_replays_every_200_without_a_restart(
    own_redis: EmbeddedRedis, own_client: aioredis.Redis, fast_settings: Settings
) -> None:
    """SPOOL_MAX_BYTES of 8 KiB, Redis down: past the cap events are answered 503 `spool_full`
    with the usage in the reason, /readyz says the spool is full (and, Redis down too, that
    the replica cannot accept); once Redis is back every event answered 200 is replayed and
    none answered 503, and the freed room takes the next outage's events."""
    cap = 8 * 1024
    settings = fast_settings.model_copy(update={"redis_url": own_redis.url, "spool_max_bytes": cap})
    await Portals(own_client, Keys(settings.key_prefix)).register(MEMBER, DOMAIN, TOKEN)
    store = Store(own_client, settings)
    spool_dir = Path(settings.spool_dir)
    lost_before = _count("ol_events_lost", reason="spool_full")
    errors_before = _count("ol_spool_errors", op="append")
    ingress = await _serve(settings)
    url = ingress.url
    try:
        async with aiohttp.ClientSession() as http:
            own_redis.stop()
            outcome = Outcome()
            await _post_until_refused(http, url, 1, outcome)
            assert outcome.acked
            for answer in outcome.refused.values():
                assert answer["error"] == "spool_full"
                assert re.fullmatch(rf"spool full: \d+ bytes of {cap}", answer["reason"])
            assert _count("ol_events_lost", reason="spool_full") - lost_before == len(
                outcome.refused
            )
            assert _count("ol_spool_errors", op="append") - errors_before == len(outcome.refused)
            status, ready = await _ready(http, url)
            assert (status, ready["redis"], ready["spool"]) == (503, "down", "full")
            assert ready["accepting"] is False
            assert re.fullmatch(rf"spool full: \d+ bytes of {cap}", ready["spool_reason"])

            own_redis.start()
            await _replayed_all(own_client, store, spool_dir, outcome.acked)
            assert await _queued(own_client, store) == set(outcome.acked)

            await _outage_spools_again(http, url, own_redis, own_client, store, spool_dir)
    finally:
        await ingress.stop()


async def test_an_unreadable_spool_file_is_reported_and_holds_back_no_other(
    own_redis: EmbeddedRedis, own_client: aioredis.Redis, fast_settings: Settings
) -> None:
    """A `spool-*.jsonl` that cannot be read (a directory by that name) fails every replay tick:
    each failure is logged at error level with its reason and counted under `read`, and the
    events spooled during the outage are replayed all the same."""
    settings = fast_settings.model_copy(update={"redis_url": own_redis.url})
    await Portals(own_client, Keys(settings.key_prefix)).register(MEMBER, DOMAIN, TOKEN)
    store = Store(own_client, settings)
    spool_dir = Path(settings.spool_dir)
    (spool_dir / "spool-1-1-baddir.jsonl").mkdir(parents=True)
    read_errors = _count("ol_spool_errors", op="read")
    ingress = await _serve(settings)
    url = ingress.url
    try:
        async with aiohttp.ClientSession() as http:
            own_redis.stop()
            outcome = Outcome()
            for message_id in (1, 2, 3):
                assert await _post(http, url, message_id, outcome) == 200
            with capture_logs() as logs:
                own_redis.start()

                async def replayed() -> bool:
                    return await _queued(own_client, store) == {1, 2, 3}

                await eventually(replayed)

                async def reported() -> bool:
                    return _count("ol_spool_errors", op="read") > read_errors

                await eventually(reported)
            failed = [line for line in logs if line["event"] == "spool_error"]
            assert failed
            assert all(line["log_level"] == "error" for line in failed)
            assert {line["op"] for line in failed} == {"read"}
            assert all("(EISDIR)" in line["reason"] for line in failed)
    finally:
        await ingress.stop()
