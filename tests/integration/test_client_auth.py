"""OAuth against the emulator: ONAPPINSTALL registration and one refresh for the whole fleet."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from orchestrator.bitrix.auth import AuthStore
from orchestrator.bitrix.client import register_portal_from_install
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


async def test_register_portal_from_install_stores_endpoint_and_tokens(
    redis: aioredis.Redis, settings: Settings
) -> None:
    """The ONAPPINSTALL auth block registers a portal's REST credentials; the event token is not
    kept here (the ingress's registry keeps its hash)."""
    auth = {
        "member_id": "m1",
        "access_token": "a",
        "refresh_token": "r",
        "expires": "1700000000",
        "domain": "x.bitrix24.com",
        "application_token": "secret-app-token",
    }
    creds = await register_portal_from_install(redis, settings, auth)
    assert (creds.kind, creds.version) == ("oauth", 1)
    assert creds.endpoint == "https://x.bitrix24.com/rest/"
    store = AuthStore(redis, prefix=settings.key_prefix)
    raw = await redis.hgetall(store.key("m1"))  # type: ignore[misc]
    assert b"secret-app-token" not in raw.values()
    again = await register_portal_from_install(redis, settings, {**auth, "access_token": "a2"})
    assert (again.access_token, again.version) == ("a2", 2)


async def test_install_without_tokens_is_refused(redis: aioredis.Redis, settings: Settings) -> None:
    """An auth block lacking member_id or tokens does not register anything."""
    with pytest.raises(ConfigurationError):
        await register_portal_from_install(redis, settings, {"member_id": "m2", "domain": "d"})
    store = AuthStore(redis, prefix=settings.key_prefix)
    with pytest.raises(ConfigurationError):
        await store.load("m2")


async def test_installed_portal_serves_calls_over_oauth(emulator: Any, settings: Settings) -> None:
    """A portal registered from install is called with its token (event.get is OAuth-only)."""
    client = await oauth_client(settings, emulator.credentials)
    try:
        bindings = await client.api(emulator.credentials["member_id"]).event_get()
    finally:
        await client.close()
    assert isinstance(bindings, list)
