"""The wire form of a message's buttons, for each kind of bot (docs/bitrix24-bots-v2.md, keyboards).

A v2 bot's button is a COMMAND button of our BUTTON_COMMAND with the press's meaning in
COMMAND_PARAMS and BLOCK=Y: the portal raises ONIMBOTV2COMMANDADD for a press and then disables
the button, so it is pressed once. A v1 bot gets buttons that SEND their label as the client's
message (a v1 press raises no event our bot is bound to): the machine knows the labels it
offered and reads a label typed back as the press, whichever way it came.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from orchestrator.bitrix.bot_v2 import Button
from orchestrator.events.bots_v2 import BUTTON_COMMAND
from orchestrator.pipeline.keys import Keys

__all__ = ["WATCH_S", "v1", "v2", "watch"]

WATCH_S = 300  # how long after a keyboard goes out its portal's bot log is read quickly


def v2(buttons: Sequence[Mapping[str, str]]) -> list[Button] | None:
    """COMMAND buttons, each pressed once; None for no keyboard."""
    return [
        Button(text=b["text"], command=BUTTON_COMMAND, command_params=b["value"], block=True)
        for b in buttons
    ] or None


def v1(buttons: Sequence[Mapping[str, str]]) -> dict[str, Any] | None:
    """`KEYBOARD` of imbot.message.add: buttons that send their label; None for none."""
    if not buttons:
        return None
    return {
        "BUTTONS": [
            {"TEXT": b["text"], "ACTION": "SEND", "ACTION_VALUE": b["text"]} for b in buttons
        ]
    }


async def watch(redis: aioredis.Redis, keys: Keys, member_id: str) -> None:
    """A fetch-mode bot's keyboard is out: its press comes only through the bot's event log, so
    its poller reads the log at the quick end of its idle range for WATCH_S, and now."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(keys.keyboards(member_id), b"1", px=WATCH_S * 1000)
        pipe.publish(keys.fetch_wake, member_id)
        await pipe.execute()
