"""The working context of one transition: the state copy, the scenario, the effects so far."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.dialog.actions import Turn
from orchestrator.dialog.effects import CancelTimer, Effect, ScheduleTimer, SendMessage, Via
from orchestrator.dialog.scenario import Scenario
from orchestrator.dialog.state import DialogState

__all__ = ["OFFERED_MAX", "TURN_TEXT_MAX", "Step", "render"]

TURN_TEXT_MAX = 1000  # what an answerer is shown of one past turn
OFFERED_MAX = 20  # button labels a session remembers (the latest)

_GREETING_VIA: dict[str, Via] = {
    "imopenlines.bot.session.message.send": "session",
    "imbot.message.add": "bot",
}


@dataclass
class Step:
    """Mutable while one transition is computed; the machine freezes the outcome."""

    state: DialogState
    scenario: Scenario
    now: float
    effects: list[Effect] = field(default_factory=list)
    # the name the history gives this transition (None: the input's kind), and whether it is
    # left out of the history (a routine check that found nothing)
    label: str | None = None
    quiet: bool = False

    def emit(self, effect: Effect) -> None:
        """Append an effect."""
        self.effects.append(effect)

    def say(self, text: str, via: Via = "bot", buttons: Sequence[tuple[str, str]] = ()) -> None:
        """Post a message into the chat (skipped when the scenario leaves the text empty), with
        `buttons` ((label, value) pairs) under it: only the bot's own messages carry them."""
        if not text:
            return
        keyboard = [{"text": label, "value": value} for label, value in buttons if via == "bot"]
        self.emit(SendMessage(chat_id=self.state.chat_id, text=text, via=via, buttons=keyboard))
        if keyboard:
            # a client may press a button, or type its label: both mean its value
            offered = {**self.state.offered, **{b["text"]: b["value"] for b in keyboard}}
            self.state.offered = dict(list(offered.items())[-OFFERED_MAX:])
        if via != "note":
            self.remember("bot", text, self.now)

    def remember(self, role: str, text: str, at: float) -> None:
        """Keep a turn of the conversation for the line's answerer (only where it has one)."""
        answerer = self.scenario.answerer
        if not answerer.remote or answerer.recent_turns == 0 or not text:
            return
        turn = Turn(role="client" if role == "client" else "bot", text=text[:TURN_TEXT_MAX], at=at)
        self.state.recent = [*self.state.recent, turn][-answerer.recent_turns :]

    def greet(self) -> None:
        """Post the scenario's greeting the way it says."""
        greeting = self.scenario.greeting
        self.say(greeting.text, _GREETING_VIA[greeting.via])

    def schedule(self, name: str, delay_s: float | None) -> None:
        """(Re)arm a timer; the token is unique per transition so older firings go stale."""
        if delay_s is None:
            return
        token = f"{name}:{self.state.epoch}:{self.state.seq + 1}"
        self.state.timers[name] = token
        # one arming per timer per transition: the last one wins
        self.effects = [
            e for e in self.effects if not (isinstance(e, ScheduleTimer) and e.name == name)
        ]
        self.emit(ScheduleTimer(name=name, delay_s=float(delay_s), token=token))

    def cancel(self, name: str) -> None:
        """Disarm a timer if it is armed."""
        if self.state.timers.pop(name, None) is not None:
            self.emit(CancelTimer(name=name))

    def cancel_all(self) -> None:
        """Disarm every timer."""
        for name in sorted(self.state.timers):
            self.cancel(name)


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "-"


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill a scenario template; unknown or empty placeholders read as '-'."""
    filled = _Blank({k: v for k, v in values.items() if v not in (None, "")})
    return template.format_map(filled)
