"""Models of the chat-bot API v2 events (`ONIMBOTV2*`), pushed or fetched.

One model serves both ways they reach us (docs/bitrix24-bots-v2.md "Events"):
* webhook mode: a form POST like every event (`event`, `data`, `ts`, `auth`), every scalar a
  string (`"1"`/`"0"` for booleans), empty arrays and nulls dropped, `data.bot.auth` holding the
  bot user's tokens (never trusted, never stored);
* fetch mode: a row of `imbot.v2.Event.get` (`eventId`, `type`, `date`, `data` with JSON types),
  which the fetcher puts in the same envelope (orchestrator/ingress/intake.py `fetched_payload`,
  with `event_id` and `ts` from `date`).

`data` is camelCase: `bot`, `message` (`id`, `chatId`, `authorId`, `text`, `isSystem`), `chat`
(`id`, `dialogId`, `entityType` = "LINES" in an Open Line, `entityId` = the user code
`<connector>|<line>|<external chat>|<external user>`, `entityData1` with the session id at
position 5), `user` (`id`, `bot`, `connector`), `language`.

Dedup keys: a message's add shares `msg:<id>:add` with v1's ONIMBOTMESSAGEADD and
ONOPENLINEMESSAGEADD of the same message, so one message counts once whichever way it came; a
fetched event's other keys use its `eventId` (unique per portal), a pushed one's its `ts`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from orchestrator.events.base import YN, BaseEvent, EventModel, Id, chat_key, int_at

__all__ = [
    "BUTTON_COMMAND",
    "V2_EVENT_NAMES",
    "BotV2CommandAdd",
    "BotV2Delete",
    "BotV2JoinChat",
    "BotV2MessageAdd",
    "BotV2MessageDelete",
    "BotV2MessageUpdate",
    "V2Chat",
    "V2Message",
    "V2User",
    "fetched_ts",
]

# The command our keyboard buttons raise (`register-bot` registers it, hidden; a button's
# COMMAND_PARAMS is what its press means): ONIMBOTV2COMMANDADD of it is a press.
BUTTON_COMMAND = "answer"

V2_EVENT_NAMES = frozenset(
    {
        "ONIMBOTV2MESSAGEADD",
        "ONIMBOTV2MESSAGEUPDATE",
        "ONIMBOTV2MESSAGEDELETE",
        "ONIMBOTV2JOINCHAT",
        "ONIMBOTV2COMMANDADD",
        "ONIMBOTV2DELETE",
    }
)


def _php_empty(value: Any) -> Any:
    # PHP renders an empty map as [] (fetch mode) and drops it from a form (webhook mode)
    return {} if value in ([], None, "") else value


class V2Bot(EventModel):
    """`data.bot`: the bot the event is for (its `auth` block is ignored)."""

    id: Id
    code: str = ""


class V2Message(EventModel):
    """`data.message`."""

    id: Id
    chatId: Id = 0
    authorId: Id = 0
    text: str = ""
    isSystem: YN = False


class V2Chat(EventModel):
    """`data.chat`."""

    id: Id = 0
    dialogId: str = ""
    type: str = ""
    messageType: str = ""
    entityType: str = ""
    entityId: str = ""
    entityData1: str = ""

    @property
    def is_lines(self) -> bool:
        """An Open Lines chat (the operator-side chat of a line)."""
        return self.entityType == "LINES" or self.messageType == "L"

    @property
    def line_id(self) -> int | None:
        """The line (config) id, from the user code."""
        return int_at(self.entityId, 1)

    @property
    def session_id(self) -> int | None:
        """The session id at position 5 of entityData1."""
        return int_at(self.entityData1, 5)

    @property
    def key(self) -> str:
        """The queue key: the portal chat id, else `dm<dialogId>` (a private chat)."""
        return chat_key(self.id, self.dialogId)


class V2User(EventModel):
    """`data.user`: who wrote (or who added the bot); may be empty for a system join."""

    id: Id = 0
    name: str = ""
    firstName: str = ""
    lastName: str = ""
    bot: YN = False
    connector: YN = False


class V2Command(EventModel):
    """`data.command` of ONIMBOTV2COMMANDADD (`command` with its leading `/`)."""

    id: Id = 0
    command: str = ""
    params: str = ""
    context: str = ""


class V2Data(EventModel):
    """`data` of every ONIMBOTV2* event; blocks an event does not carry stay empty."""

    bot: V2Bot
    message: V2Message | None = None
    messageId: Id = 0
    chat: V2Chat = Field(default_factory=V2Chat)
    user: V2User = Field(default_factory=V2User)
    command: V2Command | None = None
    dialogId: str = ""
    language: str = ""

    @field_validator("chat", "user", "message", "command", mode="before")
    @classmethod
    def _empty_block(cls, value: Any) -> Any:
        return _php_empty(value)


class _BotV2Event(BaseEvent):
    data: V2Data
    event_id: Id = 0  # the fetch log's eventId; 0 for a pushed event

    @property
    def bot_id(self) -> int:
        """The bot the event is for."""
        return self.data.bot.id

    @property
    def dialog_id(self) -> str | None:
        """The chat's queue key."""
        return self.data.chat.key

    @property
    def occurrence(self) -> str:
        """What tells two occurrences apart: the log's event id, else the dispatch time."""
        return f"e{self.event_id}" if self.event_id else str(self.ts)


class BotV2MessageAdd(_BotV2Event):
    """ONIMBOTV2MESSAGEADD: a message reached the bot (every non-bot message of its line)."""

    event: Literal["ONIMBOTV2MESSAGEADD"]

    @property
    def dedup_key(self) -> str:
        """Shared with v1's and the Open Lines event of the same message."""
        return f"msg:{self.message_id}:add"

    @property
    def message_id(self) -> int:
        """The message's id."""
        return self.data.message.id if self.data.message else 0


class BotV2MessageUpdate(BotV2MessageAdd):
    """ONIMBOTV2MESSAGEUPDATE: such a message was edited (`message` is its new state)."""

    event: Literal["ONIMBOTV2MESSAGEUPDATE"]  # type: ignore[assignment]

    @property
    def dedup_key(self) -> str:
        """Each edit counts."""
        return f"msg:{self.message_id}:update:{self.occurrence}"


class BotV2MessageDelete(_BotV2Event):
    """ONIMBOTV2MESSAGEDELETE: such a message was deleted (`messageId`)."""

    event: Literal["ONIMBOTV2MESSAGEDELETE"]

    @property
    def dedup_key(self) -> str:
        """A message is deleted once."""
        return f"msg:{self.data.messageId}:delete"


class BotV2JoinChat(_BotV2Event):
    """ONIMBOTV2JOINCHAT: the bot joined a chat (a line's welcome bot, or a transfer to it)."""

    event: Literal["ONIMBOTV2JOINCHAT"]

    @property
    def dialog_id(self) -> str | None:
        """The chat joined (`chat`, else `dialogId`)."""
        if self.data.chat.id or self.data.chat.dialogId:
            return self.data.chat.key
        return V2Chat(dialogId=self.data.dialogId).key

    @property
    def dedup_key(self) -> str:
        """One join of one bot into one chat (a bot rejoins in each new session)."""
        return f"join:{self.dialog_id}:{self.bot_id}:{self.occurrence}"


class BotV2CommandAdd(_BotV2Event):
    """ONIMBOTV2COMMANDADD: a command of the bot was invoked (typed, a button, the menu)."""

    event: Literal["ONIMBOTV2COMMANDADD"]

    @property
    def dedup_key(self) -> str:
        """One command of one message."""
        command = self.data.command.id if self.data.command else 0
        message = self.data.message.id if self.data.message else 0
        return f"cmd:{message}:{command}:{self.occurrence}"


class BotV2Delete(_BotV2Event):
    """ONIMBOTV2DELETE: the bot was deleted; the last event it gets (portal-level)."""

    event: Literal["ONIMBOTV2DELETE"]

    @property
    def dialog_id(self) -> str | None:
        """Portal-level: no dialog."""
        return None

    @property
    def dedup_key(self) -> str:
        """A bot is deleted once."""
        return f"botdelete:{self.bot_id}"


def fetched_ts(date: str, fallback: float) -> int:
    """A log row's `date` (ISO-8601 with offset) as Unix seconds, else `fallback`."""
    try:
        return int(datetime.fromisoformat(date).timestamp())
    except ValueError:
        return int(fallback)
