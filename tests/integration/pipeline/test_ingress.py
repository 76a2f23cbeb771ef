"""The ingress over real HTTP: what it accepts, what it refuses, and that refusals store nothing."""

from __future__ import annotations

import asyncio

import aiohttp
import redis.asyncio as aioredis

from orchestrator.pipeline.keys import Keys
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import FORM, MEMBER, eventually, form, message_payload
from tests.integration.recording import RecordingHandler


async def _keys(redis: aioredis.Redis, prefix: str) -> set[str]:
    return {k.decode() async for k in redis.scan_iter(match=f"{prefix}*", count=1000)}


async def test_duplicate_delivery_is_stored_once_and_handled_once(
    ingress_url: str,
    http: aiohttp.ClientSession,
    redis: aioredis.Redis,
    recording: RecordingHandler,
    inproc_worker: None,
) -> None:
    """The same event posted twice is answered 200 both times, queued once and handled once."""
    body = form(message_payload(901, 70001, "hi"))
    first = await http.post(f"{ingress_url}/b24/events", data=body, headers=FORM)
    second = await http.post(f"{ingress_url}/b24/events", data=body, headers=FORM)
    assert (first.status, second.status) == (200, 200)
    assert (await first.json())["duplicate"] is False
    assert (await second.json())["duplicate"] is True

    async def handled() -> bool:
        return await redis.llen(recording.log_key) >= 1

    await eventually(handled)
    await asyncio.sleep(0.3)  # a second handling, if there were one, would show by now
    assert await redis.lrange(recording.log_key, 0, -1) == [b"901|1|msg:70001:add|hi"]


async def test_refused_events_get_their_4xx_and_store_nothing(
    ingress_url: str, http: aiohttp.ClientSession, redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """Forged token 401, unknown portal 403, bad body 400, huge body 413, unknown event 422."""
    url = f"{ingress_url}/b24/events"
    before = await _keys(redis, fast_settings.key_prefix)
    unknown = message_payload(901, 1)
    unknown["event"] = "ONCRMDEALADD"
    cases = [
        (form(message_payload(901, 1, token="forged")), 401, "forged_token"),
        (form(message_payload(901, 2, member="m-nobody")), 403, "unknown_portal"),
        (b"event=ONIMBOTMESSAGEADD&data[PARAMS][MESSAGE]=x", 400, "malformed"),
        (b"\xff\xfe not utf-8", 400, "malformed"),
        (b"x=" + b"a" * (fast_settings.ingress_max_body_bytes + 10), 413, "too_large"),
        (form(unknown), 422, "unknown_event"),
    ]
    for body, status, error in cases:
        async with http.post(url, data=body, headers=FORM) as resp:
            assert resp.status == status, (error, await resp.text())
            answer = await resp.json()
            assert answer["error"] == error
            assert answer["reason"]
    after = await _keys(redis, fast_settings.key_prefix)
    keys = Keys(fast_settings.key_prefix)
    # the epoch marker is the ingress's own, written at its start (orchestrator/pipeline/epoch.py)
    assert before == after == {keys.portals, keys.portal(MEMBER), keys.epoch}


async def test_huge_chunked_body_is_refused_with_413(
    ingress_url: str, http: aiohttp.ClientSession, fast_settings: Settings
) -> None:
    """A body without Content-Length is still cut off at the limit."""
    chunk = b"a" * 65536

    async def gen():  # type: ignore[no-untyped-def]
        for _ in range(fast_settings.ingress_max_body_bytes // len(chunk) + 2):
            yield chunk

    async with http.post(f"{ingress_url}/b24/events", data=gen(), headers=FORM) as resp:
        assert resp.status == 413


async def test_health_readiness_and_metrics_answer(
    ingress_url: str, http: aiohttp.ClientSession
) -> None:
    """/healthz and /readyz answer 200 with Redis up; /metrics exposes the ol_* families."""
    await http.post(f"{ingress_url}/b24/events", data=form(message_payload(5, 9)), headers=FORM)
    for path in ("/healthz", "/readyz"):
        async with http.get(f"{ingress_url}{path}") as resp:
            assert resp.status == 200
    async with http.get(f"{ingress_url}/readyz") as resp:
        assert await resp.json() == {"redis": "up", "spool": "ok", "accepting": True}
    async with http.get(f"{ingress_url}/metrics") as resp:
        text = await resp.text()
    assert f'ol_events_in_total{{event="ONIMBOTMESSAGEADD",member_id="{MEMBER}"}}' in text
    assert 'ol_queue_depth{queue="pending_dialogs"}' in text
