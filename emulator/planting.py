"""A test tool of the control API (`POST /_emulator/journal/plant`): append a journal entry as if
the portal had made that change, so a proof can show that its verdict fails when the portal's
records show a duplicate (a second copy of a bot message, a session closed without a vote, ...).

A `message` is applied to the portal's state too: it is added to the chat (and so to its open
session's history, as `imopenlines.session.history.get` shows it), with no event and no status
change. Every other kind is planted into the journal only; the portal's state stays as it was.
Each planted entry carries `planted: true`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator.journal import KINDS, PORTAL
from emulator.primitives import RestError

if TYPE_CHECKING:
    from emulator.store import PortalStore

# The journal's own fields, and those the portal assigns to a message: never taken from a plant.
JOURNAL_OWN = ("kind", "seq", "at")
ASSIGNED = (*JOURNAL_OWN, "message_id", "session_id")
AUTHORS = ("client", "operator", "bot", "system")


def plant(portal: PortalStore, entry: dict[str, Any]) -> dict[str, Any]:
    """Append `entry` (`kind` plus its fields); the entry as journaled (ValueError if bad)."""
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}")
    if kind == "message":
        return _plant_message(portal, entry)
    fields = {k: v for k, v in entry.items() if k not in JOURNAL_OWN}
    return portal.journal.append(str(kind), **fields, planted=True)


def _plant_message(portal: PortalStore, entry: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in entry.items() if k not in ASSIGNED}
    chat_id, text = fields.pop("chat_id", None), fields.pop("text", None)
    if isinstance(chat_id, bool) or not isinstance(chat_id, int):
        raise ValueError("a planted message needs chat_id (an integer)")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a planted message needs a non-empty text")
    chat = portal.get_chat(chat_id)
    if chat is None:
        raise RestError("CHAT_NOT_FOUND", f"No chat {chat_id}", 404)
    author = fields.setdefault("author", "system")
    if author not in AUTHORS:
        raise ValueError(f"author must be one of {list(AUTHORS)}")
    author_id = fields.pop("author_id", fields.get("bot_id", 0))
    if isinstance(author_id, bool) or not isinstance(author_id, int):
        raise ValueError("author_id must be an integer")
    to_client = fields.pop("to_client", False)
    if not isinstance(to_client, bool):
        raise ValueError("to_client must be true or false")
    fields.setdefault("via", PORTAL)
    portal.post_message(
        chat,
        author_id,
        text,
        system=author == "system",
        to_client=to_client,
        journal={**fields, "planted": True},
    )
    return portal.journal.last()
