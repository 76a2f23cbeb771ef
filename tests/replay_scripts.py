"""What the scripted dialogs (tests/replay_dialogs.py) are written with: a builder of one chat's
inputs, and the recorder that feeds them to the current machine as the handler does (the line's
scenario by `scenario_for`, `now` = the input's time, an IllegalTransition kept as a rejected
step with the state unchanged)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from harness.demo.portal_setup import demo_scenario
from orchestrator.dialog.effects import EffectId
from orchestrator.dialog.inputs import (
    Answered,
    BotJoined,
    ButtonPressed,
    ClientMessage,
    EffectFailed,
    Input,
    LeadCreated,
    MessageDeleted,
    MessageUpdated,
    OperatorMessage,
    SessionChecked,
    SessionFinished,
    SessionStarted,
    TimerFired,
    TranscriptFetched,
    VoteSaved,
)
from orchestrator.dialog.machine import scenario_for, transition
from orchestrator.dialog.migrations import SCHEMA_VERSION
from orchestrator.dialog.scenario import ScenarioSet
from orchestrator.dialog.state import DialogState
from orchestrator.errors import IllegalTransition
from tests.histories import APPLIED, NO_OP, REJECTED, effect_record, input_entry, stored_form

# The form DialogState.to_json writes, which the recorded states are in.
STATE_SCHEMA = SCHEMA_VERSION

MEMBER, SESSION, LINE, BOT, CLIENT, OPERATOR = "m1", 512, 1, 77, 4567, 12
T0 = 1_767_225_600.0  # Thursday 2026-01-01 00:00 UTC (01:00 in Berlin: line 2's desk is shut)


ANSWERER = {"kind": "http", "http": {"url": "http://answers.example/decide"}, "recent_turns": 4}


GERMAN = {
    "greeting": {"text": "Hallo! Ich bin der Support-Bot."},
    "collect": {
        "thanks": "Danke!",
        "fields": [
            {"prompt": "Wie darf ich Sie nennen?"},
            {"prompt": "Wie lautet Ihre E-Mail?", "invalid": "Das ist keine E-Mail-Adresse."},
            {"prompt": "Und Ihre Telefonnummer?"},
        ],
        "confirm": {"text": "Stimmt das? {name}, {email}, {phone}", "yes": "Ja", "no": "Nein"},
    },
    "handoff": {"message": "Ich verbinde Sie mit einem Mitarbeiter."},
    "buttons": {"operator": "Mit einem Menschen sprechen", "faq_menu": "Häufige Themen:"},
}


def scenario_document(name: str) -> dict[str, Any]:
    """The scenario file a history runs under: the shipped default or the demo's, as JSON."""
    if name in ("default", "answerer"):
        shipped = resources.files("orchestrator.dialog").joinpath("scenarios/default.yaml")
        document: dict[str, Any] = yaml.safe_load(shipped.read_text("utf-8"))
        if name == "answerer":  # the shipped rules, with a contact center's service deciding
            default = document["default"]
            default["answerer"] = ANSWERER
            default["buttons"] = {"operator": "Talk to a person", "faq_menu": "Popular topics:"}
            default["faq"][0]["button"] = "Prices"
            default["faq"][1]["button"] = "Delivery"
            default["collect"]["confirm"] = {"text": "Is this right? {name}, {email}, {phone}"}
            default["translations"] = {"de": GERMAN}
            document["lines"][3] = {"answerer": {**ANSWERER, "on_failure": "handoff"}}
            document["lines"][4] = {"answerer": {"kind": "rules"}}
    else:
        document = demo_scenario()
    normalized: dict[str, Any] = json.loads(json.dumps(document))  # line ids become strings
    return normalized


@dataclass
class Dialog:
    """Builds one chat's inputs as the ingress and the executor would, on a moving clock."""

    chat_id: int
    line_id: int = LINE
    session_id: int = SESSION
    clock: float = T0
    message_id: int = 100
    # False: no event names the session (the Open Lines copy of a message won the dedup, and
    # the session events of the code's shape carry none); only the history read names it
    told: bool = True

    def _at(self, after: float) -> float:
        self.clock += after
        return self.clock

    def _portal(self, after: float, session: bool = True) -> dict[str, Any]:
        return {
            "member_id": MEMBER,
            "chat_id": self.chat_id,
            "session_id": self.session_id if session and self.told else None,
            "line_id": self.line_id,
            "at": self._at(after),
        }

    def _next_message(self) -> int:
        self.message_id += 1
        return self.message_id

    @property
    def user_code(self) -> str:
        """The client's code in the chat (connector | line | chat | user)."""
        return f"livechat|{self.line_id}|{self.chat_id}|{CLIENT}"

    def join(self, after: float = 1) -> BotJoined:
        """ONIMBOTJOINCHAT: the welcome bot joined (the event names no session)."""
        return BotJoined(bot_id=BOT, user_code=self.user_code, **self._portal(after, False))

    def started(self, after: float = 1) -> SessionStarted:
        """OnSessionStart."""
        return SessionStarted(**self._portal(after))

    def client(self, text: str, after: float = 5, message_id: int | None = None) -> ClientMessage:
        """ONIMBOTMESSAGEADD from the client (a new message id unless one is given)."""
        return ClientMessage(
            text=text,
            message_id=message_id or self._next_message(),
            user_id=CLIENT,
            user_code=self.user_code,
            bot_id=BOT,
            **self._portal(after),
        )

    def operator(
        self, text: str, after: float = 10, user_id: int = OPERATOR, message_id: int | None = None
    ) -> OperatorMessage:
        """A human wrote in the chat."""
        return OperatorMessage(
            text=text,
            message_id=message_id or self._next_message(),
            user_id=user_id,
            **self._portal(after),
        )

    def finished(self, after: float = 60) -> SessionFinished:
        """OnSessionFinish."""
        return SessionFinished(**self._portal(after))

    def edited(self, message_id: int, text: str, after: float = 2) -> MessageUpdated:
        """ONIMBOTMESSAGEUPDATE."""
        return MessageUpdated(message_id=message_id, text=text, **self._portal(after))

    def deleted(self, message_id: int, after: float = 2) -> MessageDeleted:
        """ONIMBOTMESSAGEDELETE."""
        return MessageDeleted(message_id=message_id, **self._portal(after))

    def timer(self, name: str, token: str, after: float) -> TimerFired:
        """One of our timers came due."""
        return TimerFired(name=name, token=token, at=self._at(after))

    def checked(self, effect_id: str, current_session_id: int, after: float = 1) -> SessionChecked:
        """The executor's answer to a CheckSession: the chat's current session as the portal
        shows it (0: none open)."""
        return SessionChecked(
            session_id=EffectId.parse(effect_id).session_id,
            current_session_id=current_session_id,
            effect_id=effect_id,
            at=self._at(after),
        )

    def transcript(self, after: float = 2, **fields: Any) -> TranscriptFetched:
        """The executor read the session's history."""
        return TranscriptFetched(session_id=self.session_id, at=self._at(after), **fields)

    def vote_saved(self, after: float = 2) -> VoteSaved:
        """The head vote was saved."""
        return VoteSaved(session_id=self.session_id, at=self._at(after))

    def lead_created(self, lead_id: int | None, after: float = 2) -> LeadCreated:
        """The session's lead exists."""
        return LeadCreated(session_id=self.session_id, lead_id=lead_id, at=self._at(after))

    def answered(
        self,
        effect_id: str,
        action: dict[str, Any] | None = None,
        failure: str = "",
        after: float = 1,
    ) -> Answered:
        """The executor's answer to an AskAnswerer (its turn is the effect's seq)."""
        return Answered(
            turn=EffectId.parse(effect_id).seq,
            action=action,
            failure=failure,
            effect_id=effect_id,
            session_id=EffectId.parse(effect_id).session_id,
            at=self._at(after),
        )

    def pressed(self, message_id: int, value: str, after: float = 3) -> ButtonPressed:
        """ONIMBOTV2COMMANDADD of a keyboard button of our message `message_id`."""
        return ButtonPressed(
            value=value, message_id=message_id, user_id=CLIENT, **self._portal(after)
        )

    def failed(self, effect_id: str, kind: str, code: str, after: float = 2) -> EffectFailed:
        """An effect failed for good; the session is the one its id names (as the executor
        builds it)."""
        return EffectFailed(
            effect_kind=kind,
            error_code=code,
            effect_id=effect_id,
            session_id=EffectId.parse(effect_id).session_id,
            at=self._at(after),
        )


@dataclass
class Recorder:
    """Feeds inputs to the machine and keeps every step."""

    scenarios: ScenarioSet
    state: DialogState | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def feed(self, inp: Input) -> None:
        """Apply one input as the handler would, and record the step."""
        now = inp.at
        step: dict[str, Any] = {"now": now, "input": input_entry(inp)}
        try:
            outcome = transition(
                self.state, inp, scenario_for(self.scenarios, self.state, inp), now
            )
        except IllegalTransition as exc:
            step |= {"outcome": REJECTED, "rejected": f"IllegalTransition: {exc}", "effects": []}
        else:
            self.state = outcome.state
            step |= {
                "outcome": APPLIED if outcome.changed else NO_OP,
                "effects": [effect_record(e) for e in outcome.effects],
            }
        step["state"] = None if self.state is None else self._stored(self.state)
        self.steps.append(step)

    @staticmethod
    def _stored(state: DialogState) -> dict[str, Any]:
        stored = state.to_json()
        as_dict: dict[str, Any] = json.loads(stored)
        # the history keeps the dict; the replay rebuilds the stored bytes from it
        assert stored_form(as_dict) == stored
        return as_dict

    def token(self, name: str) -> str:
        """The live token of a timer."""
        assert self.state is not None
        return self.state.timers[name]

    def effect_id(self, kind: str, latest: bool = True) -> str:
        """The id of the latest (or the first) effect of this kind so far."""
        effects = [e for step in self.steps for e in step["effects"] if e["kind"] == kind]
        assert effects, f"no {kind} effect recorded yet"
        return str(effects[-1 if latest else 0]["id"])
