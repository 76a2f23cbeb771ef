"""Scenario config: what the bot says and does, per Open Line, as validated models.

Reading a scenario file (the per-line overrides, the translations, the errors that name the bad
key) is dialog/scenario_file.py's business. Unknown keys are refused everywhere, so a typo fails
at load time with its path, not at 3 a.m.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.dialog.answerer_config import AnswererConfig

__all__ = [
    "LANGUAGE",
    "Buttons",
    "Collect",
    "Confirm",
    "Evaluation",
    "FaqEntry",
    "FieldSpec",
    "Greeting",
    "Handoff",
    "Hours",
    "Route",
    "Scenario",
    "ScenarioSet",
    "Target",
    "Timers",
]

FieldName = Literal["name", "email", "phone"]
LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
Via = Literal["imopenlines.bot.session.message.send", "imbot.message.add"]
Owner = Literal["orchestrator", "line"]
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_INTERVAL = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return pattern


def _template(value: str) -> str:
    """A message template must format with any of our placeholders (unknown ones read '-')."""
    from string import Formatter

    try:
        fields = [name for _, name, _, _ in Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise ValueError(f"bad template {value!r}: {exc}") from exc
    for name in fields:
        if not name.isidentifier():
            raise ValueError(f"bad placeholder {{{name}}} in {value!r}: use plain names")
    return value


class Greeting(_Strict):
    """The first thing the bot says in a new session."""

    text: str = Field(min_length=1)
    via: Via = "imopenlines.bot.session.message.send"


class FaqEntry(_Strict):
    """An answer given when a client message contains one of the keywords."""

    keywords: list[str] = Field(min_length=1)
    answer: str = Field(min_length=1)
    # its label in the topic menu (`buttons.faq_menu`); None: not offered as a button
    button: str | None = Field(default=None, min_length=1, max_length=40)

    @field_validator("keywords")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [k.strip().lower() for k in value if k.strip()]


class FieldSpec(_Strict):
    """One piece of contact data the bot asks for, with its validation."""

    name: FieldName
    prompt: str = Field(min_length=1)
    pattern: str
    invalid: str = Field(min_length=1, description="said when the answer does not match")

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        return _compiles(value)

    def accepts(self, text: str) -> bool:
        """Whether the client's answer is a valid value for this field."""
        return re.fullmatch(self.pattern, text.strip()) is not None


class Confirm(_Strict):
    """Before the handoff, the collected data is shown with Yes/No buttons; No asks it again."""

    text: str = "Is this right? {name}, {email}, {phone}"
    yes: str = Field(default="Yes", min_length=1, max_length=40)
    no: str = Field(default="No, let me correct it", min_length=1, max_length=40)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return _template(value)


class Collect(_Strict):
    """Data collection: the fields in the order asked, and how often to ask again."""

    fields: list[FieldSpec] = Field(default_factory=list)
    max_reasks: int = Field(default=2, ge=0, le=10)
    thanks: str = "Thank you!"
    confirm: Confirm | None = None

    @model_validator(mode="after")
    def _unique(self) -> Collect:
        names = [f.name for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError("each field may be asked once")
        return self

    def spec(self, name: str) -> FieldSpec | None:
        """The spec of a field by name."""
        return next((f for f in self.fields if f.name == name), None)


class Target(_Strict):
    """Where a handoff goes: the line's own queue (neither id), a user, or another line."""

    user_id: int | None = Field(default=None, gt=0)
    queue_id: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> Target:
        if self.user_id is not None and self.queue_id is not None:
            raise ValueError("give user_id or queue_id, not both")
        return self


class Route(_Strict):
    """A routing rule: a keyword in the client's words, or a collected field matching a regex."""

    keywords: list[str] = Field(default_factory=list)
    field: FieldName | None = None
    pattern: str | None = None
    target: Target

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        return value if value is None else _compiles(value)

    @model_validator(mode="after")
    def _has_condition(self) -> Route:
        if not self.keywords and not (self.field and self.pattern):
            raise ValueError("a route needs keywords, or field and pattern")
        return self


class Handoff(_Strict):
    """When and where the bot hands the dialog to humans, and what it tells them."""

    keywords: list[str] = Field(default_factory=lambda: ["operator", "human"])
    # The portal itself ends the bot session when the client types "0" (docs/bitrix24.md §4.5):
    # we then expect the queue and must not call imopenlines.bot.session.operator again.
    client_zero: bool = True
    max_unanswered: int = Field(default=2, ge=1)
    on_collected: bool = True
    on_bot_failure: bool = True
    target: Target = Field(default_factory=Target)
    routes: list[Route] = Field(default_factory=list)
    leave: bool = True
    message: str = "Connecting you with an operator."
    note: str = "Bot handoff ({reason}). Client: {name} / {email} / {phone}. Last: {last_message}"

    @field_validator("note")
    @classmethod
    def _note(cls, value: str) -> str:
        return _template(value)


class Hours(_Strict):
    """Working hours: a timezone and a weekly schedule of HH:MM-HH:MM intervals."""

    timezone: str = "UTC"
    week: dict[str, list[str]] = Field(default_factory=dict)
    outside_message: str = "We are closed now. Leave your contact details and we will call back."
    goodbye: str = "Thank you, we will contact you during working hours."

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("week")
    @classmethod
    def _schedule(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, intervals in value.items():
            if day not in _DAYS:
                raise ValueError(f"unknown day {day!r} (use {', '.join(_DAYS)})")
            for interval in intervals:
                if not _INTERVAL.match(interval) or interval[:5] >= interval[6:]:
                    raise ValueError(f"bad interval {interval!r} (HH:MM-HH:MM, start < end)")
        return value

    def is_open(self, at: float) -> bool:
        """Whether `at` (Unix seconds) falls inside the schedule; an empty week is always open."""
        if not self.week:
            return True
        local = datetime.fromtimestamp(at, ZoneInfo(self.timezone))
        now = local.time()
        for interval in self.week.get(_DAYS[local.weekday()], []):
            start, end = interval.split("-")
            if time.fromisoformat(start) <= now and (
                end == "24:00" or now < time.fromisoformat(end)
            ):
                return True
        return False


class Timers(_Strict):
    """Timeouts: a silent client ends the bot session; an unaccepted handoff goes elsewhere."""

    client_silence_s: int | None = Field(default=600, gt=0)
    silence_message: str = "Closing the conversation for now. Write again any time."
    accept_timeout_s: int | None = Field(default=300, gt=0)
    accept_fallback: Target | None = None
    # how often an open dialog asks the portal whether its session is still open (a lost
    # OnSessionFinish push is never sent again); None: the worker's RECONCILE_INTERVAL_S
    reconcile_s: int | None = Field(default=None, gt=0)


class Evaluation(_Strict):
    """After the close: who rates and who creates the lead, and the rating policy."""

    vote_owner: Owner = "orchestrator"
    lead_owner: Owner = "orchestrator"
    like_rating: int = Field(default=5, ge=1, le=5)
    dislike_rating: int = Field(default=2, ge=1, le=5)
    no_vote_rating: int = Field(default=4, ge=1, le=5)
    first_response_target_s: int = Field(default=60, gt=0)
    handling_target_s: int = Field(default=900, gt=0)
    penalty_per_missed_target: int = Field(default=1, ge=0, le=4)
    lead_title: str = "Open Lines: {name}"

    @field_validator("lead_title")
    @classmethod
    def _title(cls, value: str) -> str:
        return _template(value)


class Buttons(_Strict):
    """Keyboard buttons under the bot's messages (a v2 bot's are pressed once; a v1 bot's send
    their label as the client's message, which a client may also type)."""

    # a "talk to a person" button under the fallback and the topic menu; None: none
    operator: str | None = Field(default=None, min_length=1, max_length=40)
    # said after the greeting with the FAQ entries that have a `button`; None: no menu
    faq_menu: str | None = Field(default=None, min_length=1)


class Scenario(_Strict):
    """Everything the bot does on one line."""

    greeting: Greeting
    faq: list[FaqEntry] = Field(default_factory=list)
    fallback: str = "Sorry, I did not understand. Type 'operator' to talk to a person."
    collect: Collect = Field(default_factory=Collect)
    handoff: Handoff = Field(default_factory=Handoff)
    hours: Hours = Field(default_factory=Hours)
    timers: Timers = Field(default_factory=Timers)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    # who decides the replies to what the rules above do not settle (docs/answerers.md)
    answerer: AnswererConfig = Field(default_factory=AnswererConfig)
    buttons: Buttons = Field(default_factory=Buttons)
    # the language of the texts above; `translations` give them in others (dialog/scenario_file.py)
    language: str = Field(default="en", pattern=LANGUAGE)
    translations: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # every language the line speaks (filled in when the file is read)
    languages: list[str] = Field(default_factory=list)


class ScenarioSet(_Strict):
    """The default scenario and the merged per-line ones."""

    default: Scenario
    lines: dict[int, Scenario] = Field(default_factory=dict)
    # the scenarios in their other languages: line id ("default" for the default) -> language
    variants: dict[str, dict[str, Scenario]] = Field(default_factory=dict)

    def for_line(self, line_id: int | None, language: str | None = None) -> Scenario:
        """The scenario of a line (the default when the line has no override or is unknown), in
        `language` where the line has it, else in its own."""
        key = str(line_id) if line_id is not None and line_id in self.lines else "default"
        base = self.default if key == "default" else self.lines[line_id]  # type: ignore[index]
        if language is None or language == base.language:
            return base
        return self.variants.get(key, {}).get(language, base)

    def with_reconcile(self, interval_s: int) -> ScenarioSet:
        """The set with `timers.reconcile_s` = `interval_s` wherever a scenario leaves it unset
        (0 leaves it unset: no reconciliation but where a scenario asks for it)."""
        if interval_s <= 0:
            return self

        def filled(scenario: Scenario) -> Scenario:
            if scenario.timers.reconcile_s is not None:
                return scenario
            timers = scenario.timers.model_copy(update={"reconcile_s": interval_s})
            return scenario.model_copy(update={"timers": timers})

        return self.model_copy(
            update={
                "default": filled(self.default),
                "lines": {k: filled(v) for k, v in self.lines.items()},
                "variants": {
                    k: {lang: filled(v) for lang, v in by_lang.items()}
                    for k, by_lang in self.variants.items()
                },
            }
        )
