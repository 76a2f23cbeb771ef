"""v2 bots in webhook mode through the ingress: the emulated portal POSTs `ONIMBOTV2*` events,
form-encoded with every scalar a string, signed by a webhook-token bot with `"custom"` + its
token. The ingress must take them (once each), queue the same inputs a v1 event means, and
refuse a forged signature leaving nothing behind."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from emulator.server import EmulatorConfig, run_emulator
from orchestrator.cli import build_parser
from orchestrator.cli.register_bot import run_register
from orchestrator.events.convert import inputs_of_stored
from orchestrator.ingress.app import start_ingress
from orchestrator.settings import Settings
from tests.event_receiver import event_receiver
from tests.integration.client_support import control, webhook_settings


@pytest.fixture
async def wired(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[Any, Settings, str]]:
    """Our ingress, the emulator, and our v2 bot in webhook mode posting to the ingress."""
    base = settings.model_copy(update={"spool_dir": str(tmp_path / "spool")})
    async with event_receiver() as sink, run_emulator(EmulatorConfig(event_url=sink.url)) as emu:
        hook = webhook_settings(base, emu.credentials)
        server = await start_ingress(hook, "127.0.0.1", 0)
        try:
            url = f"{server.url}/b24/events"
            args = build_parser().parse_args(
                [
                    *("register-bot", "--api", "v2", "--event-mode", "webhook"),
                    *("--ingress-url", url, "--line", "1"),
                ]
            )
            assert await run_register(args, hook) == 0
            yield emu, hook, url
        finally:
            await server.stop()


async def _inbox_inputs(redis: aioredis.Redis, prefix: str) -> list[Any]:
    found = []
    async for key in redis.scan_iter(match=f"{prefix}:{{*}}:dlg:*:inbox"):
        for raw in await redis.lrange(key, 0, -1):
            found += inputs_of_stored(json.loads(raw.decode().split("|", 1)[1])["payload"])
    return found


async def test_a_webhook_token_bots_events_are_taken_once(
    redis: aioredis.Redis, wired: tuple[Any, Settings, str]
) -> None:
    emu, hook, _ = wired
    sent = await control(emu.url, "POST", "client-message", {"line_id": 1, "text": "hello"})
    await emu.settle()
    posted = [d for d in emu.deliveries() if str(d.get("event", "")).startswith("ONIMBOTV2")]
    assert {d["event"] for d in posted} >= {"ONIMBOTV2JOINCHAT", "ONIMBOTV2MESSAGEADD"}
    assert all(d.get("status") == 200 for d in posted), posted
    inputs = await _inbox_inputs(redis, hook.key_prefix)
    kinds = sorted(i.kind for i in inputs)
    assert kinds == ["bot_joined", "client_message"]
    [message] = [i for i in inputs if i.kind == "client_message"]
    assert (message.chat_id, message.message_id, message.session_id, message.text) == (
        sent["chat_id"],
        sent["message_id"],
        sent["session_id"],
        "hello",
    )


async def test_a_forged_custom_signature_is_refused(
    redis: aioredis.Redis, wired: tuple[Any, Settings, str]
) -> None:
    _, hook, url = wired
    before = {k async for k in redis.scan_iter(match=f"{hook.key_prefix}*dlg*")}
    form = {
        "event": "ONIMBOTV2MESSAGEADD",
        "data[bot][id]": "7",
        "data[message][id]": "99",
        "data[message][authorId]": "5",
        "data[message][text]": "x",
        "data[chat][id]": "42",
        "data[chat][entityType]": "LINES",
        "data[user][id]": "5",
        "data[user][connector]": "1",
        "ts": "1788251405",
        "auth[domain]": "x",
        "auth[member_id]": hook.b24_member_id or "",
        "auth[application_token]": "custom" + "A" * 40,
    }
    async with aiohttp.ClientSession() as http, http.post(url, data=form) as resp:
        # no bot of ours signs so, and the portal is known to this ingress only by its bot
        assert resp.status == 403, await resp.text()
    after = {k async for k in redis.scan_iter(match=f"{hook.key_prefix}*dlg*")}
    assert after == before
