"""The state dump of one portal (`GET /_emulator/state`, tests): every table as JSON-able data."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.store import PortalStore


def snapshot(store: PortalStore) -> dict[str, Any]:
    """The whole state as JSON-able data, for tests and GET /_emulator/state."""
    chats = []
    for chat in store.chats.values():
        row = asdict(chat)
        row.update(
            entity_data_1=chat.entity_data_1,
            entity_data_2=chat.entity_data_2,
            entity_data_3=chat.entity_data_3,
            dialog_id=chat.dialog_id,
        )
        chats.append(row)
    return {
        "member_id": store.identity.member_id,
        "domain": store.identity.domain,
        "admin_user_id": store.admin_user_id,
        "app_client_id": store.app_client_id,
        "users": [
            asdict(u) | {"is_bot": u.is_bot, "is_connector": u.is_connector}
            for u in store.users.values()
        ],
        "bots": [asdict(b) for b in store.bots.values()],
        "lines": [asdict(line) for line in store.lines.values()],
        "chats": chats,
        "sessions": [asdict(s) for s in store.sessions.values()],
        "messages": [asdict(m) for m in store.messages.values()],
        "leads": [{"ID": lead.id, **lead.fields} for lead in store.leads.values()],
        "votes": [
            {
                "session_id": s.id,
                "vote": s.vote,
                "vote_head": s.vote_head,
                "comment_head": s.comment_head,
            }
            for s in store.sessions.values()
            if s.vote or s.vote_head or s.comment_head
        ],
        "event_bindings": [asdict(b) for b in store.bindings.values()],
        "event_counts": dict(store.event_counts),
    }
