"""The common ground of the Bitrix24 event models: the `auth` block, the envelope, field types."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "YN",
    "Auth",
    "BaseEvent",
    "EventModel",
    "Id",
    "chat_key",
    "chat_of_dialog",
    "first_item",
    "int_at",
]


def _yes(value: Any) -> bool:
    return value is True or str(value).strip().upper() in ("Y", "1", "TRUE")


def _blank_zero(value: Any) -> Any:
    return 0 if value in ("", None) else value


def first_item(value: Any) -> Any:
    """The docs show some `DATA` blocks as one-element arrays; the code sends an object."""
    if isinstance(value, list):
        return value[0] if value else {}
    return value


YN = Annotated[bool, BeforeValidator(_yes)]
Id = Annotated[int, BeforeValidator(_blank_zero), Field(ge=0)]


class EventModel(BaseModel):
    """Frozen, tolerant of extra keys, numbers accepted where strings are expected."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class Auth(EventModel):
    """The `auth` block: who the event is for, and the token to verify it with."""

    domain: str = Field(min_length=1)
    member_id: str = Field(min_length=1)
    application_token: str = Field(min_length=1, repr=False)
    access_token: str | None = Field(default=None, repr=False)
    refresh_token: str | None = Field(default=None, repr=False)
    expires_in: Id | None = None
    user_id: Id | None = None
    scope: str | None = None
    client_endpoint: str | None = None
    server_endpoint: str | None = None


class BaseEvent(EventModel):
    """What every event has: its name, the portal it is for, and when it was dispatched."""

    event: str
    event_handler_id: Id = 0
    ts: int
    auth: Auth

    @property
    def name(self) -> str:
        """The event name, upper-case."""
        return self.event

    @property
    def member_id(self) -> str:
        """The portal's member_id."""
        return self.auth.member_id

    @property
    def domain(self) -> str:
        """The portal's domain."""
        return self.auth.domain

    @property
    def application_token(self) -> str:
        """The token the ingress verifies against the one stored at install."""
        return self.auth.application_token

    @property
    def dialog_id(self) -> str | None:
        """The per-dialog queue key (portal chat id); None for portal-level events."""
        return None

    @property
    def dedup_key(self) -> str:
        """A key equal for re-deliveries of the same occurrence."""
        return f"{self.event.lower()}:{self.member_id}:{self.ts}"


def int_at(piped: str, index: int) -> int | None:
    """The positive integer at `index` of a pipe-separated portal string, else None."""
    parts = piped.split("|")
    if len(parts) > index and parts[index].isdigit() and int(parts[index]) > 0:
        return int(parts[index])
    return None


def chat_of_dialog(dialog_id: str) -> int:
    """The chat id a `chat<N>` dialog id names; 0 for a private dialog (a user id)."""
    if dialog_id.startswith("chat") and dialog_id[4:].isdigit():
        return int(dialog_id[4:])
    return 0


def chat_key(chat_id: int, dialog_id: str) -> str:
    """The queue key of a chat: its portal id, or `dm<dialog id>` for a private chat."""
    return str(chat_id or chat_of_dialog(dialog_id) or f"dm{dialog_id}")
