"""pydantic models of method results; ids accept int or numeric strings (raw DB values)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from orchestrator.bitrix.envelope import Envelope

T = TypeVar("T")


class _Model(BaseModel):
    # Lax mode turns "1763" into 1763; unknown keys are kept, the portal adds fields over time.
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


def _yn(value: Any) -> bool:
    if isinstance(value, str):
        return value.upper() in {"Y", "1", "TRUE"}
    return bool(value)


class SessionOpenResult(_Model):
    """imopenlines.session.open: the LINES chat of a USER_CODE."""

    chat_id: int = Field(validation_alias=AliasChoices("chatId", "chat_id", "CHAT_ID"))


class Dialog(_Model):
    """imopenlines.dialog.get: the messenger's chat object (snake_case)."""

    id: int
    dialog_id: str = ""
    name: str = ""
    owner: int = 0
    type: str = ""
    entity_type: str = ""
    entity_id: str = ""
    entity_data_1: str | None = None
    message_count: int = 0

    @property
    def lines_session_id(self) -> int:
        """The chat's current session: position 5 of ENTITY_DATA_1 (LINES_SESSION), 0 when it
        has none open (`Chat::close` writes 0 there, a new session its own id; §4.2)."""
        parts = (self.entity_data_1 or "").split("|")
        raw = parts[5] if len(parts) > 5 else ""
        return int(raw) if raw.strip().isdigit() else 0


class HistoryMessage(_Model):
    """One message of imopenlines.session.history.get (nested keys lower-case, no underscores)."""

    id: int
    chat_id: int = Field(validation_alias=AliasChoices("chatid", "chatId", "chat_id"))
    sender_id: int = Field(default=0, validation_alias=AliasChoices("senderid", "senderId"))
    date: str = ""
    text: str = ""
    # CIMMessageParam values, e.g. the close message's IMOL_VOTE_SID / IMOL_VOTE_USER
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params", mode="before")
    @classmethod
    def _php_empty(cls, value: Any) -> Any:
        # PHP renders an empty map as []; a missing value as null.
        return {} if value in ([], None) else value


class SessionHistory(_Model):
    """imopenlines.session.history.get."""

    chat_id: int = Field(validation_alias=AliasChoices("chatId", "chat_id"))
    session_id: int = Field(validation_alias=AliasChoices("sessionId", "session_id"))
    can_join: bool = Field(default=False, validation_alias=AliasChoices("canJoin", "can_join"))
    can_vote_head: bool = Field(
        default=False, validation_alias=AliasChoices("canVoteHead", "can_vote_head")
    )
    message: dict[int, HistoryMessage] = Field(default_factory=dict)
    users: dict[int, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("can_join", "can_vote_head", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> bool:
        return _yn(value)

    @field_validator("message", "users", mode="before")
    @classmethod
    def _php_empty(cls, value: Any) -> Any:
        # PHP renders an empty map as [].
        return {} if value == [] else value


class User(_Model):
    """A user of user.get / user.search (upper-case keys as the portal sends them)."""

    id: int = Field(validation_alias=AliasChoices("ID", "id"))
    active: bool = Field(default=True, validation_alias=AliasChoices("ACTIVE", "active"))
    name: str | None = Field(default=None, validation_alias=AliasChoices("NAME", "name"))
    last_name: str | None = Field(
        default=None, validation_alias=AliasChoices("LAST_NAME", "last_name")
    )
    email: str | None = Field(default=None, validation_alias=AliasChoices("EMAIL", "email"))
    is_online: bool = Field(default=False, validation_alias=AliasChoices("IS_ONLINE", "is_online"))
    user_type: str | None = Field(
        default=None, validation_alias=AliasChoices("USER_TYPE", "user_type")
    )

    @field_validator("active", "is_online", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> bool:
        return _yn(value)


class MultiValue(_Model):
    """One value of a CRM multifield (PHONE, EMAIL, ...): `{ID, TYPE_ID, VALUE, VALUE_TYPE}`."""

    id: int | None = Field(default=None, validation_alias=AliasChoices("ID", "id"))
    value: str = Field(default="", validation_alias=AliasChoices("VALUE", "value"))
    value_type: str | None = Field(
        default=None, validation_alias=AliasChoices("VALUE_TYPE", "value_type")
    )


class Lead(_Model):
    """A CRM lead of crm.lead.get / crm.lead.list (multifields only where asked for)."""

    id: int = Field(validation_alias=AliasChoices("ID", "id"))
    title: str | None = Field(default=None, validation_alias=AliasChoices("TITLE", "title"))
    name: str | None = Field(default=None, validation_alias=AliasChoices("NAME", "name"))
    status_id: str | None = Field(
        default=None, validation_alias=AliasChoices("STATUS_ID", "status_id")
    )
    source_id: str | None = Field(
        default=None, validation_alias=AliasChoices("SOURCE_ID", "source_id")
    )
    phone: list[MultiValue] = Field(default=[], validation_alias=AliasChoices("PHONE", "phone"))
    email: list[MultiValue] = Field(default=[], validation_alias=AliasChoices("EMAIL", "email"))


class EventBinding(_Model):
    """One row of event.get."""

    event: str
    handler: str | None = None
    auth_type: int = 0
    offline: int = 0


class Page(_Model, Generic[T]):
    """One page of a list method: the items plus the envelope's `total` and `next`."""

    items: list[T]
    total: int | None = None
    next: int | None = None


M = TypeVar("M", bound=BaseModel)


def page_of(env: Envelope, model: type[M]) -> Page[M]:
    """The page a list method's envelope holds (rows as a list, or as PHP's keyed array)."""
    rows = env.result.values() if isinstance(env.result, dict) else (env.result or [])
    return Page[M](items=[model.model_validate(r) for r in rows], total=env.total, next=env.next)
