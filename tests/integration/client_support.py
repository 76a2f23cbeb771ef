"""Helpers shared by the client's integration tests: settings for the emulator, control API."""

from __future__ import annotations

from typing import Any

import aiohttp

from orchestrator.bitrix.client import BitrixClient
from orchestrator.settings import Settings


def webhook_settings(settings: Settings, creds: dict[str, Any], **overrides: Any) -> Settings:
    """The test settings pointed at the emulator's inbound webhook."""
    return settings.model_copy(
        update={
            "b24_webhook_url": creds["webhook_url"],
            "b24_member_id": creds["member_id"],
            **overrides,
        }
    )


def oauth_settings(settings: Settings, creds: dict[str, Any], **overrides: Any) -> Settings:
    """The test settings carrying the emulator's OAuth app (client id/secret, token URL)."""
    return settings.model_copy(
        update={
            "b24_client_id": creds["client_id"],
            "b24_client_secret": creds["client_secret"],
            "b24_oauth_url": creds["oauth_token_url"],
            **overrides,
        }
    )


async def oauth_client(settings: Settings, creds: dict[str, Any], **kw: Any) -> BitrixClient:
    """An open client on the OAuth portal, registered as a verified install registers it."""
    client = BitrixClient.from_settings(oauth_settings(settings, creds), **kw)
    await client.open()
    await client.auth.register_oauth(
        creds["member_id"],
        creds["client_endpoint"],
        access_token=creds["access_token"],
        refresh_token=creds["refresh_token"],
        expires=0,
    )
    return client


async def control(
    base_url: str,
    verb: str,
    route: str,
    body: dict[str, Any] | None = None,
) -> Any:
    """Call the emulator's /_emulator/ control API."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(verb, f"{base_url}/_emulator/{route}", json=body) as resp,
    ):
        assert resp.status < 400, await resp.text()
        return await resp.json()


async def method_counts(base_url: str, method: str) -> dict[str, int]:
    """The emulator's counters of one method (calls, 503, 429, errors)."""
    counters = await control(base_url, "GET", "counters")
    row: dict[str, int] = counters["methods"].get(method, {})
    return {"calls": 0, "503": 0, "429": 0, "errors": 0, **row}
