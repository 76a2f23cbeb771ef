"""What the dialog machine reacts to: domain inputs built from portal events, timers and the
results of our own effects, as frozen data, and their stored form. Building them from Bitrix24's
wire events is events/convert.py's business: this package knows no wire model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "INPUT_TYPES",
    "Answered",
    "BotJoined",
    "ButtonPressed",
    "ClientMessage",
    "EffectFailed",
    "Input",
    "LeadCreated",
    "MessageDeleted",
    "MessageUpdated",
    "OperatorMessage",
    "SessionChecked",
    "SessionFinished",
    "SessionStarted",
    "TimerFired",
    "TranscriptFetched",
    "VoteSaved",
    "input_from_record",
    "input_record",
]


@dataclass(frozen=True, kw_only=True)
class _Input:
    kind: ClassVar[str]
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class _FromPortal(_Input):
    """Inputs built from portal events name their dialog, so a first one can create it."""

    member_id: str = ""
    chat_id: int = 0
    session_id: int | None = None
    line_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class ClientMessage(_FromPortal):
    """The client wrote in the Open Lines chat."""

    kind: ClassVar[str] = "client_message"
    text: str
    message_id: int
    user_id: int = 0
    user_code: str = ""
    bot_id: int = 0  # our bot the event was delivered for (0 when unknown)


@dataclass(frozen=True, kw_only=True)
class ButtonPressed(_FromPortal):
    """The client pressed a button of one of our bot's messages (`message_id`); `value` is what
    the button means (the value our keyboard gave it)."""

    kind: ClassVar[str] = "button_pressed"
    value: str
    message_id: int
    user_id: int = 0


@dataclass(frozen=True, kw_only=True)
class OperatorMessage(_FromPortal):
    """A human (employee) wrote in the chat."""

    kind: ClassVar[str] = "operator_message"
    text: str
    message_id: int
    user_id: int


@dataclass(frozen=True, kw_only=True)
class BotJoined(_FromPortal):
    """Our bot was added to the chat (as the line's welcome bot or a transfer target)."""

    kind: ClassVar[str] = "bot_joined"
    bot_id: int = 0
    user_code: str = ""


@dataclass(frozen=True, kw_only=True)
class SessionStarted(_FromPortal):
    """The portal opened a session in the chat."""

    kind: ClassVar[str] = "session_started"


@dataclass(frozen=True, kw_only=True)
class SessionFinished(_FromPortal):
    """The portal closed the session (status 60; not the vote wait)."""

    kind: ClassVar[str] = "session_finished"


@dataclass(frozen=True, kw_only=True)
class MessageUpdated(_FromPortal):
    """A message in the chat was edited."""

    kind: ClassVar[str] = "message_updated"
    message_id: int
    text: str = ""


@dataclass(frozen=True, kw_only=True)
class MessageDeleted(_FromPortal):
    """A message in the chat was deleted."""

    kind: ClassVar[str] = "message_deleted"
    message_id: int


@dataclass(frozen=True, kw_only=True)
class TimerFired(_Input):
    """One of our timers came due; ignored unless `token` is the dialog's current one."""

    kind: ClassVar[str] = "timer_fired"
    name: str
    token: str


@dataclass(frozen=True, kw_only=True)
class _Result(_Input):
    """Results of our effects name the session they were for; others' are stale."""

    session_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class TranscriptFetched(_Result):
    """The session's history: what the evaluation needs that the bot could not see."""

    kind: ClassVar[str] = "transcript_fetched"
    operator_id: int | None = None
    operator_accepted_at: float | None = None
    first_operator_response_at: float | None = None
    closed_at: float | None = None
    client_vote: int | None = None  # the session's VOTE: 5 like, 1 dislike, None/0 none
    message_count: int = 0


@dataclass(frozen=True, kw_only=True)
class VoteSaved(_Result):
    """imopenlines.session.head.vote succeeded."""

    kind: ClassVar[str] = "vote_saved"


@dataclass(frozen=True, kw_only=True)
class LeadCreated(_Result):
    """The session's lead exists (found or created); lead_id None when the portal gave none."""

    kind: ClassVar[str] = "lead_created"
    lead_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class EffectFailed(_Result):
    """An effect failed for good after the runner's retries (error_code: WRONG_CHAT, ...)."""

    kind: ClassVar[str] = "effect_failed"
    effect_kind: str
    error_code: str = ""
    effect_id: str = ""


@dataclass(frozen=True, kw_only=True)
class SessionChecked(_Result):
    """The portal's answer to CheckSession: the chat's current session (ENTITY_DATA_1 position
    5; 0 when the chat has none open), asked about `session_id` by effect `effect_id`."""

    kind: ClassVar[str] = "session_checked"
    current_session_id: int = 0
    effect_id: str = ""


@dataclass(frozen=True, kw_only=True)
class Answered(_Result):
    """The line's answerer on question `turn`: an action (validated, dialog/actions.py), or
    None and why not (timeout, error, invalid, crashed) so the configured fallback answers."""

    kind: ClassVar[str] = "answered"
    turn: int
    action: dict[str, Any] | None = None
    failure: str = ""
    effect_id: str = ""


Input = (
    ClientMessage
    | OperatorMessage
    | BotJoined
    | SessionStarted
    | SessionFinished
    | MessageUpdated
    | MessageDeleted
    | TimerFired
    | TranscriptFetched
    | VoteSaved
    | LeadCreated
    | EffectFailed
    | SessionChecked
    | Answered
    | ButtonPressed
)

INPUT_TYPES: dict[str, type[Input]] = {
    cls.kind: cls
    for cls in (
        ClientMessage,
        OperatorMessage,
        BotJoined,
        SessionStarted,
        SessionFinished,
        MessageUpdated,
        MessageDeleted,
        TimerFired,
        TranscriptFetched,
        VoteSaved,
        LeadCreated,
        EffectFailed,
        SessionChecked,
        Answered,
        ButtonPressed,
    )
}


def input_record(inp: Input) -> tuple[str, dict[str, Any]]:
    """The stored form of an input: (kind, JSON-able payload)."""
    return inp.kind, dataclasses.asdict(inp)


def input_from_record(kind: str, payload: dict[str, Any]) -> Input:
    """Rebuild an input from its stored form; ValueError for an unknown kind or bad fields."""
    cls = INPUT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown input kind {kind!r}")
    try:
        return cls(**payload)
    except TypeError as exc:
        raise ValueError(f"bad {kind} payload: {exc}") from exc
