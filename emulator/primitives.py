"""The few types the emulator's platform (transport, auth, limits, delivery) and its portal domain
(state, lifecycle, method handlers) both speak: the REST error, the portal's identity, its clock
and the sink its events go to. Imports nothing of the emulator, so either side may use it.

Shares NO code with orchestrator/bitrix on purpose: one misreading of the portal contract must not
hide in both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

AuthType = Literal["oauth", "webhook"]


class RestError(Exception):
    """An error envelope: {"error": code, "error_description": description, **extra}."""

    def __init__(self, code: str, description: str = "", status: int = 400, **extra: Any) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status
        self.extra = extra

    def envelope(self) -> dict[str, Any]:
        return {"error": self.code, "error_description": self.description, **self.extra}


@dataclass(frozen=True)
class PortalIdentity:
    """What names a portal: its member_id, its domain and the token its events carry."""

    member_id: str
    domain: str
    application_token: str


class EventSink(Protocol):
    """Where the portal drops outbound events; the platform POSTs each once, never retried."""

    def post(self, url: str, payload: dict[str, Any], note: dict[str, Any] | None = None) -> None:
        """Queue `payload` (event, event_handler_id, data, ts, auth) for delivery to `url`;
        `note` (`chat_id`, `dedup`) goes into the journal's event_posted entry, not the POST."""


class Clock:
    """The portal's clock: wall time plus an offset the control API can advance."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
