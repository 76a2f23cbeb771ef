"""Models of the Open Lines events (docs/bitrix24.md §8.6): OnOpenLineMessageAdd, OnSession*,
and OnOfflineEvent, the hint that the app's offline queue holds rows of them.

The code and the docs disagree on their shapes; both are accepted (see each model).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from orchestrator.events.base import YN, BaseEvent, EventModel, Id, first_item

__all__ = ["OfflineEventNotice", "OpenLineMessageAdd", "SessionFinish", "SessionStart"]


class OLConnector(EventModel):
    """`connector` block; external ids may be non-numeric, so they stay strings."""

    connector_id: str = ""
    line_id: Id = 0
    chat_id: str = ""
    user_id: str = ""


class OLChat(EventModel):
    """`chat` block (`chat_id` in the code's session shape, `id` elsewhere)."""

    id: str = ""
    chat_id: str = ""


class OLIm(EventModel):
    """`im` block: the portal's own chat and message ids of a connector message."""

    chat_id: Id = 0
    message_id: Id = 0


class OLMessage(EventModel):
    """`message` block of OnOpenLineMessageAdd."""

    id: Id = 0
    chat_id: Id = 0
    user_id: Id = 0
    text: str = ""
    system: YN = False


class OLMessagePacket(EventModel):
    """One `DATA` packet of OnOpenLineMessageAdd."""

    connector: OLConnector = Field(default_factory=OLConnector)
    chat: OLChat = Field(default_factory=OLChat)
    im: OLIm = Field(default_factory=OLIm)
    message: OLMessage

    @property
    def portal_chat_id(self) -> int:
        """The portal chat id (`im.chat_id`, else `message.chat_id`), 0 when the packet has
        neither: `chat.id` and `connector.chat_id` are the external channel's ids, not ours."""
        return self.im.chat_id or self.message.chat_id

    @property
    def portal_message_id(self) -> int:
        """The portal message id: `im.message_id`, else (with a portal chat id) `message.id`."""
        if self.im.message_id:
            return self.im.message_id
        return self.message.id if self.portal_chat_id else 0


class OpenLineMessageData(EventModel):
    """`data` of OnOpenLineMessageAdd: inbound `{DATA}` or outbound `{CONNECTOR, LINE, DATA}`."""

    CONNECTOR: str | None = None
    LINE: str | None = None
    DATA: Annotated[OLMessagePacket, BeforeValidator(first_item)]

    @property
    def outbound(self) -> bool:
        """True for an operator message going out to the connector."""
        return self.CONNECTOR is not None


class OpenLineMessageAdd(BaseEvent):
    """ONOPENLINEMESSAGEADD: a client message from a connector, or an operator's going out."""

    event: Literal["ONOPENLINEMESSAGEADD"]
    data: OpenLineMessageData

    @model_validator(mode="after")
    def _has_ids(self) -> OpenLineMessageAdd:
        if not (self.data.DATA.portal_message_id or self.data.DATA.message.id):
            raise ValueError("data.DATA.message names no message id")
        return self

    @property
    def dialog_id(self) -> str | None:
        """The portal chat id of the message; None when the packet carries only external ids
        (the ingress then files it with the portal-level events, where it drives nothing)."""
        chat_id = self.data.DATA.portal_chat_id
        return str(chat_id) if chat_id else None

    @property
    def dedup_key(self) -> str:
        """Shared with ONIMBOTMESSAGEADD of the same message when the portal ids are known."""
        packet = self.data.DATA
        if packet.portal_message_id:
            return f"msg:{packet.portal_message_id}:add"
        c = packet.connector
        return f"olmsg:{c.connector_id}|{c.line_id}|{c.chat_id}:{packet.message.id}"


class OLSession(EventModel):
    """`session` block (docs' shape only)."""

    id: Id = 0
    closed: YN = False


class OLSessionPacket(EventModel):
    """`DATA` of OnSessionStart/Finish, code's shape or docs' one-element array."""

    connector: OLConnector = Field(default_factory=OLConnector)
    chat: OLChat = Field(default_factory=OLChat)
    session: OLSession | None = None
    line: dict[str, str] = Field(default_factory=dict)

    @property
    def chat_id(self) -> int:
        """The portal chat id (`chat.chat_id`, `chat.id`, else `connector.chat_id`)."""
        for candidate in (self.chat.chat_id, self.chat.id, self.connector.chat_id):
            if candidate.isdigit() and int(candidate) > 0:
                return int(candidate)
        return 0

    @property
    def line_id(self) -> int | None:
        """The Open Line id."""
        raw = self.line.get("id", "")
        return int(raw) if raw.isdigit() else (self.connector.line_id or None)


class SessionData(EventModel):
    """`data` of the session events."""

    DATA: Annotated[OLSessionPacket, BeforeValidator(first_item)]


class _SessionEvent(BaseEvent):
    data: SessionData

    @model_validator(mode="after")
    def _has_chat(self) -> _SessionEvent:
        if not self.data.DATA.chat_id:
            raise ValueError("data.DATA names no portal chat id")
        return self

    @property
    def session_id(self) -> int | None:
        """The session id when the payload carries one (docs' shape)."""
        session = self.data.DATA.session
        return session.id if session and session.id else None

    @property
    def dialog_id(self) -> str | None:
        """The portal chat id of the session."""
        return str(self.data.DATA.chat_id)

    @property
    def dedup_key(self) -> str:
        """By session id when known, else by chat and dispatch time."""
        if self.session_id:
            return f"{self.event.lower()}:session:{self.session_id}"
        return f"{self.event.lower()}:chat:{self.data.DATA.chat_id}:{self.ts}"


class SessionStart(_SessionEvent):
    """ONSESSIONSTART: a session was created."""

    event: Literal["ONSESSIONSTART"]


class SessionFinish(_SessionEvent):
    """ONSESSIONFINISH: a session was really closed (status 60, not the vote wait)."""

    event: Literal["ONSESSIONFINISH"]


class OfflineEventNotice(BaseEvent):
    """ONOFFLINEEVENT: the portal wrote rows into the app's offline queue. A hint, not an event:
    no `data`, and notices within the binding's `minTimeout` are dropped, not delayed
    (docs/bitrix24-offline-events.md §1.10). Its `auth` carries access and refresh tokens; the
    ingress verifies the application token, wakes the offline consumer and stores nothing
    (orchestrator/ingress/intake.py, orchestrator/ingress/pull/offline.py)."""

    event: Literal["ONOFFLINEEVENT"]
    data: Any = None
