"""Keyboards of `imbot.v2.Chat.Message.send/update` (docs/bitrix24-bots-v2.md §5.3; the portal's
`Im\\Bot\\Keyboard`): which buttons survive and when the whole keyboard is refused.

Keys inside buttons are read as sent — the controller camel-to-upper converts only the top level
of `fields` — so a button written in camelCase has no TEXT and is dropped."""

from __future__ import annotations

import json
from typing import Any

from emulator.primitives import RestError

ACTIONS = frozenset({"PUT", "SEND", "COPY", "CALL", "DIALOG", "LIVECHAT", "HELP"})
JSON_LIMIT = 60_000


def _error() -> RestError:
    return RestError("PARAM_KEYBOARD_ERROR", "Incorrect keyboard params")


def _keep(button: dict[str, Any], bot_id: int) -> dict[str, Any] | None:
    """A button as stored, or None when it is dropped. The first action wins in the order
    LINK, FUNCTION, APP_ID, ACTION (needs a known action and a value), COMMAND (needs BOT_ID)."""
    if button.get("TYPE") == "NEWLINE":
        return {"TYPE": "NEWLINE"}
    text = str(button.get("TEXT") or "").strip()
    if not text:
        return None
    kept = {**button, "TEXT": text}
    if button.get("LINK") or button.get("FUNCTION") or button.get("APP_ID"):
        return kept
    if button.get("ACTION"):
        action = str(button["ACTION"]).upper()
        if action in ACTIONS and str(button.get("ACTION_VALUE") or ""):
            return {**kept, "ACTION": action}
        return None
    if button.get("COMMAND") and bot_id > 0:
        command = str(button["COMMAND"]).lstrip("/")
        return {**kept, "COMMAND": command, "BOT_ID": bot_id} if command else None
    return None


def keyboard(value: Any, bot_id: int) -> list[dict[str, Any]]:
    """The buttons to store: a JSON string, `{"BUTTONS": [...]}` or a bare list; the calling
    bot's id overwrites any BOT_ID. PARAM_KEYBOARD_ERROR when no real button survives."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise _error() from exc
    buttons = value.get("BUTTONS") if isinstance(value, dict) else value
    if isinstance(buttons, dict):
        buttons = list(buttons.values())
    if not isinstance(buttons, list):
        raise _error()
    kept = [k for b in buttons if isinstance(b, dict) and (k := _keep(b, bot_id)) is not None]
    if not any(b.get("TYPE") != "NEWLINE" for b in kept) or len(json.dumps(kept)) >= JSON_LIMIT:
        raise _error()
    return kept


def removes(value: Any) -> bool:
    """`keyboard: "N"` or an empty value removes the keyboard on update."""
    return value in ("N", "", None) or value == [] or value == {}
