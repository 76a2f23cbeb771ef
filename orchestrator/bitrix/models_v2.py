"""pydantic models of what the product reads from the v2 chat-bot API and its plumbing.

`imbot.v2.*` answers camelCase keys with JSON booleans (docs/bitrix24-bots-v2.md "Coexistence
with v1"); `event.offline.*` and `imopenlines.config.get` answer the portal's UPPER_CASE table
columns with string values (docs/bitrix24-offline-events.md §1.5, §3.1). Unknown keys are kept:
the portal adds fields over time, and a model that dropped them would hide the change.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

# The five keys that make a line's welcome bot; an update must send them together, with
# WELCOME_BOT_ENABLE=Y in the same call (docs/bitrix24-offline-events.md §3.2, "The trap").
WELCOME_KEYS = (
    "WELCOME_BOT_ENABLE",
    "WELCOME_BOT_JOIN",
    "WELCOME_BOT_ID",
    "WELCOME_BOT_TIME",
    "WELCOME_BOT_LEFT",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class BotV2(_Model):
    """A bot of `Bot.get|register|update` (`result.bot`). Only its owner sees the extended
    format (`eventMode`, `moduleId`, counters): `event_mode is None` means the caller does not
    own it (docs/bitrix24-bots-v2.md "Bot methods", `Bot.get`)."""

    id: int
    code: str = ""
    type: str = ""
    is_support_openline: bool = Field(default=False, alias="isSupportOpenline")
    is_hidden: bool = Field(default=False, alias="isHidden")
    event_mode: str | None = Field(default=None, alias="eventMode")
    module_id: str | None = Field(default=None, alias="moduleId")

    @property
    def owned(self) -> bool:
        """The caller owns the bot (the answer is in the owner format)."""
        return self.event_mode is not None


class BotEvent(_Model):
    """One row of a fetch-mode bot's event log (`Event.get`)."""

    event_id: int = Field(alias="eventId")
    type: str
    date: str = ""
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("data", mode="before")
    @classmethod
    def _php_empty(cls, value: Any) -> Any:
        # PHP renders an empty map as [].
        return {} if value in ([], None) else value


class EventPage(_Model):
    """`Event.get`: the rows from `offset` up, the offset that confirms them, whether more wait.

    `next_offset` equals the given offset when nothing came back; `has_more` only says the page
    was full (docs/bitrix24-bots-v2.md "Fetch mode")."""

    events: list[BotEvent] = Field(default_factory=list)
    next_offset: int = Field(alias="nextOffset")
    has_more: bool = Field(default=False, alias="hasMore")


class SentMessage(_Model):
    """`Chat.Message.send`: the new message's id."""

    id: int
    uuid_map: dict[str, Any] = Field(default_factory=dict, alias="uuidMap")

    @field_validator("uuid_map", mode="before")
    @classmethod
    def _php_empty(cls, value: Any) -> Any:
        return {} if value in ([], None) else value


class BotCommand(_Model):
    """`Command.register` (`result.command`); `command` comes back with a leading `/`."""

    id: int
    bot_id: int = Field(alias="botId")
    command: str
    common: bool = False
    hidden: bool = False


class OfflineEvent(_Model):
    """One row of `event.offline.get` (docs/bitrix24-offline-events.md §1.2, §1.5)."""

    id: int = Field(validation_alias=AliasChoices("ID", "id"))
    event_name: str = Field(validation_alias=AliasChoices("EVENT_NAME", "event_name"))
    message_id: str = Field(validation_alias=AliasChoices("MESSAGE_ID", "message_id"))
    timestamp: str = Field(default="", validation_alias=AliasChoices("TIMESTAMP_X", "timestamp"))
    data: dict[str, Any] = Field(
        default_factory=dict, validation_alias=AliasChoices("EVENT_DATA", "data")
    )
    additional: dict[str, Any] = Field(
        default_factory=dict, validation_alias=AliasChoices("EVENT_ADDITIONAL", "additional")
    )

    @field_validator("data", "additional", mode="before")
    @classmethod
    def _php_empty(cls, value: Any) -> Any:
        return {} if value in ([], None, "") else value


class OfflineListRow(OfflineEvent):
    """One row of `event.offline.list`: a queue row with its state (who reserved it, error)."""

    process_id: str = Field(default="", validation_alias=AliasChoices("PROCESS_ID", "process_id"))
    error: int = Field(default=0, validation_alias=AliasChoices("ERROR", "error"))

    @field_validator("process_id", mode="before")
    @classmethod
    def _null_is_free(cls, value: Any) -> Any:
        return "" if value is None else value


class OfflineBatch(_Model):
    """`event.offline.get`: the rows and the process id that reserved them (None for a plain
    `clear=1` read, whose rows are already deleted)."""

    process_id: str | None = None
    events: list[OfflineEvent] = Field(default_factory=list)


class LineConfig(_Model):
    """`imopenlines.config.get`: the line's stored row, string values as the portal keeps them
    (docs/bitrix24-offline-events.md §3.1). Only the welcome-bot keys are typed; the rest stay
    as extra fields."""

    id: str = Field(validation_alias=AliasChoices("ID", "id"))
    line_name: str = Field(default="", validation_alias=AliasChoices("LINE_NAME", "line_name"))
    welcome_bot_enable: str = Field(default="N", alias="WELCOME_BOT_ENABLE")
    welcome_bot_join: str = Field(default="always", alias="WELCOME_BOT_JOIN")
    welcome_bot_id: str = Field(default="0", alias="WELCOME_BOT_ID")
    welcome_bot_time: str = Field(default="600", alias="WELCOME_BOT_TIME")
    welcome_bot_left: str = Field(default="queue", alias="WELCOME_BOT_LEFT")

    @field_validator(
        "id",
        "welcome_bot_enable",
        "welcome_bot_join",
        "welcome_bot_id",
        "welcome_bot_time",
        "welcome_bot_left",
        mode="before",
    )
    @classmethod
    def _string(cls, value: Any) -> Any:
        # The portal answers raw DB strings; a number here would make `!= str(bot_id)` lie.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def welcomes(self, bot_id: int) -> bool:
        """This bot is the line's enabled welcome bot."""
        return self.welcome_bot_enable == "Y" and self.welcome_bot_id == str(bot_id)

    def welcome(self) -> dict[str, str]:
        """The five welcome-bot keys as stored."""
        return {
            "WELCOME_BOT_ENABLE": self.welcome_bot_enable,
            "WELCOME_BOT_JOIN": self.welcome_bot_join,
            "WELCOME_BOT_ID": self.welcome_bot_id,
            "WELCOME_BOT_TIME": self.welcome_bot_time,
            "WELCOME_BOT_LEFT": self.welcome_bot_left,
        }
