"""Installs are believed only when our OAuth app verifies them at the (emulated) OAuth server.

An attacker's server on loopback records every request it gets: a forged ONAPPINSTALL naming
it as the portal's endpoint must leave no trace in Redis or /metrics and make nobody call it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from harness.demo.actors import Persona
from harness.demo.stack import Stack, StackOptions, run_stack
from orchestrator.bitrix.auth import AuthStore
from orchestrator.dialog.state import DialogStatus
from orchestrator.events.formdata import encode_form
from orchestrator.ingress.portals import Portals
from orchestrator.pipeline.keys import Keys
from orchestrator.settings import Settings
from tests.e2e.conftest import drop_arq_jobs, stored_values
from tests.e2e.test_lifecycle_e2e import _final_state, _play

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Attacker:
    """A server that counts what reaches it (it should be nothing)."""

    url: str
    hits: list[str] = field(default_factory=list)


@pytest.fixture
async def attacker() -> AsyncIterator[Attacker]:
    """The attacker's endpoint on loopback, recording every request."""
    seen = Attacker("")

    async def record(request: web.Request) -> web.Response:
        seen.hits.append(f"{request.method} {request.path}")
        return web.json_response({"result": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    seen.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield seen
    await runner.cleanup()


@pytest.fixture
async def two_portals(e2e_settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Stack]:
    """The whole stack (one in-process worker) on two portals running our app."""
    opts = StackOptions(workers=1, in_process=True, emulator={"portals": 2})
    async with run_stack(e2e_settings, opts) as running:
        yield running
    await drop_arq_jobs(redis, e2e_settings.queue_name)


def _forged_install(member_id: str, attacker: Attacker, token: str = "evil-app-token") -> Any:
    return {
        "event": "ONAPPINSTALL",
        "event_handler_id": "0",
        "ts": "1767225601",
        "data": {"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "en"},
        "auth": {
            "access_token": "evil-access",
            "refresh_token": "evil-refresh",
            "expires": "1767229200",
            "expires_in": "3600",
            "scope": "imbot,imopenlines,crm",
            "domain": attacker.url.split("//", 1)[1],
            "server_endpoint": f"{attacker.url}/rest/",
            "client_endpoint": f"{attacker.url}/rest/",
            "member_id": member_id,
            "user_id": "1",
            "status": "L",
            "application_token": token,
        },
    }


def _message(member_id: str, token: str, chat: int, message_id: int) -> Any:
    return {
        "event": "ONIMBOTMESSAGEADD",
        "ts": "1767225602",
        "data": {
            "BOT": {"77": {"BOT_ID": "77", "BOT_CODE": "support"}},
            "PARAMS": {
                "MESSAGE": "operator",
                "MESSAGE_ID": str(message_id),
                "CHAT_ID": str(chat),
                "DIALOG_ID": f"chat{chat}",
                "MESSAGE_TYPE": "L",
                "CHAT_ENTITY_TYPE": "LINES",
                "CHAT_ENTITY_ID": f"livechat|1|{chat}|4567",
                "FROM_USER_ID": "4567",
            },
        },
        "auth": {"domain": "evil.example", "member_id": member_id, "application_token": token},
    }


async def _post(http: aiohttp.ClientSession, url: str, payload: Any) -> tuple[int, Any]:
    body = encode_form(payload)
    async with http.post(f"{url}/b24/events", data=body, headers=FORM) as resp:
        return resp.status, await resp.json()


async def _traces(redis: aioredis.Redis, prefix: str, needle: str) -> list[bytes]:
    """Keys of ours (and arq's job records) whose name or value mentions `needle`."""
    values = await stored_values(redis, [f"{prefix}*", "arq:*"])
    return [k for k, v in values.items() if needle.encode() in k + v]


async def _metrics(http: aiohttp.ClientSession, stack: Stack) -> str:
    async with http.get(f"{stack.ingress_url}/metrics") as resp:
        return await resp.text()


async def _settled_metrics(http: aiohttp.ClientSession, stack: Stack) -> str:
    """/metrics once the genuine install the stack started with has been handled (its event lag
    is observed when a worker takes it): else that series may appear mid-test, forged or not."""
    wanted = f'ol_event_lag_seconds_count{{member_id="{stack.member_id}"}}'
    for _ in range(200):
        text = await _metrics(http, stack)
        if wanted in text:
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"the genuine install was not handled within 10 s: no {wanted}")


def _series(text: str) -> set[str]:
    """The metric series named in an exposition (values dropped)."""
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and line[0] != "#"}


async def test_a_forged_install_is_refused_and_leaves_no_trace_and_calls_nobody(
    stack: Stack, attacker: Attacker
) -> None:
    """An unknown member_id with the attacker's token and endpoint gets 403 (the OAuth server
    does not know its refresh token); afterwards no key and no metric series names it, events
    signed with its token are refused, and the attacker's endpoint is never called — while a
    genuine client's dialog on the verified portal still reaches `lead`."""
    evil = f"evil-{uuid.uuid4().hex[:8]}"
    status, body = await _post(stack.http, stack.ingress_url, _forged_install(evil, attacker))
    assert (status, body["error"]) == (403, "install_refused")
    assert "refused" in body["reason"]
    for message_id in (1, 2):
        answer = await _post(
            stack.http, stack.ingress_url, _message(evil, "evil-app-token", 5, message_id)
        )
        assert answer[0] == 403
    run = await _play(stack, 1, Persona.OPERATOR)  # the genuine portal works meanwhile
    assert (await _final_state(stack, run.chat_id)).status is DialogStatus.LEAD
    assert await _traces(stack.redis, stack.settings.key_prefix, evil) == []
    assert evil not in await _metrics(stack.http, stack)
    assert attacker.hits == []


async def test_three_hundred_forged_installs_leave_registry_and_metrics_as_they_were(
    stack: Stack, attacker: Attacker
) -> None:
    """A flood of forged installs (each a new member_id) all get a 4xx; the registry keeps its
    one portal and /metrics keeps the same series (only counts move)."""
    portals = Portals(stack.redis, Keys(stack.settings.key_prefix))
    before = await _settled_metrics(stack.http, stack)
    before_registry = [p.member_id for p in await portals.all()]
    statuses = [
        (await _post(stack.http, stack.ingress_url, _forged_install(f"evil-{i}", attacker)))[0]
        for i in range(300)
    ]
    assert all(400 <= s < 500 for s in statuses)
    assert {403, 429} >= set(statuses)  # refused by the OAuth server, or throttled first
    after = await _metrics(stack.http, stack)
    assert [p.member_id for p in await portals.all()] == before_registry
    assert _series(after) == _series(before)
    assert abs(len(after) - len(before)) < 64  # counter digits, nothing more
    assert not re.search(r"evil-\d", after)
    assert attacker.hits == []


async def test_a_squatted_member_id_is_refused_and_the_real_install_still_registers(
    two_portals: Stack, attacker: Attacker
) -> None:
    """The attacker installs our app on its own portal (a valid grant of ours) and sends that
    install under the victim's member_id: the OAuth server names the attacker's portal, so it is
    refused; a forged re-install of the victim with a made-up grant is refused too; the victim's
    record and endpoint stay what its verified install stored."""
    stack = two_portals
    victim, own = stack.emu.portals
    auth = AuthStore(stack.redis, prefix=stack.settings.key_prefix)
    kept = await auth.load(victim.identity.member_id)
    squat = own.install_payload(stack.emu.url)
    squat["auth"]["member_id"] = victim.identity.member_id
    status, body = await _post(stack.http, stack.ingress_url, squat)
    assert (status, body["error"]) == (403, "install_refused")
    status, _ = await _post(
        stack.http, stack.ingress_url, _forged_install(victim.identity.member_id, attacker)
    )
    assert status == 403
    stored = await auth.load(victim.identity.member_id)
    assert (stored.endpoint, stored.access_token) == (kept.endpoint, kept.access_token)
    portal = await Portals(stack.redis, Keys(stack.settings.key_prefix)).get(
        victim.identity.member_id
    )
    assert portal is not None
    assert portal.verify(victim.identity.application_token)
    assert not portal.verify("evil-app-token")
    assert attacker.hits == []


async def test_a_reinstall_rotates_tokens_and_may_bring_a_new_application_token(
    stack: Stack,
) -> None:
    """The portal re-installs the app with a new application token: verified at the OAuth
    server, it replaces the stored hash and the token pair; the old event token is refused from
    then on; the portal's uninstall removes its record and its credentials."""
    runtime = stack.emu.portals[0]
    member = stack.member_id
    auth = AuthStore(stack.redis, prefix=stack.settings.key_prefix)
    first = await auth.load(member)
    again = runtime.install_payload(stack.emu.url)
    again["auth"]["application_token"] = "rotated-app-token"
    again["ts"] = str(int(again["ts"]) + 1)
    assert (await _post(stack.http, stack.ingress_url, again))[0] == 200
    second = await auth.load(member)
    assert second.access_token not in (first.access_token, again["auth"]["access_token"])
    old = _message(member, runtime.identity.application_token, 8, 1)
    assert (await _post(stack.http, stack.ingress_url, old))[0] == 401
    new = _message(member, "rotated-app-token", 8, 2)
    assert (await _post(stack.http, stack.ingress_url, new))[0] == 200
    uninstall = {
        "event": "ONAPPUNINSTALL",
        "ts": "1767225700",
        "data": {"CLEAN": "0"},
        "auth": {"domain": runtime.identity.domain, "member_id": member},
    }
    uninstall["auth"]["application_token"] = "forged"
    assert (await _post(stack.http, stack.ingress_url, uninstall))[0] == 401
    uninstall["auth"]["application_token"] = "rotated-app-token"
    assert (await _post(stack.http, stack.ingress_url, uninstall))[0] == 200
    assert await Portals(stack.redis, Keys(stack.settings.key_prefix)).get(member) is None
    assert not await stack.redis.exists(Keys(stack.settings.key_prefix).creds(member))
