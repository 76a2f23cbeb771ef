"""OAuth against the emulator: verified registration, one refresh for the whole fleet, and an
endpoint that a refresh never moves to another host."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from orchestrator.bitrix.auth import AuthStore
from orchestrator.errors import ConfigurationError
from orchestrator.settings import Settings
from tests.integration.client_support import control, oauth_client


async def _refreshes(url: str) -> int:
    return int((await control(url, "GET", "counters"))["refreshes"])


@pytest.mark.parametrize("coalesce", [False, True])
async def test_twenty_callers_on_an_expired_token_share_one_refresh(
    emulator: Any, settings: Settings, coalesce: bool
) -> None:
    """After expiry, 20 concurrent calls from two clients (two "processes") cause one refresh."""
    creds = emulator.credentials
    first = await oauth_client(settings, creds, coalesce=coalesce)
    second = await oauth_client(settings, creds, coalesce=coalesce)
    try:
        member = creds["member_id"]
        await first.call("user.get", {}, member_id=member)
        await control(emulator.url, "POST", "expire-tokens")
        before = await _refreshes(emulator.url)
        calls = [
            c.call("user.get", {"FILTER": {"ID": 1}}, member_id=member)
            for c in (first, second)
            for _ in range(10)
        ]
        results = await asyncio.gather(*calls)
        assert await _refreshes(emulator.url) == before + 1
        assert all(int(r.result[0]["ID"]) == 1 for r in results)
        stored = await first.auth.load(member)
        assert stored.access_token != creds["access_token"]
        assert stored.refresh_token != creds["refresh_token"]  # the rotated pair is stored
    finally:
        await first.close()
        await second.close()


async def test_register_oauth_stores_endpoint_tokens_and_the_endpoint_host(
    redis: aioredis.Redis, settings: Settings
) -> None:
    """A verified install's endpoint and pair land in the credentials hash, with the host the
    endpoint names as the portal's domain; writing again bumps the version."""
    store = AuthStore(redis, prefix=settings.key_prefix)
    creds = await store.register_oauth(
        "m1", "https://x.bitrix24.com/rest/", access_token="a", refresh_token="r", expires=1
    )
    assert (creds.kind, creds.version, creds.domain) == ("oauth", 1, "x.bitrix24.com")
    assert creds.endpoint == "https://x.bitrix24.com/rest/"
    again = await store.register_oauth(
        "m1", "https://x.bitrix24.com/rest/", access_token="a2", refresh_token="r2", expires=2
    )
    assert (again.access_token, again.version) == ("a2", 2)


async def test_an_endpoint_without_a_host_is_refused(
    redis: aioredis.Redis, settings: Settings
) -> None:
    """Credentials are never stored for a URL that names no host."""
    store = AuthStore(redis, prefix=settings.key_prefix)
    with pytest.raises(ConfigurationError):
        await store.register_oauth("m2", "/rest/", access_token="a", refresh_token="r", expires=0)
    with pytest.raises(ConfigurationError):
        await store.load("m2")


async def test_a_refresh_answer_naming_another_host_does_not_move_the_endpoint(
    emulator: Any, settings: Settings
) -> None:
    """The endpoint is pinned to the host verified at install: registered as `localhost`, the
    portal's OAuth answer names `127.0.0.1` after a refresh, and the tokens rotate while the
    endpoint stays where it was verified."""
    creds = emulator.credentials
    client = await oauth_client(settings, creds)
    try:
        member = creds["member_id"]
        pinned = creds["client_endpoint"].replace("127.0.0.1", "localhost")
        assert pinned != creds["client_endpoint"]
        await client.auth.register_oauth(
            member,
            pinned,
            access_token=creds["access_token"],
            refresh_token=creds["refresh_token"],
            expires=0,
        )
        await control(emulator.url, "POST", "expire-tokens")
        before = await _refreshes(emulator.url)
        answer = await client.call("user.get", {"FILTER": {"ID": 1}}, member_id=member)
        assert int(answer.result[0]["ID"]) == 1
        assert await _refreshes(emulator.url) == before + 1
        after = await client.auth.load(member)
        assert after.endpoint == pinned
        assert after.access_token != creds["access_token"]
    finally:
        await client.close()
