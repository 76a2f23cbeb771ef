"""Scenario config: what the bot says and does, per Open Line, validated from YAML.

A scenario file has a `default:` scenario and optional `lines: {<line_id>: {...}}` whose keys
override the default's (merged deeply: a line names only what differs; lists are replaced whole).
Unknown keys are refused everywhere, so a typo fails at load time with its path, not at 3 a.m.
`load_scenario(None)` loads the shipped `scenarios/default.yaml`.
"""

from __future__ import annotations

import difflib
import re
import typing
from datetime import datetime, time
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.dialog.answerer_config import AnswererConfig
from orchestrator.errors import ScenarioError

__all__ = [
    "Collect",
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
    "load_scenario",
    "parse_scenario",
]

FieldName = Literal["name", "email", "phone"]
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


class Collect(_Strict):
    """Data collection: the fields in the order asked, and how often to ask again."""

    fields: list[FieldSpec] = Field(default_factory=list)
    max_reasks: int = Field(default=2, ge=0, le=10)
    thanks: str = "Thank you!"

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
    language: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


class ScenarioSet(_Strict):
    """The default scenario and the merged per-line ones."""

    default: Scenario
    lines: dict[int, Scenario] = Field(default_factory=dict)

    def for_line(self, line_id: int | None) -> Scenario:
        """The scenario of a line (the default when the line has no override or is unknown)."""
        if line_id is None:
            return self.default
        return self.lines.get(line_id, self.default)

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
            }
        )


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_scenario(document: Any, source: str = "<scenario>") -> ScenarioSet:
    """Validate a loaded YAML document into a ScenarioSet; ScenarioError names the bad path."""
    if not isinstance(document, dict) or "default" not in document:
        raise ScenarioError(f"{source}: the top level must be a mapping with a 'default' key")
    unknown = set(document) - {"default", "lines"}
    if unknown:
        raise ScenarioError(f"{source}: unknown top-level keys {sorted(unknown)}")
    default, lines = document["default"], document.get("lines") or {}
    if not isinstance(default, dict) or not isinstance(lines, dict):
        raise ScenarioError(f"{source}: 'default' and 'lines' must be mappings")
    merged: dict[str, Any] = {}
    for line_id, override in lines.items():
        if not isinstance(override, dict):
            raise ScenarioError(f"{source}: lines.{line_id} must be a mapping")
        merged[str(line_id)] = _merge(default, override)
    try:
        return ScenarioSet.model_validate({"default": default, "lines": merged})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # a misspelt key also makes its right spelling "missing": name the misspelling first
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        where = ".".join(str(part) for part in first["loc"])
        raise ScenarioError(f"{source}: {where}: {first['msg']}{_did_you_mean(first)}") from exc


def _did_you_mean(error: Any) -> str:
    """For a key no model knows, the nearest one that some scenario model does."""
    if error["type"] != "extra_forbidden" or not error["loc"]:
        return ""
    known = _keys_of(ScenarioSet)
    near = difflib.get_close_matches(str(error["loc"][-1]), sorted(known), n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def _keys_of(model: type[BaseModel]) -> set[str]:
    """Every key of `model` and of the models nested in its fields."""
    keys, todo, seen = set(), [model], set()
    while todo:
        current = todo.pop()
        seen.add(current)
        for name, info in current.model_fields.items():
            keys.add(name)
            nested = [info.annotation, *typing.get_args(info.annotation)]
            for inner in (a for t in nested for a in (t, *typing.get_args(t))):
                if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in seen:
                    todo.append(inner)
    return keys


def load_scenario(path: str | Path | None = None) -> ScenarioSet:
    """Load and validate a scenario file; None loads the shipped default."""
    try:
        if path is None:
            text = (
                resources.files("orchestrator.dialog")
                .joinpath("scenarios/default.yaml")
                .read_text(encoding="utf-8")
            )
            source = "scenarios/default.yaml"
        else:
            text = Path(path).read_text(encoding="utf-8")
            source = str(path)
        document = yaml.safe_load(text)
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path or 'default scenario'}: not valid YAML: {exc}") from exc
    return parse_scenario(document, source)
