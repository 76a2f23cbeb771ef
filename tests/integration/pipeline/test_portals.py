"""The portal registry through the ingress (install/uninstall) and the `portals` command."""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from orchestrator.admin import run_portals
from orchestrator.keys import Keys
from orchestrator.registry import Portals, token_hash
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import (
    FORM,
    _serve,
    eventually,
    form,
    message_payload,
)

NEW = "m-new-portal"


def _app_event(name: str, token: str, member: str = NEW) -> dict[str, Any]:
    return {
        "event": name,
        "ts": "1767225601",
        "data": {"VERSION": "1"},
        "auth": {
            "domain": "new.bitrix24.com",
            "member_id": member,
            "application_token": token,
            "client_endpoint": "https://new/rest/",
        },
    }


async def _post(http: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> int:
    async with http.post(f"{url}/b24/events", data=form(payload), headers=FORM) as resp:
        return resp.status


async def test_install_registers_hashed_reinstall_and_uninstall_must_verify(
    ingress_url: str, http: aiohttp.ClientSession, redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """First install is trusted; a re-install or uninstall with another token gets 401."""
    portals = Portals(redis, Keys(fast_settings.key_prefix))
    assert await _post(http, ingress_url, _app_event("ONAPPINSTALL", "tok-1")) == 200
    portal = await portals.get(NEW)
    assert portal is not None
    assert portal.token_sha256 == token_hash("tok-1")
    assert portal.client_endpoint == "https://new/rest/"
    raw = await redis.hgetall(Keys(fast_settings.key_prefix).portal(NEW))
    assert b"tok-1" not in b"".join(raw.values())  # only the hash is stored

    assert await _post(http, ingress_url, _app_event("ONAPPINSTALL", "evil")) == 401
    assert await _post(http, ingress_url, _app_event("ONAPPUNINSTALL", "evil")) == 401
    assert await portals.get(NEW) is not None
    assert await _post(http, ingress_url, message_payload(9, 1, member=NEW, token="tok-1")) == 200
    assert await _post(http, ingress_url, _app_event("ONAPPUNINSTALL", "tok-1")) == 200
    assert await portals.get(NEW) is None
    assert await _post(http, ingress_url, message_payload(9, 2, member=NEW, token="tok-1")) == 403


async def test_portals_command_adds_lists_and_removes(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """`orchestrator portals add|list|remove` change the registry."""
    add = argparse.Namespace(
        portals_command="add",
        member_id="m-cli",
        domain="cli.b24.com",
        token="cli-token",
        client_endpoint="",
    )
    assert await run_portals(add, fast_settings) == 0
    portal = await Portals(redis, Keys(fast_settings.key_prefix)).get("m-cli")
    assert portal is not None
    assert portal.verify("cli-token")
    assert not portal.verify("cli-tokeN")
    assert await run_portals(argparse.Namespace(portals_command="list"), fast_settings) == 0
    remove = argparse.Namespace(portals_command="remove", member_id="m-cli")
    assert await run_portals(remove, fast_settings) == 0
    assert await run_portals(remove, fast_settings) == 1  # gone already


async def test_webhook_portal_from_settings_is_registered_at_startup(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """B24_MEMBER_ID + B24_APPLICATION_TOKEN register the single webhook portal."""
    settings = fast_settings.model_copy(
        update={
            "b24_member_id": "m-hook",
            "b24_application_token": "hook-token",
            "b24_webhook_url": "https://hook.bitrix24.com/rest/1/code/",
        }
    )
    ingress = await _serve(settings)
    portals = Portals(redis, Keys(settings.key_prefix))
    try:

        async def registered() -> bool:
            return await portals.get("m-hook") is not None

        await eventually(registered, within_s=10)
    finally:
        await ingress.stop()
    portal = await portals.get("m-hook")
    assert portal is not None
    assert portal.domain == "hook.bitrix24.com"
    assert portal.verify("hook-token")
