"""The portal registry through the ingress (verified installs) and the `portals` command."""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from orchestrator.bitrix.auth import AuthStore
from orchestrator.cli.admin import run_portals
from orchestrator.cli.failures import CommandFailed, Exit
from orchestrator.ingress.portals import Portals, token_hash
from orchestrator.pipeline.keys import Keys
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import (
    FORM,
    MEMBER,
    TOKEN,
    _serve,
    eventually,
    form,
    message_payload,
)


async def _post(http: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(f"{url}/b24/events", data=form(payload), headers=FORM) as resp:
        return resp.status, await resp.json()


def _install(emulator: Any) -> dict[str, Any]:
    """A genuine ONAPPINSTALL of the emulated portal (a fresh token pair), as it posts one."""
    payload: dict[str, Any] = emulator.portals[0].install_payload(emulator.url)
    return payload


def _oauth(settings: Settings, emulator: Any, **overrides: Any) -> Settings:
    creds = emulator.credentials
    return settings.model_copy(
        update={
            "b24_client_id": creds["client_id"],
            "b24_client_secret": creds["client_secret"],
            "b24_oauth_url": creds["oauth_token_url"],
            **overrides,
        }
    )


async def _nothing_stored(redis: aioredis.Redis, settings: Settings, member_id: str) -> bool:
    keys = [k async for k in redis.scan_iter(match=f"{settings.key_prefix}*")]
    return not any(member_id.encode() in k for k in keys) and not await redis.smembers(
        Keys(settings.key_prefix).portals
    )


@pytest.mark.parametrize(
    ("case", "status", "outcome"),
    [
        ("no_oauth_app", 403, "no OAuth app is configured"),
        ("oauth_unreachable", 503, "out of reach"),
        ("domain_not_allowed", 403, "B24_ALLOWED_DOMAINS"),
        ("wrong_secret", 403, "invalid_client"),
    ],
)
async def test_an_install_that_cannot_be_verified_is_refused_with_nothing_stored(
    emulator: Any,
    redis: aioredis.Redis,
    fast_settings: Settings,
    http: aiohttp.ClientSession,
    case: str,
    status: int,
    outcome: str,
) -> None:
    """Even a genuine install is refused, with its reason and nothing stored, when our OAuth app
    cannot vouch for it: no app configured, the OAuth server out of reach, a domain outside the
    allow-list, or our own credentials wrong."""
    settings = {
        "no_oauth_app": fast_settings,
        "oauth_unreachable": _oauth(
            fast_settings, emulator, b24_oauth_url="http://127.0.0.1:9/oauth/token/"
        ),
        "domain_not_allowed": _oauth(
            fast_settings, emulator, b24_allowed_domains="*.bitrix24.com, *.bitrix24.de"
        ),
        "wrong_secret": _oauth(fast_settings, emulator, b24_client_secret="not-ours"),
    }[case]
    ingress = await _serve(settings)
    url = ingress.url
    try:
        answer, body = await _post(http, url, _install(emulator))
    finally:
        await ingress.stop()
    assert (answer, body["error"]) == (status, "install_refused")
    assert outcome in body["reason"]
    assert await _nothing_stored(redis, settings, emulator.credentials["member_id"])


async def test_a_verified_install_registers_the_portal_as_the_oauth_server_names_it(
    emulator: Any, redis: aioredis.Redis, fast_settings: Settings, http: aiohttp.ClientSession
) -> None:
    """A genuine install registers the portal (token hashed) with the endpoint and domain from
    the OAuth answer, and its credentials carry the rotated pair, not the event's; a second
    delivery of the same install is a duplicate, not a refusal; the allow-list admits it."""
    settings = _oauth(fast_settings, emulator, b24_allowed_domains="127.0.0.1")
    install = _install(emulator)
    ingress = await _serve(settings)
    url = ingress.url
    try:
        assert await _post(http, url, install) == (200, {"ok": True, "duplicate": False})
        assert await _post(http, url, install) == (200, {"ok": True, "duplicate": True})
    finally:
        await ingress.stop()
    member = emulator.credentials["member_id"]
    portal = await Portals(redis, Keys(settings.key_prefix)).get(member)
    assert portal is not None
    assert portal.token_sha256 == token_hash(emulator.credentials["application_token"])
    assert portal.client_endpoint == emulator.credentials["client_endpoint"]
    assert portal.domain == emulator.credentials["domain"]
    creds = await AuthStore(redis, prefix=settings.key_prefix).load(member)
    assert creds.endpoint == emulator.credentials["client_endpoint"]
    assert creds.access_token not in ("", install["auth"]["access_token"])
    raw = await redis.hgetall(Keys(settings.key_prefix).portal(member))
    assert emulator.credentials["application_token"].encode() not in b"".join(raw.values())


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
    with pytest.raises(CommandFailed, match="no portal m-cli") as gone:  # gone already
        await run_portals(remove, fast_settings)
    assert gone.value.code == Exit.NOT_FOUND


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


async def test_an_accepted_event_is_queued_without_any_token_at_any_depth(
    ingress_url: str, http: aiohttp.ClientSession, redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """A bot event carries the bot user's pair (in `data[BOT][<id>]` and again in its `AUTH`)
    and may carry the acting user's pair at the top level: the inbox entry keeps none of them,
    nor the application token, while what the dialog needs of it is there."""
    payload = message_payload(31, 3101, "token check")
    bot = {"access_token": "bot-at-1", "refresh_token": "bot-rt-1", "application_token": TOKEN}
    payload["data"]["BOT"]["77"].update({**bot, "AUTH": dict(bot)})
    payload["auth"].update({"access_token": "user-at-1", "refresh_token": "user-rt-1"})
    assert (await _post(http, ingress_url, payload))[0] == 200
    [entry] = await redis.lrange(Keys(fast_settings.key_prefix).dialog(MEMBER, "31").inbox, 0, -1)
    for secret in (b"bot-at-1", b"bot-rt-1", b"user-at-1", b"user-rt-1", TOKEN.encode()):
        assert secret not in entry
    assert b"token check" in entry
    assert b'"message_id":3101' in entry
