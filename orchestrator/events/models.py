"""Pydantic models of the Bitrix24 events we receive, and `parse_event(payload) -> Event`.

Shapes follow docs/bitrix24.md §8 (every scalar arrives as a string; ids are accepted as numeric
strings). Each event exposes the same surface: `name`, `member_id`, `domain`,
`application_token`, `ts`, `dialog_id` (the portal chat id: the per-dialog queue key; None for
portal-level events) and `dedup_key` (stable across re-deliveries of the same occurrence):

    message events        msg:<MESSAGE_ID>:add|delete, msg:<MESSAGE_ID>:update:<ts> (the bot
                          and the Open Lines bindings of one message share the add key, so one
                          message counts once; a message may be edited many times)
    ONIMBOTJOINCHAT       join:<chat>:<bot>:<ts>   (a join has no id of its own; a bot rejoins the
                          same chat in each new session, so the dispatch time tells joins apart)
    ONSESSIONSTART/FINISH <name>:session:<id> when the payload names the session (docs' shape),
                          else <name>:chat:<chat>:<ts> (the code's shape has no session id)
    ONOPENLINEMESSAGEADD  as message events when the packet names portal ids (`im` block or
                          message.chat_id); else olmsg:<connector>|<line>|<ext chat>:<id>
                          and no dialog (external ids cannot be placed in one)
    ONIMBOTDELETE         botdelete:<bot>
    ONAPPINSTALL/…        <name>:<member_id>:<ts>      (<name> lower-case throughout)
    ONIMBOTV2*            as their v1 twins (events/bots_v2.py), with the fetch log's eventId
                          in place of ts for a fetched event

A private chat (not an Open Line) has no chat id in the payload; its key is `dm<DIALOG_ID>`.

The ingress keeps the raw dict (for the inbox and the dead-letter queue); parsing is pure and
repeatable, so the worker parses the same raw dict again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from orchestrator.errors import InvalidEvent
from orchestrator.events.base import (
    YN,
    Auth,
    BaseEvent,
    EventModel,
    Id,
    chat_key,
    chat_of_dialog,
    int_at,
)
from orchestrator.events.bots_v2 import (
    V2_EVENT_NAMES,
    BotV2CommandAdd,
    BotV2Delete,
    BotV2JoinChat,
    BotV2MessageAdd,
    BotV2MessageDelete,
    BotV2MessageUpdate,
)
from orchestrator.events.openlines import (
    OfflineEventNotice,
    OpenLineMessageAdd,
    SessionFinish,
    SessionStart,
)

__all__ = [
    "EVENT_NAMES",
    "AppInstall",
    "AppUninstall",
    "Auth",
    "BaseEvent",
    "BotDelete",
    "BotJoinChat",
    "BotMessageAdd",
    "BotMessageDelete",
    "BotMessageUpdate",
    "BotV2CommandAdd",
    "BotV2Delete",
    "BotV2JoinChat",
    "BotV2MessageAdd",
    "BotV2MessageDelete",
    "BotV2MessageUpdate",
    "Event",
    "MessageParams",
    "OfflineEventNotice",
    "OpenLineMessageAdd",
    "SessionFinish",
    "SessionStart",
    "parse_event",
    "parse_stored_event",
]


# --- chat-bot events (§8.1–8.4) -----------------------------------------------------------


class BotEntry(EventModel):
    """One entry of `data[BOT]`: the bot the event is for."""

    BOT_ID: Id
    BOT_CODE: str = ""


class EventUser(EventModel):
    """`data[USER]`: the author of the message (absent when the author id is 0)."""

    ID: Id
    NAME: str = ""
    FIRST_NAME: str = ""
    LAST_NAME: str = ""
    IS_BOT: YN = False
    IS_CONNECTOR: YN = False
    IS_EXTRANET: YN = False


class MessageParams(EventModel):
    """`data[PARAMS]` of the message events."""

    MESSAGE_ID: Id
    MESSAGE: str = ""
    DIALOG_ID: str = ""
    FROM_USER_ID: Id = 0
    AUTHOR_ID: Id = 0
    CHAT_ID: Id = 0
    TO_CHAT_ID: Id = 0
    TO_USER_ID: Id = 0
    MESSAGE_TYPE: str = ""
    CHAT_TYPE: str = ""
    SYSTEM: YN = False
    CHAT_AUTHOR_ID: Id = 0
    CHAT_ENTITY_TYPE: str = ""
    CHAT_ENTITY_ID: str = ""
    CHAT_ENTITY_DATA_1: str = ""
    LANGUAGE: str = ""

    @model_validator(mode="before")
    @classmethod
    def _message_id_from_id(cls, data: Any) -> Any:
        # update/delete payloads carry the message id as ID (and usually MESSAGE_ID too)
        if isinstance(data, Mapping) and not data.get("MESSAGE_ID") and data.get("ID"):
            return {**data, "MESSAGE_ID": data["ID"]}
        return data

    @property
    def chat_id(self) -> int:
        """The portal chat id (0 for a private chat that names none)."""
        return self.CHAT_ID or self.TO_CHAT_ID or chat_of_dialog(self.DIALOG_ID)

    @property
    def is_lines(self) -> bool:
        """Whether the chat is an Open Lines (operator-side) chat."""
        return self.CHAT_ENTITY_TYPE == "LINES" or self.MESSAGE_TYPE == "L"

    @property
    def user_code(self) -> str:
        """`<connector>|<line>|<external chat>|<external user>` of an Open Lines chat."""
        return self.CHAT_ENTITY_ID

    @property
    def line_id(self) -> int | None:
        """The Open Line (config) id parsed from the user code."""
        return int_at(self.CHAT_ENTITY_ID, 1)

    @property
    def session_id(self) -> int | None:
        """The session id at position 5 of CHAT_ENTITY_DATA_1, when the chat has one."""
        return int_at(self.CHAT_ENTITY_DATA_1, 5)


class MessageData(EventModel):
    """`data` of the ONIMBOTMESSAGE* events."""

    BOT: dict[str, BotEntry] = Field(default_factory=dict)
    PARAMS: MessageParams
    USER: EventUser | None = None


class _BotMessageEvent(BaseEvent):
    data: MessageData
    verb: ClassVar[str] = "add"

    @property
    def dialog_id(self) -> str | None:
        """The portal chat id of the message."""
        params = self.data.PARAMS
        return chat_key(params.chat_id, params.DIALOG_ID)

    @property
    def dedup_key(self) -> str:
        """Shared with ONOPENLINEMESSAGEADD of the same message; each edit counts."""
        key = f"msg:{self.data.PARAMS.MESSAGE_ID}:{self.verb}"
        return f"{key}:{self.ts}" if self.verb == "update" else key

    @property
    def bot_ids(self) -> list[int]:
        """The bots the event was delivered for."""
        return [entry.BOT_ID for entry in self.data.BOT.values()]


class BotMessageAdd(_BotMessageEvent):
    """ONIMBOTMESSAGEADD: a message in a chat the bot is in."""

    event: Literal["ONIMBOTMESSAGEADD"]


class BotMessageUpdate(_BotMessageEvent):
    """ONIMBOTMESSAGEUPDATE: a message was edited."""

    event: Literal["ONIMBOTMESSAGEUPDATE"]
    verb: ClassVar[str] = "update"


class BotMessageDelete(_BotMessageEvent):
    """ONIMBOTMESSAGEDELETE: a message was deleted."""

    event: Literal["ONIMBOTMESSAGEDELETE"]
    verb: ClassVar[str] = "delete"


class JoinParams(EventModel):
    """`data[PARAMS]` of ONIMBOTJOINCHAT."""

    BOT_ID: Id = 0
    CHAT_ID: Id = 0
    DIALOG_ID: str = ""
    USER_ID: Id = 0
    CHAT_TYPE: str = ""
    CHAT_AUTHOR_ID: Id = 0
    CHAT_ENTITY_TYPE: str = ""
    CHAT_ENTITY_ID: str = ""
    LANGUAGE: str = ""

    @property
    def line_id(self) -> int | None:
        """The Open Line id parsed from the user code."""
        return int_at(self.CHAT_ENTITY_ID, 1)


class JoinData(EventModel):
    """`data` of ONIMBOTJOINCHAT."""

    BOT: dict[str, BotEntry] = Field(default_factory=dict)
    PARAMS: JoinParams
    USER: EventUser | None = None


class BotJoinChat(BaseEvent):
    """ONIMBOTJOINCHAT: the bot was added to a chat (e.g. as an Open Line's welcome bot)."""

    event: Literal["ONIMBOTJOINCHAT"]
    data: JoinData

    @property
    def bot_id(self) -> int:
        """The joining bot (PARAMS.BOT_ID, else the only entry of data[BOT])."""
        if self.data.PARAMS.BOT_ID:
            return self.data.PARAMS.BOT_ID
        return next((b.BOT_ID for b in self.data.BOT.values()), 0)

    @property
    def dialog_id(self) -> str | None:
        """The chat the bot joined."""
        return chat_key(self.data.PARAMS.CHAT_ID, self.data.PARAMS.DIALOG_ID)

    @property
    def dedup_key(self) -> str:
        """One join of one bot into one chat at one dispatch time."""
        return f"join:{self.dialog_id}:{self.bot_id}:{self.ts}"


class BotDeleteData(EventModel):
    """`data` of ONIMBOTDELETE."""

    BOT_ID: Id
    BOT_CODE: str = ""


class BotDelete(BaseEvent):
    """ONIMBOTDELETE: the bot was unregistered (portal-level)."""

    event: Literal["ONIMBOTDELETE"]
    data: BotDeleteData

    @property
    def dedup_key(self) -> str:
        """A bot is deleted once."""
        return f"botdelete:{self.data.BOT_ID}"


# --- application lifecycle ----------------------------------------------------------------


class AppData(EventModel):
    """`data` of ONAPPINSTALL / ONAPPUNINSTALL."""

    VERSION: str = ""
    ACTIVE: YN = True
    INSTALLED: YN = True
    LANGUAGE_ID: str = ""
    CLEAN: YN = False


class AppInstall(BaseEvent):
    """ONAPPINSTALL: the app was installed; `auth` carries the portal's tokens."""

    event: Literal["ONAPPINSTALL"]
    data: AppData = Field(default_factory=AppData)


class AppUninstall(BaseEvent):
    """ONAPPUNINSTALL: the app was removed from the portal."""

    event: Literal["ONAPPUNINSTALL"]
    data: AppData = Field(default_factory=AppData)


Event = Annotated[
    BotMessageAdd
    | BotMessageUpdate
    | BotMessageDelete
    | BotJoinChat
    | BotDelete
    | OpenLineMessageAdd
    | SessionStart
    | SessionFinish
    | AppInstall
    | AppUninstall
    | OfflineEventNotice
    | BotV2MessageAdd
    | BotV2MessageUpdate
    | BotV2MessageDelete
    | BotV2JoinChat
    | BotV2CommandAdd
    | BotV2Delete,
    Field(discriminator="event"),
]

EVENT_NAMES = (
    frozenset(
        {
            "ONIMBOTMESSAGEADD",
            "ONIMBOTMESSAGEUPDATE",
            "ONIMBOTMESSAGEDELETE",
            "ONIMBOTJOINCHAT",
            "ONIMBOTDELETE",
            "ONOPENLINEMESSAGEADD",
            "ONSESSIONSTART",
            "ONSESSIONFINISH",
            "ONAPPINSTALL",
            "ONAPPUNINSTALL",
            "ONOFFLINEEVENT",
        }
    )
    | V2_EVENT_NAMES
)

_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(payload: Mapping[str, Any]) -> Event:
    """Validate a decoded payload; 422 for an event we do not handle, 400 for a malformed one."""
    raw_name = payload.get("event")
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise InvalidEvent("missing field: event", status=400)
    name = raw_name.strip().upper()
    if name not in EVENT_NAMES:
        raise InvalidEvent(f"unsupported event {name[:60]!r}", status=422)
    try:
        return _ADAPTER.validate_python({**payload, "event": name})
    except ValidationError as exc:
        raise InvalidEvent(_reason(exc), status=400) from exc


# The ingress verifies `auth[application_token]` and never persists it (a stored secret is a
# leaked secret); what a worker re-parses is that verified, token-less payload.
VERIFIED_AT_INGRESS = "verified-at-ingress"


def parse_stored_event(payload: Mapping[str, Any]) -> Event:
    """Re-parse a payload the ingress verified and stored without its application_token."""
    auth = payload.get("auth")
    if isinstance(auth, Mapping) and not auth.get("application_token"):
        payload = {**payload, "auth": {**auth, "application_token": VERIFIED_AT_INGRESS}}
    return parse_event(payload)


def _reason(exc: ValidationError) -> str:
    """The first error as `<dotted.location>: <message>` (the discriminator tag dropped)."""
    first = exc.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"] if str(part) not in EVENT_NAMES]
    where = ".".join(loc) or "payload"
    return f"{where}: {first['msg']}"
