"""`imopenlines.config.get|update|list.get` and the welcome-bot fields
(imopenlines/lib/rest.php, imopenlines/lib/config.php `prepareFields`): string values, false
for a missing line, the "WELCOME_BOT_ENABLE must be in the same call" reset, and the line's
config deciding whether the welcome bot joins a new dialog."""

from __future__ import annotations

from typing import Any

import aiohttp

from emulator.server import RunningEmulator
from tests.emulator._offline import (
    client_writes,
    control,
    emulator_and_receiver,
    ok,
    rest,
    token_of,
)

FIVE = (
    "WELCOME_BOT_ENABLE",
    "WELCOME_BOT_JOIN",
    "WELCOME_BOT_ID",
    "WELCOME_BOT_TIME",
    "WELCOME_BOT_LEFT",
)


async def _config(http: aiohttp.ClientSession, emu: RunningEmulator) -> dict[str, Any]:
    return dict(await ok(http, emu, "imopenlines.config.get", {"CONFIG_ID": 1}))


def _welcome(config: dict[str, Any]) -> tuple[str, ...]:
    return tuple(config[k] for k in FIVE)


def _bot(emu: RunningEmulator) -> int:
    return next(iter(emu.portals[0].portal.bots))


def _bot_took(emu: RunningEmulator, chat_id: int) -> bool:
    entries = emu.portals[0].journal.entries("session")
    return any(e["chat_id"] == chat_id and e["reason"] == "welcome_bot" for e in entries)


async def test_get_answers_strings_and_false_for_no_line() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        config = await _config(http, emu)
        bot = str(_bot(emu))
        assert _welcome(config) == ("Y", "always", bot, "600", "queue")
        assert (config["ID"], config["ACTIVE"], config["LINE_NAME"]) == ("1", "Y", "Support")
        assert all(config[k] == "0" for k in ("NO_ANSWER_BOT_ID", "CLOSE_BOT_ID"))
        assert (config["QUEUE"], config["QUEUE_ONLINE"]) == (["2", "3", "4"], "Y")
        without = await ok(http, emu, "imopenlines.config.get", {"CONFIG_ID": 1, "WITH_QUEUE": "N"})
        assert (without["QUEUE"], without["QUEUE_ONLINE"]) == ([], "N")
        assert await ok(http, emu, "imopenlines.config.get", {"CONFIG_ID": 99}) is False
        for params in ({}, {"CONFIG_ID": 0}, {"config_id": 1}):
            status, body = await rest(http, emu, "imopenlines.config.get", params)
            assert (status, body["error"]) == (400, "CONFIG_ID_EMPTY"), params
            assert body["error_description"] == "Config ID can't be empty"


async def test_update_resets_welcome_keys_unless_enable_is_in_the_same_call() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        bot = _bot(emu)
        partial = {"WELCOME_BOT_ID": bot, "WELCOME_BOT_TIME": 0, "WELCOME_BOT_LEFT": "close"}
        assert await ok(http, emu, "imopenlines.config.update", {"CONFIG_ID": 1, "PARAMS": partial})
        # ENABLE keeps its stored "Y", but the three keys present were reset.
        assert _welcome(await _config(http, emu)) == ("Y", "always", "0", "600", "queue")
        five = {**partial, "WELCOME_BOT_ENABLE": "Y", "WELCOME_BOT_JOIN": "first"}
        assert await ok(http, emu, "imopenlines.config.update", {"CONFIG_ID": 1, "PARAMS": five})
        assert _welcome(await _config(http, emu)) == ("Y", "first", str(bot), "0", "close")
        # Keys left out keep their values; JOIN is not under the rule.
        await ok(
            http,
            emu,
            "imopenlines.config.update",
            {"CONFIG_ID": 1, "PARAMS": {"WELCOME_BOT_JOIN": "anything", "CLOSE_BOT_ID": "7"}},
        )
        config = await _config(http, emu)
        assert _welcome(config) == ("Y", "always", str(bot), "0", "close")
        assert config["CLOSE_BOT_ID"] == "7"
        # ENABLE=N in the call: the keys present reset too.
        off = {"WELCOME_BOT_ENABLE": "N", "WELCOME_BOT_ID": bot, "WELCOME_BOT_TIME": 30}
        await ok(http, emu, "imopenlines.config.update", {"CONFIG_ID": 1, "PARAMS": off})
        assert _welcome(await _config(http, emu)) == ("N", "always", "0", "600", "close")


async def test_a_reset_welcome_bot_no_longer_joins_new_dialogs() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, receiver):
        first = await client_writes(http, emu, "before", user_code="livechat|1|70|80")
        assert _bot_took(emu, first["chat_id"])
        await emu.settle()
        assert len(receiver.events("ONIMBOTJOINCHAT")) == 1
        reset = {"WELCOME_BOT_ID": _bot(emu)}  # without ENABLE=Y: the bot id becomes 0
        await ok(http, emu, "imopenlines.config.update", {"CONFIG_ID": 1, "PARAMS": reset})
        second = await client_writes(http, emu, "after", user_code="livechat|1|71|81")
        assert not _bot_took(emu, second["chat_id"])
        assert _bot(emu) not in emu.portals[0].portal.chats[second["chat_id"]].members
        await emu.settle()
        assert len(receiver.events("ONIMBOTJOINCHAT")) == 1


async def test_welcome_bot_time_zero_from_the_config_keeps_the_bot() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        five = {
            "WELCOME_BOT_ENABLE": "Y",
            "WELCOME_BOT_ID": _bot(emu),
            "WELCOME_BOT_JOIN": "always",
            "WELCOME_BOT_TIME": 0,
            "WELCOME_BOT_LEFT": "queue",
        }
        await ok(http, emu, "imopenlines.config.update", {"CONFIG_ID": 1, "PARAMS": five})
        opened = await client_writes(http, emu)
        await control(http, emu, "advance-time", {"seconds": 3600})
        session = emu.portals[0].portal.sessions[opened["session_id"]]
        assert (session.operator_id, session.operator_is_bot) == (_bot(emu), True)


async def test_update_permissions_and_missing_line() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        params = {"CONFIG_ID": 1, "PARAMS": {"WELCOME_BOT_ENABLE": "N"}}
        status, body = await rest(
            http, emu, "imopenlines.config.update", params, token=token_of(emu, 2)
        )
        assert (status, body["error"], body["error_description"]) == (
            403,
            "CONFIG_WRONG_USER_PERMISSION",
            "Permission denied",
        )
        assert (await _config(http, emu))["WELCOME_BOT_ENABLE"] == "Y"
        status, body = await rest(http, emu, "imopenlines.config.update", {"PARAMS": {}})
        assert (status, body["error"]) == (400, "CONFIG_ID_EMPTY")
        missing = {"CONFIG_ID": 42, "PARAMS": {"WELCOME_BOT_ENABLE": "Y"}}
        assert await ok(http, emu, "imopenlines.config.update", missing) is False


async def test_list_get() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        rows = await ok(
            http,
            emu,
            "imopenlines.config.list.get",
            {"PARAMS": {"select": ["ID", "WELCOME_BOT_ID"], "filter": {"ACTIVE": "Y"}}},
        )
        assert rows == [{"ID": "1", "WELCOME_BOT_ID": str(_bot(emu))}]
        with_queue = await ok(http, emu, "imopenlines.config.list.get", {"OPTIONS": {"QUEUE": "Y"}})
        assert with_queue[0]["QUEUE"] == ["2", "3", "4"]
        none = await ok(http, emu, "imopenlines.config.list.get", {"PARAMS": {"filter": {"ID": 5}}})
        assert none == []
        status, body = await rest(
            http, emu, "imopenlines.config.list.get", {"PARAMS": {"select": "ID"}}
        )
        assert (status, body["error"]) == (400, "INVALID_FORMAT")
