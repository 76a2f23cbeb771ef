"""The v2 chat-bot wrappers and their plumbing (offline events, feature.get, line settings) against
the emulated portal over real HTTP: what each sends is what the portal reads, and each answer
parses into its model."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.bitrix import BitrixClient, Button, PortalApi, WelcomeBot
from orchestrator.bitrix.offline import OFFLINE_EXTENDED
from orchestrator.errors import MethodError
from orchestrator.settings import Settings
from tests.integration.client_support import control, oauth_client, webhook_settings

TOKEN = "t" * 40


@pytest.fixture
async def hook(settings: Settings, emulator: Any) -> Any:
    """An open client on the emulator's inbound webhook, and its portal API."""
    client = BitrixClient.from_settings(webhook_settings(settings, emulator.credentials))
    await client.open()
    yield client.api()
    await client.close()


async def _line_chat(emulator: Any, code: str) -> int:
    opened = await control(
        emulator.url, "POST", "client-message", {"line_id": 1, "text": "hello", "user_code": code}
    )
    return int(opened["chat_id"])


async def test_a_webhook_owner_registers_finds_and_talks_as_its_bot(
    hook: PortalApi, emulator: Any
) -> None:
    """BOT_NOT_FOUND is a MethodError with its code; register is idempotent by code; the token
    rides on every call (no call of this test could pass without it); a keyboard's buttons are
    kept, skipConnector keeps the message from the client, typing and commands land."""
    bots = hook.bot_v2(TOKEN)
    with pytest.raises(MethodError) as missing:
        await bots.get(code="olo_v2")
    assert missing.value.code == "BOT_NOT_FOUND"
    assert missing.value.status == 400

    bot = await bots.register("olo_v2", name="Support")
    assert (bot.code, bot.type, bot.event_mode, bot.owned) == ("olo_v2", "openline", "fetch", True)
    assert bot.is_support_openline
    assert (await bots.register("olo_v2", name="Other")).id == bot.id
    assert (await bots.get(code="olo_v2")).owned
    assert not (await hook.bot_v2("someone-else").get(code="olo_v2")).owned
    with pytest.raises(MethodError) as foreign:
        await hook.bot_v2("someone-else").events(bot.id)
    assert foreign.value.code == "BOT_OWNERSHIP_ERROR"

    changed, line = await hook.lines().attach_welcome_bot(1, WelcomeBot(bot.id))
    assert changed
    assert line.welcomes(bot.id)
    chat_id = await _line_chat(emulator, "livechat|1|1|v2")
    portal = emulator.portals[0].portal
    assert bot.id in portal.get_chat(chat_id).members

    keyboard = [
        Button("Help", command="help"),
        Button(newline=True),
        Button("Site", link="https://example.com"),
    ]
    sent = await bots.send(bot.id, f"chat{chat_id}", "Hi", keyboard=keyboard, skip_connector=True)
    stored = portal.messages[sent.id]
    assert [b.get("TEXT") for b in stored.params["KEYBOARD"] if "TEXT" in b] == ["Help", "Site"]
    entry = next(
        e for e in emulator.portals[0].journal.entries("message") if e["message_id"] == sent.id
    )
    assert entry["to_client"] is False
    assert await bots.notify_input(bot.id, f"chat{chat_id}")
    assert (bot.id, chat_id) in portal.bots_v2.input_actions
    command = await bots.register_command(bot.id, "/help", title={"en": "Help"})
    assert (command.bot_id, command.command) == (bot.id, "/help")
    assert (await bots.register_command(bot.id, "help", title={"en": "Help"})).id == command.id


async def test_event_get_confirms_by_offset_and_rotation_retires_the_old_token(
    hook: PortalApi, emulator: Any
) -> None:
    """Rows come back in id order with nextOffset/hasMore; passing nextOffset deletes them (a
    second read with it returns nothing); a rotated token works and the old one is refused."""
    bots = hook.bot_v2(TOKEN)
    bot = await bots.register("olo_fetch", name="Support")
    await hook.lines().attach_welcome_bot(1, WelcomeBot(bot.id))
    await _line_chat(emulator, "livechat|1|1|fetch")

    page = await bots.events(bot.id)
    assert page.events, "the join and the client's message are queued for a fetch bot"
    assert [e.event_id for e in page.events] == sorted(e.event_id for e in page.events)
    assert {e.type for e in page.events} >= {"ONIMBOTV2MESSAGEADD"}
    assert page.next_offset == page.events[-1].event_id + 1
    assert not page.has_more
    again = await bots.events(bot.id)
    assert [e.event_id for e in again.events] == [e.event_id for e in page.events]
    confirmed = await bots.events(bot.id, offset=page.next_offset)
    assert confirmed.events == []
    assert confirmed.next_offset == page.next_offset
    assert emulator.portals[0].portal.fetch_queue.fetch([bot.id], 0, 100).events == []

    rotated = await bots.rotate_token(bot.id, "n" * 40)
    assert (await rotated.get(bot_id=bot.id)).owned
    with pytest.raises(MethodError) as old:
        await bots.events(bot.id)
    assert old.value.code == "BOT_OWNERSHIP_ERROR"


async def test_oauth_app_reads_its_offline_queue_and_the_licence(
    settings: Settings, emulator: Any
) -> None:
    """An offline binding queues OnSessionStart; clear=0 reserves under a process id, the id
    re-reads the batch, clear confirms it; feature.get says whether clear=0 is licensed."""
    client = await oauth_client(settings, emulator.credentials)
    try:
        api = client.api(emulator.credentials["member_id"])
        assert await api.feature_get(OFFLINE_EXTENDED) == "Y"
        assert await api.event_bind("ONSESSIONSTART", event_type="offline")
        assert any(b.offline for b in await api.event_get())
        await _line_chat(emulator, "livechat|1|1|offline")

        queue = api.offline()
        batch = await queue.get(limit=10)
        assert batch.process_id
        assert [e.event_name for e in batch.events] == ["ONSESSIONSTART"]
        assert len(batch.events[0].message_id) == 32
        assert batch.events[0].data
        reread = await queue.get(process_id=batch.process_id)
        assert [e.id for e in reread.events] == [e.id for e in batch.events]
        assert await queue.clear(batch.process_id)
        assert (await queue.get(process_id=batch.process_id)).events == []
        assert await queue.error(batch.process_id, [batch.events[0].message_id])
    finally:
        await client.close()


async def test_a_line_update_sends_all_five_welcome_keys(hook: PortalApi, emulator: Any) -> None:
    """attach_welcome_bot leaves a line that already welcomes the bot alone and reports it;
    a line of another bot gets ours with join/time/left as asked; no line is LINE_NOT_FOUND."""
    lines = hook.lines()
    line = emulator.portals[0].portal.lines[1]
    line.welcome_bot_id, line.welcome_bot_time, line.welcome_bot_left = 77, 30, "close"
    changed, after = await lines.attach_welcome_bot(1, WelcomeBot(5, time_s=0, left="queue"))
    assert changed
    assert after.welcome() == {
        "WELCOME_BOT_ENABLE": "Y",
        "WELCOME_BOT_JOIN": "always",
        "WELCOME_BOT_ID": "5",
        "WELCOME_BOT_TIME": "0",
        "WELCOME_BOT_LEFT": "queue",
    }
    assert (line.welcome_bot_id, line.welcome_bot_time, line.welcome_bot_left) == (5, 0, "queue")
    assert (await lines.attach_welcome_bot(1, WelcomeBot(5))) == (False, after)
    with pytest.raises(MethodError) as missing:
        await lines.attach_welcome_bot(99, WelcomeBot(5))
    assert missing.value.code == "LINE_NOT_FOUND"
