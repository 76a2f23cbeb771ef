"""`orchestrator register-bot --api v1` against the emulated portal: as an OAuth app (bot + event
bindings) and over a webhook (bot with CLIENT_ID, bindings skipped and said so). The v1 path
stays for bots registered before v2; the v2 default: test_register_bot_v2.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.cli import build_parser
from orchestrator.cli.failures import Exit
from orchestrator.cli.register_bot import OPENLINE_EVENTS, run_register
from orchestrator.settings import Settings
from tests.integration.client_support import oauth_client
from tests.integration.client_support import oauth_settings as app_settings

INGRESS = "https://bot.example.com/b24/events"


async def _register(
    settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, Any, str]:
    capsys.readouterr()
    args = build_parser().parse_args(
        ["register-bot", "--api", "v1", "--ingress-url", INGRESS, *argv]
    )
    code = await run_register(args, settings)
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


@pytest.fixture
async def oauth_settings(settings: Settings, emulator: Any) -> Settings:
    """Settings of an OAuth app whose portal is installed (tokens stored as ONAPPINSTALL would)."""
    await (await oauth_client(settings, emulator.credentials)).close()
    return app_settings(settings, emulator.credentials)


def _our_bindings(emulator: Any) -> list[tuple[str, str]]:
    portal = emulator.portals[0].portal
    return sorted(
        (b.event, b.app_id)
        for b in portal.bindings.values()
        if b.handler == INGRESS and b.event in OPENLINE_EVENTS
    )


async def test_oauth_registers_the_open_line_bot_and_binds_the_events_once(
    oauth_settings: Settings, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """As an OAuth app: an open-line bot whose handlers are our ingress, the three Open Lines
    events bound to it; a second run returns the same bot id and binds nothing twice."""
    member = emulator.credentials["member_id"]
    code, out, _ = await _register(oauth_settings, capsys, "--member-id", member, "--code", "olo")
    assert code == 0
    bot = emulator.portals[0].portal.bots[out["bot_id"]]
    assert (bot.code, bot.type, bot.openline) == ("olo", "O", True)
    assert {"ONIMBOTMESSAGEADD", "ONIMBOTJOINCHAT", "ONIMBOTDELETE"} <= set(bot.handlers)
    assert {h.url for h in bot.handlers.values()} == {INGRESS}
    assert out["auth"] == "oauth"
    assert sorted(out["bound"]) == sorted(OPENLINE_EVENTS)
    app_id = emulator.credentials["client_id"]
    assert _our_bindings(emulator) == sorted((e, app_id) for e in OPENLINE_EVENTS)

    code, again, _ = await _register(oauth_settings, capsys, "--member-id", member, "--code", "olo")
    assert code == 0
    assert again["bot_id"] == out["bot_id"]
    assert again["bound"] == []
    assert sorted(again["already_bound"]) == sorted(OPENLINE_EVENTS)
    assert len(_our_bindings(emulator)) == len(OPENLINE_EVENTS)


async def test_webhook_registers_with_client_id_and_skips_binding(
    settings: Settings, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Over a webhook: CLIENT_ID is sent and appended to the handler URLs by the portal; the
    events are not bound (event.* is OAuth-only) and the command says so."""
    hook = settings.model_copy(update={"b24_webhook_url": emulator.credentials["webhook_url"]})
    code, out, err = await _register(hook, capsys, "--client-id", "olo-hook", "--code", "olo")
    assert code == 0
    bot = emulator.portals[0].portal.bots[out["bot_id"]]
    assert bot.client_id == "olo-hook"
    assert {h.url for h in bot.handlers.values()} == {f"{INGRESS}?CLIENT_ID=olo-hook"}
    assert out["auth"] == "webhook"
    assert out["bound"] == []
    assert sorted(out["skipped"]) == sorted(OPENLINE_EVENTS)
    assert "OAuth-only" in err
    assert _our_bindings(emulator) == []
    again = await _register(hook, capsys, "--client-id", "olo-hook", "--code", "olo")
    assert again[1]["bot_id"] == out["bot_id"]


async def test_webhook_without_client_id_is_refused_before_any_call(
    settings: Settings, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A webhook bot needs CLIENT_ID: without one the command stops with a clear message."""
    hook = settings.model_copy(update={"b24_webhook_url": emulator.credentials["webhook_url"]})
    bots_before = set(emulator.portals[0].portal.bots)
    code, out, err = await _register(hook, capsys)
    assert (code, out) == (Exit.CONFIG, None)
    assert "--client-id" in err
    assert set(emulator.portals[0].portal.bots) == bots_before
