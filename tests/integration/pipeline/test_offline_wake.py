"""ONOFFLINEEVENT at the ingress: verified like every event, then a wake-up published for the
offline consumers, a 200, and nothing queued or kept (its access and refresh tokens included);
a forged one is refused and wakes nobody."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from orchestrator.ingress.portals import Portals
from orchestrator.pipeline.keys import Keys
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import DOMAIN, FORM, MEMBER, TOKEN, form

SECRETS = ("acc-9f1e2d", "ref-7c3b5a")


def notice(token: str = TOKEN) -> dict[str, Any]:
    """ONOFFLINEEVENT as the portal posts it: no data, and both tokens in `auth`."""
    return {
        "event": "ONOFFLINEEVENT",
        "event_handler_id": "12",
        "ts": "1767225601",
        "auth": {
            "domain": DOMAIN,
            "member_id": MEMBER,
            "application_token": token,
            "access_token": SECRETS[0],
            "refresh_token": SECRETS[1],
            "expires_in": "3600",
            "user_id": "1",
        },
    }


@pytest.fixture
async def wake(redis: aioredis.Redis, fast_settings: Settings) -> AsyncIterator[PubSub]:
    """A subscriber of the offline wake-up channel, as every consumer has one."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(Keys(fast_settings.key_prefix).offline_wake)
    yield pubsub
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _next(pubsub: PubSub, within_s: float) -> dict[str, Any] | None:
    """The next published message within `within_s` (subscribe confirmations skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while (left := deadline - loop.time()) > 0:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        if message is not None:
            return dict(message)
    return None


async def _our_keys(redis: aioredis.Redis, prefix: str) -> dict[str, bytes]:
    """Every key under the test's prefix with its dumped value."""
    return {
        raw.decode(): await redis.dump(raw) or b""
        async for raw in redis.scan_iter(match=f"{prefix}*")
    }


async def test_a_verified_notice_wakes_the_consumers_and_queues_nothing(
    redis: aioredis.Redis,
    fast_settings: Settings,
    portal: Portals,
    ingress_url: str,
    http: aiohttp.ClientSession,
    wake: PubSub,
) -> None:
    before = await _our_keys(redis, fast_settings.key_prefix)
    async with http.post(f"{ingress_url}/b24/events", data=form(notice()), headers=FORM) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["ok"] is True
    message = await _next(wake, 5.0)
    assert message is not None
    assert message["data"] == MEMBER.encode()
    after = await _our_keys(redis, fast_settings.key_prefix)
    assert after == before  # no inbox, no dedup key, no pending dialog, no token
    assert not [k for k, v in after.items() if any(s.encode() in v for s in SECRETS)]


async def test_a_forged_notice_is_refused_and_wakes_nobody(
    portal: Portals, ingress_url: str, http: aiohttp.ClientSession, wake: PubSub
) -> None:
    forged = form(notice(token="not-the-portals-token"))
    async with http.post(f"{ingress_url}/b24/events", data=forged, headers=FORM) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"] == "forged_token"
    assert await _next(wake, 0.5) is None
