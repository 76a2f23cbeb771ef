"""One app on several portals (`EmulatorConfig(shared_app=True)`), as a market app is: every
portal has the same client_id and secret, and the token endpoint finds the portal a refresh token
belongs to."""

from __future__ import annotations

import aiohttp

from emulator.server import EmulatorConfig, run_emulator
from tests.emulator._platform import call, platform_methods
from tests.emulator.test_oauth import refresh_params


async def test_portals_of_a_shared_app_refresh_their_own_tokens(
    http: aiohttp.ClientSession,
) -> None:
    """Both portals show one client_id; refreshing each portal's token answers that portal's
    member_id and counts the refresh on that portal only."""
    with platform_methods():
        async with run_emulator(
            EmulatorConfig(frozen_clock=True, portals=2, shared_app=True)
        ) as emu:
            first, second = (p.credentials(emu.url) for p in emu.portals)
            assert (first["client_id"], first["client_secret"]) == (
                second["client_id"],
                second["client_secret"],
            )
            for creds in (second, first):
                status, body = await call(
                    http,
                    creds["oauth_token_url"],
                    data=refresh_params(creds, creds["refresh_token"]),
                )
                assert status == 200
                assert body["member_id"] == creds["member_id"]
            assert [p.tokens.refreshes for p in emu.portals] == [1, 1]


async def test_without_a_shared_app_each_portal_has_its_own_client() -> None:
    """The default keeps one app per portal: the client ids differ."""
    with platform_methods():
        async with run_emulator(EmulatorConfig(frozen_clock=True, portals=2)) as emu:
            first, second = (p.credentials(emu.url) for p in emu.portals)
            assert first["client_id"] != second["client_id"]
