"""The stored state of one dialog session: status, collected data, counters, timestamps, timers.

Its stored form (`to_json`) carries the version it is in; `from_json` is the one reader of that
form and brings an older one up to date first (dialog/migrations.py).
"""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.dialog.actions import Turn
from orchestrator.dialog.migrations import SCHEMA_VERSION, upgrade

__all__ = [
    "ACTIVE",
    "CLOSED",
    "HISTORY_LIMIT",
    "SEEN_LIMIT",
    "TERMINAL",
    "Collected",
    "DialogState",
    "DialogStatus",
    "HistoryEntry",
    "PendingAsk",
]

HISTORY_LIMIT = 50
SEEN_LIMIT = 100


class DialogStatus(StrEnum):
    """Where a dialog session is in its lifecycle."""

    BOT = "bot"  # the bot owns the dialog
    OPERATOR_QUEUE = "operator_queue"  # handed to a queue, no human has answered yet
    OPERATOR = "operator"  # a human took it
    FINISHED = "finished"  # the portal closed the session; post-close work under way
    VOTED = "voted"  # the rating step is done (saved, skipped, or owned by the line)
    LEAD = "lead"  # the lead step is done too: nothing left for this session
    FAILED = "failed"  # gave up (e.g. the lead could not be created after retries)


ACTIVE = frozenset({DialogStatus.BOT, DialogStatus.OPERATOR_QUEUE, DialogStatus.OPERATOR})
CLOSED = frozenset(
    {DialogStatus.FINISHED, DialogStatus.VOTED, DialogStatus.LEAD, DialogStatus.FAILED}
)
TERMINAL = frozenset({DialogStatus.LEAD, DialogStatus.FAILED})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Collected(_Model):
    """Contact data the bot collected."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None

    def get(self, field: str) -> str | None:
        """A field's value by name."""
        value = getattr(self, field, None)
        return value if isinstance(value, str) else None


class PendingAsk(_Model):
    """A client message the line's answerer was asked about and has not answered yet."""

    turn: int  # the transition seq that asked: the answer names it, others are stale
    text: str  # what the rules answer instead, if the answerer fails
    first: bool  # the message opened the session


class HistoryEntry(_Model):
    """One transition, for operators reading `orchestrator sessions`."""

    at: float
    input: str
    from_: str | None = Field(alias="from")
    to: str

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DialogState(_Model):
    """Everything the machine remembers about one dialog (one portal chat, current session)."""

    # the stored form's version: a state in memory is always the current one (from_json upgrades)
    schema_version: int = SCHEMA_VERSION
    member_id: str
    chat_id: int
    session_id: int | None = None
    line_id: int | None = None
    user_code: str = ""
    client_user_id: int | None = None
    bot_ids: list[int] = Field(default_factory=list)
    status: DialogStatus = DialogStatus.BOT
    seq: int = 0  # transitions applied (effect ids derive from it)
    epoch: int = 0  # earlier sessions seen in this chat
    session_seq: int = 0  # the seq of the transition that began this session

    # the bot conversation
    greeted: bool = False
    after_hours: bool = False
    asking: str | None = None
    data: Collected = Field(default_factory=Collected)
    skipped: list[str] = Field(default_factory=list)  # fields given up after max re-asks
    reasks: int = 0
    unanswered: int = 0
    last_message: str = ""
    handoff_reason: str | None = None
    closing: bool = False  # we asked the portal to finish the session

    # the line's answerer (dialog/answers.py): the question out, whether messages came in
    # meanwhile, the answers given this session, and the recent turns it is shown
    pending_ask: PendingAsk | None = None
    unasked: bool = False
    answers: int = 0
    recent: list[Turn] = Field(default_factory=list)
    # buttons offered this session (label -> what a press means), the collected data shown for
    # confirmation, the client message each field came from (an edit or deletion of it counts),
    # the dialog's language (None: the line's)
    offered: dict[str, str] = Field(default_factory=dict)
    confirming: bool = False
    confirmed: bool = False
    sources: dict[str, int] = Field(default_factory=dict)
    last_message_id: int | None = None
    language: str | None = None

    # the humans
    operator_id: int | None = None

    # timestamps (Unix seconds) for the evaluation
    started_at: float | None = None
    handed_off_at: float | None = None
    operator_accepted_at: float | None = None
    first_operator_response_at: float | None = None
    last_client_at: float | None = None
    closed_at: float | None = None

    # after the close
    client_vote: int | None = None  # 5 like, 1 dislike (the session's VOTE)
    transcript_pending: bool = False
    vote_pending: bool = False
    vote: int | None = None
    vote_saved: bool = False
    lead_pending: bool = False
    lead_done: bool = False
    lead_id: int | None = None
    failure: str | None = None

    timers: dict[str, str] = Field(default_factory=dict)  # name -> token of the live timer
    seen: list[int] = Field(default_factory=list)  # recent message ids (replays are no-ops)
    history: list[HistoryEntry] = Field(default_factory=list)

    @field_validator("schema_version")
    @classmethod
    def _current(cls, value: int) -> int:
        # only from_json may see another version: it migrates before it validates
        if value != SCHEMA_VERSION:
            raise ValueError(f"not the current schema_version {SCHEMA_VERSION}: use from_json")
        return value

    def to_json(self) -> str:
        """The stored form (at the current schema_version)."""
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> DialogState:
        """Parse a stored form of any version this code knows; StateSchemaError (TooNew for a
        newer version's state) before any field is read."""
        return cls.model_validate(upgrade(json.loads(raw)))
