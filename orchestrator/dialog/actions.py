"""The answerer seam's contract: what an answerer is asked (`AnswerRequest`) and the one action it
may answer with (`Action`), as validated data.

An answerer decides "what does the bot say or do now" for a client message the machine's fixed
rules do not settle (docs/answerers.md). The machine builds the request (pure: from the state),
an effect carries it to the answerer, and the answer comes back as an input; `parse_action` is
the one validator every answer passes, in the worker before it is stored and in the machine
before it is applied. `action_schema()` is the published JSON schema of an answer
(docs/answerer-action.schema.json is generated from it, and a test keeps the two equal).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

__all__ = [
    "ACTIONS",
    "REQUEST_VERSION",
    "Action",
    "ActionButton",
    "AnswerRequest",
    "Ask",
    "DialogView",
    "Finish",
    "Handoff",
    "Reply",
    "Turn",
    "action_schema",
    "parse_action",
    "request_schema",
]

REQUEST_VERSION = 1
ACTIONS = ("reply", "ask", "handoff", "finish")
FieldName = Literal["name", "email", "phone"]
# What a chat shows: the answer's words go to a client as they are, so they are bounded and
# stripped of control characters (a newline and a tab stay).
TEXT_MAX = 4000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = _CONTROL.sub("", value).strip()
    return value or None


def _words(value: str) -> str:
    cleaned = _clean(value)
    if cleaned is None:
        raise ValueError("needs words")
    return cleaned


Words = Annotated[str, Field(min_length=1, max_length=TEXT_MAX), AfterValidator(_words)]
OptionalWords = Annotated[
    str | None, Field(default=None, max_length=TEXT_MAX), AfterValidator(_clean)
]


class ActionButton(_Strict):
    """A button under the bot's message: pressed (or its label typed), it comes back to the
    answerer as the client's message `value`."""

    text: Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_words)]
    value: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_words)]


ButtonList = Annotated[list[ActionButton], Field(default_factory=list, max_length=10)]
Language = Annotated[str | None, Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]


class Reply(_Strict):
    """Say `text` to the client; a field being asked stays asked."""

    action: Literal["reply"]
    text: Words
    buttons: ButtonList
    language: Language = None  # the client's language, if the answerer tells it


class Ask(_Strict):
    """Ask the client for one of the line's fields (`text`, or the scenario's prompt); the next
    message that matches the field's pattern fills it."""

    action: Literal["ask"]
    field: FieldName
    text: OptionalWords = None
    buttons: ButtonList
    language: Language = None


class Handoff(_Strict):
    """Hand the dialog to people: `reason` goes into the operator's note and our history,
    `note` (for the operators only) after it, `text` to the client instead of the line's
    handoff message."""

    action: Literal["handoff"]
    reason: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\- ]+$")
    note: OptionalWords = None
    text: OptionalWords = None
    language: Language = None


class Finish(_Strict):
    """Say `text` (if any) and close the session: the client's matter is settled."""

    action: Literal["finish"]
    text: OptionalWords = None
    language: Language = None


Action = Annotated[Reply | Ask | Handoff | Finish, Field(discriminator="action")]
_ACTION: TypeAdapter[Reply | Ask | Handoff | Finish] = TypeAdapter(Action)


class Turn(_Strict):
    """One line of the recent conversation the answerer sees."""

    role: Literal["client", "bot"]
    text: str
    at: float


class DialogView(_Strict):
    """What the answerer is told about the dialog."""

    member_id: str
    chat_id: int
    session_id: int | None
    line_id: int | None
    language: str
    asking: FieldName | None  # the field the bot asked for last and has not got
    collected: dict[str, str | None]
    skipped: list[str]
    answers: int  # answers given in this session before this one
    first_message: bool  # the message opened the session (a question, not an answer)


class AnswerRequest(_Strict):
    """The input of one answer: the client's words, the dialog, and what may be answered."""

    version: Literal[1] = 1  # REQUEST_VERSION
    turn: int  # the id of this question within the dialog; an answer for another is ignored
    message: str
    dialog: DialogView
    recent: list[Turn]
    fields: list[FieldName]  # the fields this line collects (what `ask` may name)
    actions: list[str] = Field(default_factory=lambda: list(ACTIONS))
    languages: list[str] = Field(default_factory=list)  # what `language` may name


def parse_action(
    raw: Any, request: AnswerRequest | dict[str, Any]
) -> Reply | Ask | Handoff | Finish:
    """The answer as a validated action allowed for `request`; ValueError says what is wrong
    (briefly: it is logged and counted, never shown to the client)."""
    if isinstance(raw, str | bytes):
        try:
            action = _ACTION.validate_json(raw)
        except ValidationError as exc:
            raise ValueError(_first_error(exc)) from None
    else:
        try:
            action = _ACTION.validate_python(raw)
        except ValidationError as exc:
            raise ValueError(_first_error(exc)) from None
    asked = request if isinstance(request, AnswerRequest) else AnswerRequest.model_validate(request)
    if action.action not in asked.actions:
        raise ValueError(f"action {action.action!r} is not allowed here")
    if action.language is not None and action.language not in asked.languages:
        raise ValueError(f"this line does not speak {action.language!r}")
    if isinstance(action, Ask):
        if action.field not in asked.fields:
            raise ValueError(f"this line does not collect {action.field!r}")
        if asked.dialog.collected.get(action.field):
            raise ValueError(f"{action.field!r} is collected already")
    return action


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "answer"
    return f"{where}: {error['msg']}"


def request_schema() -> dict[str, Any]:
    """The JSON schema of a request (published as docs/answerer-request.schema.json)."""
    schema = AnswerRequest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Open Lines orchestrator answerer request"
    return schema


def action_schema() -> dict[str, Any]:
    """The JSON schema an answer must satisfy (published as docs/answerer-action.schema.json)."""
    schema = _ACTION.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Open Lines orchestrator answerer action"
    return schema
