"""OAuth (docs/bitrix24.md §3): the token endpoint, rotating refresh tokens, expiring access
tokens and the portal's 401s for them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from emulator.server import EmulatorConfig, RunningEmulator, run_emulator
from tests.emulator._platform import ECHO, call, control, platform_methods

ANSWER_KEYS = {
    "access_token",
    "refresh_token",
    "expires",
    "expires_in",
    "client_endpoint",
    "server_endpoint",
    "domain",
    "member_id",
    "scope",
    "status",
    "user_id",
}


@pytest.fixture
async def emu() -> AsyncIterator[RunningEmulator]:
    with platform_methods():
        async with run_emulator(EmulatorConfig(frozen_clock=True, token_ttl_s=60)) as running:
            yield running


def refresh_params(creds: dict[str, Any], refresh_token: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "refresh_token": refresh_token,
    }


async def rest_call(
    http: aiohttp.ClientSession, emu: RunningEmulator, token: str
) -> tuple[int, Any]:
    return await call(http, emu.credentials["client_endpoint"] + ECHO, json={"auth": token})


async def test_refresh_answers_the_documented_shape(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """GET /oauth/token/ with grant_type=refresh_token returns a new pair and the app facts."""
    creds = emu.credentials
    status, body = await call(
        http,
        creds["oauth_token_url"],
        method="GET",
        params=refresh_params(creds, creds["refresh_token"]),
    )
    assert status == 200
    assert set(body) == ANSWER_KEYS
    assert body["expires_in"] == 60
    assert body["expires"] == int(emu.portals[0].clock.now()) + 60
    assert body["member_id"] == creds["member_id"]
    assert body["client_endpoint"] == creds["client_endpoint"]
    assert body["user_id"] == emu.portals[0].portal.admin_user_id
    assert "imopenlines" in body["scope"].split(",")
    assert body["access_token"] != creds["access_token"]
    assert (await rest_call(http, emu, body["access_token"]))[0] == 200


async def test_refresh_tokens_rotate_and_are_counted(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """A used refresh token is dead (invalid_grant); the new one works; refreshes are counted."""
    creds = emu.credentials
    url = creds["oauth_token_url"]
    status, first = await call(http, url, data=refresh_params(creds, creds["refresh_token"]))
    assert status == 200
    status, again = await call(http, url, data=refresh_params(creds, creds["refresh_token"]))
    assert (status, again["error"]) == (400, "invalid_grant")
    status, _second = await call(http, url, data=refresh_params(creds, first["refresh_token"]))
    assert status == 200
    _, counters = await control(http, emu.url, "counters", verb="GET")
    assert counters["refreshes"] == 2


async def test_token_endpoint_rejects_a_wrong_client(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """A wrong client_secret or unknown client_id is invalid_client, and nothing rotates."""
    creds = emu.credentials
    params = refresh_params(creds, creds["refresh_token"]) | {"client_secret": "wrong"}
    status, body = await call(http, creds["oauth_token_url"], data=params)
    assert (status, body["error"]) == (401, "invalid_client")
    params = refresh_params(creds, creds["refresh_token"]) | {"client_id": "local.nobody"}
    assert (await call(http, creds["oauth_token_url"], data=params))[1]["error"] == "invalid_client"
    good = refresh_params(creds, creds["refresh_token"])
    assert (await call(http, creds["oauth_token_url"], data=good))[0] == 200


async def test_access_token_expires_after_ttl_and_refresh_recovers(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """Past token_ttl_s the token gets 401 expired_token; the refreshed token works."""
    creds = emu.credentials
    assert (await rest_call(http, emu, creds["access_token"]))[0] == 200
    await control(http, emu.url, "advance-time", {"seconds": 61})
    status, body = await rest_call(http, emu, creds["access_token"])
    assert status == 401
    assert body == {
        "error": "expired_token",
        "error_description": "The access token provided has expired",
    }
    _, fresh = await call(
        http, creds["oauth_token_url"], data=refresh_params(creds, creds["refresh_token"])
    )
    assert (await rest_call(http, emu, fresh["access_token"]))[0] == 200


async def test_forced_expiry_expires_live_tokens_only(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """POST /_emulator/expire-tokens turns every live access token into expired_token."""
    creds = emu.credentials
    status, body = await control(http, emu.url, "expire-tokens")
    assert status == 200
    assert body["expired"] >= 1
    status, answer = await rest_call(http, emu, creds["access_token"])
    assert (status, answer["error"]) == (401, "expired_token")
    _, fresh = await call(
        http, creds["oauth_token_url"], data=refresh_params(creds, creds["refresh_token"])
    )
    assert (await rest_call(http, emu, fresh["access_token"]))[0] == 200


async def test_authorization_code_grant_is_one_shot(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """An authorization code buys one token pair; reusing it is invalid_grant."""
    creds = emu.credentials
    _, issued = await control(http, emu.url, "oauth-code")
    params = {
        "grant_type": "authorization_code",
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "code": issued["code"],
    }
    status, body = await call(http, creds["oauth_token_url"], method="GET", params=params)
    assert status == 200
    assert set(body) == ANSWER_KEYS
    assert (await rest_call(http, emu, body["access_token"]))[0] == 200
    status, again = await call(http, creds["oauth_token_url"], method="GET", params=params)
    assert (status, again["error"]) == (400, "invalid_grant")


async def test_unsupported_grant_type(emu: RunningEmulator, http: aiohttp.ClientSession) -> None:
    """A grant type other than refresh_token or authorization_code is refused."""
    creds = emu.credentials
    params = refresh_params(creds, creds["refresh_token"]) | {"grant_type": "password"}
    status, body = await call(http, creds["oauth_token_url"], data=params)
    assert (status, body["error"]) == (400, "unsupported_grant_type")
