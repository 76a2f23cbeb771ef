"""What the dialog machine asks the world to do, as frozen data (the runner does the I/O).

Every effect carries a deterministic `EffectId` (member_id, chat_id, session_id, transition seq,
index in the transition), so replaying a transition after a crash yields the same ids and the
runner's done-marks make each effect happen once. The pipeline keeps the id as its string form
(`str(effect_id)`, the effect's key in Redis); `EffectId.parse` is the one reader of that form.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

__all__ = [
    "EFFECT_TYPES",
    "AskAnswerer",
    "CancelTimer",
    "CheckSession",
    "CreateLead",
    "Effect",
    "EffectId",
    "FetchTranscript",
    "FinishBotSession",
    "HandToQueue",
    "ScheduleTimer",
    "SendMessage",
    "Transfer",
    "effect_from_record",
    "effect_payload",
    "with_ids",
]

# session: imopenlines.bot.session.message.send (NAME=DEFAULT), a system message from the line;
# bot: imbot.message.add to the client; note: imbot.message.add with SKIP_CONNECTOR=Y, which the
# operators see in the chat and the client's channel never receives.
Via = Literal["session", "bot", "note"]


@dataclass(frozen=True, slots=True)
class EffectId:
    """Which effect: the `index`-th of transition `seq` of a dialog, minted in a session."""

    member_id: str
    chat_id: int
    session_id: int | None
    seq: int
    index: int

    def __str__(self) -> str:
        return f"{self.member_id}:{self.chat_id}:{self.session_id or 0}:{self.seq}:{self.index}"

    @classmethod
    def parse(cls, text: str) -> EffectId:
        """The id a string form names; ValueError for a string that is not one (the member id
        may hold anything but the four last fields are numbers)."""
        parts = text.rsplit(":", 4)
        if len(parts) != 5 or not all(p.lstrip("-").isdigit() for p in parts[1:]):
            raise ValueError(f"{text!r} is not an effect id")
        member_id, chat, session, seq, index = parts
        return cls(member_id, int(chat), int(session) or None, int(seq), int(index))

    @property
    def dialog_key(self) -> str:
        """The dialog's key in the pipeline (its chat id)."""
        return str(self.chat_id)

    @property
    def order(self) -> tuple[int, int]:
        """Commit order: seqs grow over the dialog's whole life, indexes within a transition."""
        return self.seq, self.index


@dataclass(frozen=True, kw_only=True)
class _Effect:
    kind: ClassVar[str]
    effect_id: EffectId | None = None


@dataclass(frozen=True, kw_only=True)
class SendMessage(_Effect):
    """Post a text into the chat."""

    kind: ClassVar[str] = "SendMessage"
    chat_id: int
    text: str
    via: Via = "session"
    # a keyboard under a bot message: [{"text": label, "value": what a press means}]
    buttons: list[dict[str, str]] = field(default_factory=list)

    @property
    def voice(self) -> str:
        """Who the chat shows as the author: `session` posts as the line (author 0, a system
        message); `bot` and `note` as the bot user."""
        return "system" if self.via == "session" else "bot"


@dataclass(frozen=True, kw_only=True)
class HandToQueue(_Effect):
    """imopenlines.bot.session.operator: end the bot's part, the line's queue distributes."""

    kind: ClassVar[str] = "HandToQueue"
    chat_id: int


@dataclass(frozen=True, kw_only=True)
class Transfer(_Effect):
    """imopenlines.bot.session.transfer to a user or another line's queue."""

    kind: ClassVar[str] = "Transfer"
    chat_id: int
    user_id: int | None = None
    queue_id: int | None = None
    leave: bool = True


@dataclass(frozen=True, kw_only=True)
class FinishBotSession(_Effect):
    """imopenlines.bot.session.finish: the bot closes the session."""

    kind: ClassVar[str] = "FinishBotSession"
    chat_id: int


@dataclass(frozen=True, kw_only=True)
class FetchTranscript(_Effect):
    """imopenlines.session.history.get; comes back as TranscriptFetched (or EffectFailed).
    Without a session id it reads the chat's newest session, and the answer names it."""

    kind: ClassVar[str] = "FetchTranscript"
    session_id: int | None
    chat_id: int


@dataclass(frozen=True, kw_only=True)
class SaveHeadVote(_Effect):
    """imopenlines.session.head.vote with both RATING and COMMENT (a lone rating wipes it)."""

    kind: ClassVar[str] = "SaveHeadVote"
    session_id: int
    rating: int
    comment: str


@dataclass(frozen=True, kw_only=True)
class CreateLead(_Effect):
    """One lead per session: look up by ORIGINATOR_ID/ORIGIN_ID first, then create."""

    kind: ClassVar[str] = "CreateLead"
    session_id: int | None
    chat_id: int
    fields: dict[str, Any] = field(default_factory=dict)
    originator_id: str = "openlines-orchestrator"
    origin_id: str = ""


@dataclass(frozen=True, kw_only=True)
class ScheduleTimer(_Effect):
    """Fire TimerFired(name, token) into this dialog after `delay_s`."""

    kind: ClassVar[str] = "ScheduleTimer"
    name: str
    delay_s: float
    token: str


@dataclass(frozen=True, kw_only=True)
class CancelTimer(_Effect):
    """Forget a timer; a late firing is ignored anyway (its token no longer matches)."""

    kind: ClassVar[str] = "CancelTimer"
    name: str


@dataclass(frozen=True, kw_only=True)
class CheckSession(_Effect):
    """imopenlines.dialog.get: is `session_id` still the chat's session (ENTITY_DATA_1 position
    5)? Comes back as SessionChecked (or EffectFailed); see dialog/reconcile.py."""

    kind: ClassVar[str] = "CheckSession"
    chat_id: int
    session_id: int | None


@dataclass(frozen=True, kw_only=True)
class AskAnswerer(_Effect):
    """Ask the line's answerer what to do about a client message (dialog/actions.py's request);
    comes back as Answered, with a failure instead of an action when it could not answer."""

    kind: ClassVar[str] = "AskAnswerer"
    chat_id: int
    line_id: int | None
    turn: int
    request: dict[str, Any] = field(default_factory=dict)


Effect = (
    SendMessage
    | HandToQueue
    | Transfer
    | FinishBotSession
    | FetchTranscript
    | SaveHeadVote
    | CreateLead
    | ScheduleTimer
    | CancelTimer
    | CheckSession
    | AskAnswerer
)

EFFECT_TYPES: dict[str, type[Effect]] = {
    cls.kind: cls
    for cls in (
        SendMessage,
        HandToQueue,
        Transfer,
        FinishBotSession,
        FetchTranscript,
        SaveHeadVote,
        CreateLead,
        ScheduleTimer,
        CancelTimer,
        CheckSession,
        AskAnswerer,
    )
}


def with_ids(
    effects: list[Effect], member_id: str, chat_id: int, session_id: int | None, seq: int
) -> list[Effect]:
    """Stamp each effect with its deterministic id."""
    return [
        dataclasses.replace(e, effect_id=EffectId(member_id, chat_id, session_id, seq, i))
        for i, e in enumerate(effects)
    ]


def effect_payload(effect: Effect) -> dict[str, Any]:
    """The JSON-able fields of an effect (without its id and kind)."""
    data = dataclasses.asdict(effect)
    data.pop("effect_id")
    if isinstance(effect, SendMessage) and not effect.buttons:
        del data["buttons"]  # a message without buttons is stored as before they existed
    return data


def effect_from_record(
    kind: str, payload: dict[str, Any], effect_id: EffectId | None = None
) -> Effect:
    """Rebuild an effect from its kind and payload (the runner's stored form)."""
    try:
        cls = EFFECT_TYPES[kind]
    except KeyError:
        raise ValueError(f"unknown effect kind {kind!r}") from None
    return cls(effect_id=effect_id, **payload)
