"""The answerer seam, pure side: what is asked, what an answer may be, and how it is applied
(the budget, the guard of one answer per question, the fallbacks). The recorded histories
(tests/replay_answerer.py) replay whole dialogs of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.dialog.actions import AnswerRequest, action_schema, parse_action, request_schema
from orchestrator.dialog.answerer_config import AnswererConfig
from orchestrator.dialog.effects import AskAnswerer, SendMessage
from orchestrator.dialog.inputs import Answered, ClientMessage
from orchestrator.dialog.machine import transition
from orchestrator.dialog.scenario import Scenario
from orchestrator.dialog.state import DialogState, DialogStatus
from tests.unit.machine_fixtures import PORTAL, T0, scenario, state_in

ROOT = Path(__file__).resolve().parents[2]


def _with(**answerer: Any) -> Scenario:
    config = AnswererConfig(kind="http", http={"url": "http://answers.test/"}, **answerer)
    return scenario().model_copy(update={"answerer": config})


def _client(text: str, message_id: int, at: float = T0 + 700) -> ClientMessage:
    return ClientMessage(text=text, message_id=message_id, user_id=4567, at=at, **PORTAL)


def _step(state: DialogState, inp: Any, sc: Scenario) -> tuple[DialogState, list[Any]]:
    out = transition(state, inp, sc, inp.at)
    return out.state, list(out.effects)


def _asked(effects: list[Any]) -> AskAnswerer:
    [ask] = [e for e in effects if isinstance(e, AskAnswerer)]
    return ask


def _said(effects: list[Any]) -> list[str]:
    return [e.text for e in effects if isinstance(e, SendMessage) and e.via != "note"]


def test_the_request_shows_the_dialog_and_the_recent_turns() -> None:
    """The answerer sees the message, what is asked and collected, and the last turns."""
    sc = _with(recent_turns=3)
    st = state_in(DialogStatus.BOT)  # greeted, asking for the name
    st, effects = _step(st, _client("Do you ship to Spain?", 50), sc)
    request = AnswerRequest.model_validate(_asked(effects).request)
    assert request.message == "Do you ship to Spain?"
    assert request.turn == st.seq == _asked(effects).turn
    assert request.dialog.asking == "name"
    assert request.fields == ["name", "email", "phone"]
    assert [t.text for t in request.recent] == ["Do you ship to Spain?"]
    assert st.pending_ask is not None
    assert st.answers == 1


def test_a_valid_answer_to_the_field_asked_needs_no_question() -> None:
    """The name the bot asked for is taken as it is: no answerer call, the next field asked."""
    st, effects = _step(state_in(DialogStatus.BOT), _client("Jane Roe", 51), _with())
    assert not [e for e in effects if isinstance(e, AskAnswerer)]
    assert st.data.name == "Jane Roe"
    assert _said(effects) == ["What is your e-mail?"]


def test_the_budget_spent_the_rules_answer() -> None:
    """Past max_answers a session's messages go to the scenario's rules."""
    sc = _with(max_answers=1)
    st, effects = _step(state_in(DialogStatus.BOT), _client("what is the price?", 52), sc)
    ask = _asked(effects)
    st, _ = _step(
        st, Answered(turn=ask.turn, action={"action": "reply", "text": "10 EUR"}, at=T0 + 701), sc
    )
    st, effects = _step(st, _client("and the delivery?", 53, T0 + 702), sc)
    assert not [e for e in effects if isinstance(e, AskAnswerer)]
    assert _said(effects)[0] == "We deliver within 3 working days."


def test_one_answer_per_question() -> None:
    """The answer to the question out is applied once; a repeat or an older turn is a no-op."""
    sc = _with()
    st, effects = _step(state_in(DialogStatus.BOT), _client("hours?", 54), sc)
    answer = Answered(
        turn=_asked(effects).turn, action={"action": "reply", "text": "9-18"}, at=T0 + 701
    )
    st, effects = _step(st, answer, sc)
    assert _said(effects) == ["9-18"]
    again = transition(st, answer, sc, T0 + 702)
    assert not again.changed
    old = Answered(turn=answer.turn - 1, action={"action": "reply", "text": "x"}, at=T0 + 703)
    assert not transition(st, old, sc, T0 + 703).changed


@pytest.mark.parametrize(
    ("on_failure", "expected_status"),
    [("rules", DialogStatus.BOT), ("handoff", DialogStatus.OPERATOR_QUEUE)],
)
def test_a_failed_answer_takes_the_lines_fallback(
    on_failure: str, expected_status: DialogStatus
) -> None:
    """A timeout: the rules answer the same message, or the dialog goes to people."""
    sc = _with(on_failure=on_failure)
    st, effects = _step(state_in(DialogStatus.BOT), _client("what is the price?", 55), sc)
    failed = Answered(turn=_asked(effects).turn, failure="timeout", at=T0 + 701)
    st, effects = _step(st, failed, sc)
    assert st.status is expected_status
    if on_failure == "rules":
        assert _said(effects)[0] == "Our prices are listed at https://example.com/pricing."
    else:
        assert st.handoff_reason == "answerer_timeout"


def test_an_answer_after_a_handoff_is_dropped_quietly() -> None:
    """The client asked for a person while the question was out: the answer says nothing."""
    sc = _with()
    st, effects = _step(state_in(DialogStatus.BOT), _client("refund?", 56), sc)
    turn = _asked(effects).turn
    st, _ = _step(st, _client("operator please", 57, T0 + 701), sc)
    st, effects = _step(
        st, Answered(turn=turn, action={"action": "reply", "text": "x"}, at=T0 + 702), sc
    )
    assert st.status is DialogStatus.OPERATOR_QUEUE
    assert effects == []
    assert st.pending_ask is None


def test_a_handoff_after_hours_keeps_collecting() -> None:
    """Nobody to hand to: the line's after-hours message, the dialog stays with the bot."""
    sc = _with()
    question = _client("Can you help with a complicated problem?", 58)
    st, effects = _step(state_in(DialogStatus.BOT), question, sc)
    st.after_hours = True
    action = {"action": "handoff", "reason": "complex"}
    st, effects = _step(st, Answered(turn=_asked(effects).turn, action=action, at=T0 + 701), sc)
    assert st.status is DialogStatus.BOT
    assert _said(effects) == [sc.hours.outside_message]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ({"action": "reply"}, "reply.text"),
        ({"action": "reply", "text": "\x00\x01  "}, "needs words"),
        ({"action": "ask", "field": "address"}, "ask.field"),
        ({"action": "ask", "field": "name"}, "collected already"),
        ({"action": "handoff", "reason": "x" * 65}, "handoff.reason"),
        ({"action": "transfer", "user_id": 1}, "does not match"),
        ({"action": "reply", "text": "hi", "extra": 1}, "extra"),
        ("[1, 2]", "answer"),
        ({"action": "reply", "text": "x" * 4001}, "reply.text"),
    ],
)
def test_invalid_answers_are_refused_with_a_reason(raw: Any, why: str) -> None:
    """Every answer passes one validator; what it refuses it says briefly."""
    st = state_in(DialogStatus.BOT)
    st.data.name = "Jane"
    request = {
        "turn": 1,
        "message": "m",
        "dialog": {
            "member_id": "m1",
            "chat_id": 1,
            "session_id": None,
            "line_id": 1,
            "language": "en",
            "asking": "email",
            "collected": {"name": "Jane", "email": None},
            "skipped": [],
            "answers": 0,
            "first_message": False,
        },
        "recent": [],
        "fields": ["name", "email"],
    }
    with pytest.raises(ValueError, match=why):
        parse_action(raw, request)


def test_the_published_schemas_are_the_validators() -> None:
    """docs/answerer-action.schema.json and docs/answerer-request.schema.json are what
    `action_schema()` and `request_schema()` generate."""
    published = json.loads((ROOT / "docs" / "answerer-action.schema.json").read_text())
    assert published == action_schema()
    asked = json.loads((ROOT / "docs" / "answerer-request.schema.json").read_text())
    assert asked == request_schema()
