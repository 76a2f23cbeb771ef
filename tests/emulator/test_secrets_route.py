"""`GET /_emulator/secrets`: every secret the portal ever issued, spent ones included, so a test
can scan logs for all of them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from emulator.server import EmulatorConfig, RunningEmulator, run_emulator
from tests.emulator._platform import call, control, platform_methods


@pytest.fixture
async def emu() -> AsyncIterator[RunningEmulator]:
    with platform_methods():
        async with run_emulator(EmulatorConfig(frozen_clock=True, token_ttl_s=60)) as running:
            yield running


async def test_secrets_lists_spent_refresh_tokens_codes_and_the_app_secrets(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """After a refresh (which kills the old refresh token) and an authorization code, the route
    still lists the spent token, the new pair, the code, the client secret, the application
    token and the webhook code."""
    creds = emu.credentials
    params = {
        "grant_type": "refresh_token",
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "refresh_token": creds["refresh_token"],
    }
    status, pair = await call(http, creds["oauth_token_url"], data=params)
    assert status == 200
    _, code = await control(http, emu.url, "oauth-code")
    status, secrets = await control(http, emu.url, "secrets", verb="GET")
    assert status == 200
    issued = set(secrets["issued_tokens"])
    spent = {creds["access_token"], creds["refresh_token"]}
    assert spent | {pair["access_token"], pair["refresh_token"], code["code"]} <= issued
    assert secrets["client_secret"] == creds["client_secret"]
    assert secrets["application_token"] == creds["application_token"]
    assert creds["webhook_url"].rstrip("/").rsplit("/", 1)[1] in secrets["webhook_codes"]
