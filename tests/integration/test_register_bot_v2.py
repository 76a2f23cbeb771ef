"""`orchestrator register-bot` (v2, the default) against the emulated portal over real HTTP:
the first run registers and attaches, a re-run in a new process changes nothing and says so,
the webhook portal's bot token is stored before the portal sees it and reused, a line of
another welcome bot gets ours with all five keys, offline binding is skipped on a webhook
portal and done once for an OAuth app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from emulator.server import EmulatorConfig, run_emulator
from orchestrator.cli import build_parser
from orchestrator.cli.failures import Exit
from orchestrator.cli.register_bot import run_register
from orchestrator.cli.register_bot_v2 import NO_LINE_NOTE, OFFLINE_EVENTS, ON_OFFLINE_EVENT
from orchestrator.pipeline.keys import Keys
from orchestrator.settings import Settings
from tests.event_receiver import event_receiver
from tests.integration.client_support import (
    control,
    method_counts,
    oauth_client,
    webhook_settings,
)
from tests.integration.client_support import oauth_settings as app_settings

INGRESS = "https://bot.example.com/b24/events"
CODE = "olo_v2"


@pytest.fixture
async def seeded() -> AsyncIterator[Any]:
    """The emulator with the app's v1 bot as line 1's welcome bot (its events go to a sink)."""
    async with event_receiver() as sink, run_emulator(EmulatorConfig(event_url=sink.url)) as emu:
        yield emu


async def _run(
    settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, Any, str]:
    """One `register-bot` run: a new client, as a new process would open it."""
    capsys.readouterr()
    api = () if "--api" in argv else ("--api", "v2")
    args = build_parser().parse_args(["register-bot", "--code", CODE, *api, *argv])
    code = await run_register(args, settings)
    out, err = capsys.readouterr()
    # stdout is the report only when the run succeeded (unconfigured logs print there in tests)
    return code, (json.loads(out) if code == 0 else None), out + err


async def _holders(redis: aioredis.Redis, prefix: str, secret: str) -> set[str]:
    """Every key under our prefix whose name or value holds `secret`."""
    found: set[str] = set()
    async for raw in redis.scan_iter(match=f"{prefix}*"):
        key = raw.decode()
        kind = (await redis.type(key)).decode()
        values: list[bytes] = []
        if kind == "string":
            values = [await redis.get(key) or b""]
        elif kind == "hash":
            values = [*(await redis.hgetall(key)).values()]
        elif kind == "list":
            values = await redis.lrange(key, 0, -1)
        if secret in key or any(secret.encode() in v for v in values):
            found.add(key)
    return found


async def test_webhook_portal_registers_stores_the_token_first_and_reruns_change_nothing(
    settings: Settings,
    redis: aioredis.Redis,
    seeded: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hook = webhook_settings(settings, seeded.credentials)
    member = seeded.credentials["member_id"]
    portal = seeded.portals[0].portal
    line = portal.lines[1]
    other = line.welcome_bot_id
    assert other  # line 1 welcomes the app's v1 bot
    assert line.welcome_bot_enable
    line.welcome_bot_time, line.welcome_bot_left = 30, "close"

    code, out, text = await _run(hook, capsys, "--line", "1")
    assert code == 0, text
    assert out["still_missing"] == []
    bot_id = out["bot_id"]
    bot, rec = portal.bots[bot_id], portal.bots_v2.bots[bot_id]
    assert (bot.code, bot.api, rec.type, rec.event_mode) == (CODE, "v2", "openline", "fetch")
    assert bot.openline
    assert (out["bot"], out["bot_token_state"], out["event_mode"]) == (
        "registered",
        "generated and stored",
        "fetch",
    )
    # The token the portal knows is the one stored, 40 URL-safe characters, in one key only,
    # and in no output.
    key = Keys(settings.key_prefix).bot(member, CODE)
    token = (await redis.hget(key, "bot_token") or b"").decode()
    assert token == bot.client_id
    assert len(token) == 40
    assert token.replace("-", "").replace("_", "").isalnum()
    assert await _holders(redis, settings.key_prefix, token) == {key}
    assert token not in text
    assert (await redis.hget(key, "bot_id") or b"").decode() == str(bot_id)
    # The line now welcomes our bot: all five keys, so ID/TIME/LEFT were not reset.
    assert (line.welcome_bot_enable, line.welcome_bot_id) == (True, bot_id)
    assert (line.welcome_bot_time, line.welcome_bot_left, line.welcome_bot_join) == (
        0,
        "queue",
        "always",
    )
    assert (out["lines_attached"], out["lines_already"]) == ([1], [])
    # Offline binding needs an OAuth app: skipped, and said so.
    assert out["bound"] == []
    assert sorted(out["skipped"]) == sorted([*OFFLINE_EVENTS, ON_OFFLINE_EVENT])
    assert "OAuth app" in out["note"]
    assert "not bound" in text
    assert not [b for b in portal.bindings.values() if b.event in OFFLINE_EVENTS and not b.handler]

    code, again, text = await _run(hook, capsys, "--line", "1")
    assert code == 0, text
    assert again["bot_id"] == bot_id
    assert (again["bot"], again["bot_token_state"]) == ("found", "reused from Redis")
    assert (again["lines_attached"], again["lines_already"]) == ([], [1])
    assert (await redis.hget(key, "bot_token") or b"").decode() == token == bot.client_id
    assert token not in text
    register = await method_counts(seeded.url, "imbot.v2.bot.register")
    update = await method_counts(seeded.url, "imopenlines.config.update")
    assert (register["calls"], update["calls"]) == (1, 1)
    assert [e["bot_id"] for e in seeded.portals[0].journal.entries("bot_registered")] == [
        other,
        bot_id,
    ]


async def test_a_lost_token_refuses_instead_of_registering_another_owner(
    settings: Settings,
    redis: aioredis.Redis,
    emulator: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Redis lost the bot's record: a new token is a new owner; Bot.get shows the bot in the
    brief format, and the command stops with the reason rather than touching the portal."""
    hook = webhook_settings(settings, emulator.credentials)
    assert (await _run(hook, capsys))[0] == 0
    await redis.delete(Keys(settings.key_prefix).bot(emulator.credentials["member_id"], CODE))
    code, out, text = await _run(hook, capsys)
    assert (code, out) == (Exit.CONFIG, None)
    assert "belongs to another owner" in text
    assert (await method_counts(emulator.url, "imbot.v2.bot.register"))["calls"] == 1
    assert len(emulator.portals[0].portal.bots_v2.bots) == 1


async def test_oauth_app_binds_offline_once_and_switches_mode_on_request(
    settings: Settings,
    redis: aioredis.Redis,
    emulator: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An OAuth app owns its bot (no token stored); the Open Lines events are bound offline and
    onOfflineEvent at our ingress, once; a later run asking webhook mode updates the bot."""
    await (await oauth_client(settings, emulator.credentials)).close()
    app = app_settings(settings, emulator.credentials)
    member = emulator.credentials["member_id"]
    portal = emulator.portals[0].portal
    args = ("--member-id", member, "--ingress-url", INGRESS)

    code, out, text = await _run(app, capsys, *args)
    assert code == 0, text
    assert out["bot_token_state"].startswith("none")
    key = Keys(settings.key_prefix).bot(member, CODE)
    assert await redis.hget(key, "bot_token") is None
    assert portal.bots[out["bot_id"]].app_id == emulator.credentials["client_id"]
    assert sorted(out["bound"]) == sorted([*OFFLINE_EVENTS, ON_OFFLINE_EVENT])
    offline = sorted(b.event for b in portal.bindings.values() if not b.handler)
    assert offline == sorted(OFFLINE_EVENTS)
    notices = [b for b in portal.bindings.values() if b.event == ON_OFFLINE_EVENT]
    assert [(b.handler, b.options) for b in notices] == [(INGRESS, {"minTimeout": 0})]

    # an older binding with the portal's default minTimeout is replaced by ours on a re-run
    client = await oauth_client(settings, emulator.credentials)
    api = client.api(member)
    assert await api.event_unbind(ON_OFFLINE_EVENT, INGRESS)
    assert await api.event_bind(ON_OFFLINE_EVENT, INGRESS)
    await client.close()
    code, again, text = await _run(app, capsys, *args)
    assert code == 0, text
    assert (again["bot"], again["bound"]) == ("found", [])
    assert sorted(again["already_bound"]) == sorted(out["bound"])
    assert len([b for b in portal.bindings.values() if not b.handler]) == len(OFFLINE_EVENTS)
    notices = [b for b in portal.bindings.values() if b.event == ON_OFFLINE_EVENT]
    assert [(b.handler, b.options) for b in notices] == [(INGRESS, {"minTimeout": 0})]

    code, switched, text = await _run(app, capsys, *args, "--event-mode", "webhook")
    assert code == 0, text
    assert (switched["bot"], switched["event_mode"], switched["webhook_url"]) == (
        "mode updated",
        "webhook",
        INGRESS,
    )
    assert portal.bots_v2.bots[out["bot_id"]].event_mode == "webhook"
    assert (await redis.hget(key, "event_mode") or b"").decode() == "webhook"


@pytest.mark.parametrize(
    ("argv", "needs"),
    [(("--event-mode", "webhook"), "--ingress-url"), (("--api", "v1"), "--ingress-url")],
)
async def test_a_mode_that_needs_our_url_is_refused_before_any_call(
    settings: Settings,
    emulator: Any,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    needs: str,
) -> None:
    hook = webhook_settings(settings, emulator.credentials)
    bots = set(emulator.portals[0].portal.bots)
    code, out, text = await _run(hook, capsys, *argv)
    assert (code, out) == (Exit.CONFIG, None)
    assert needs in text
    assert set(emulator.portals[0].portal.bots) == bots


async def test_a_run_that_loses_the_register_answer_is_finished_by_the_next_one(
    settings: Settings,
    redis: aioredis.Redis,
    emulator: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The portal registers the bot but every answer is lost: the run fails, yet the token was
    stored before the call, so the next run finds the bot it registered (no second bot, no
    orphan)."""
    hook = webhook_settings(settings, emulator.credentials, b24_max_retries=1)
    await control(
        emulator.url,
        "POST",
        "faults",
        {"lost_answer_rate": {"imbot.v2.bot.register": 1.0}, "lost_answer_variants": ["502"]},
    )
    code, out, _ = await _run(hook, capsys)
    assert (code, out) == (1, None)
    bots = emulator.portals[0].portal.bots_v2.bots
    assert len(bots) == 1, "the register ran on the portal; only its answer was lost"
    await control(emulator.url, "DELETE", "faults")

    code, out, text = await _run(hook, capsys)
    assert code == 0, text
    # no --line: the report (and stderr) says the bot reaches no client yet
    assert out["still_missing"] == [NO_LINE_NOTE]
    assert "missing: no --line given" in text
    assert (out["bot"], out["bot_token_state"], out["bot_id"]) == (
        "found",
        "reused from Redis",
        next(iter(bots)),
    )
    assert len(bots) == 1


async def test_a_v1_bot_of_that_code_is_not_taken_for_a_v2_one(
    settings: Settings, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A code registered through v1 shows through v2 in webhook mode and cannot be switched to
    fetch: the command stops and points at --api v1 instead of reporting a mode it did not get."""
    await (await oauth_client(settings, emulator.credentials)).close()
    app = app_settings(settings, emulator.credentials)
    member = emulator.credentials["member_id"]
    args = ("--member-id", member, "--ingress-url", INGRESS, "--no-bind")
    assert (await _run(app, capsys, "--api", "v1", *args))[0] == 0
    code, out, text = await _run(app, capsys, *args)
    assert (code, out) == (Exit.CONFIG, None)
    assert "--api v1" in text
