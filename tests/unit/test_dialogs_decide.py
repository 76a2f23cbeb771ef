"""The production handler's `decide`: stored events (as the ingress queues them) to the machine's
next state and effect records; pure, no I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.dialog.effects import EffectId
from orchestrator.dialog.inputs import BotJoined, LeadCreated, TimerFired, input_record
from orchestrator.dialog.scenario_file import load_scenario
from orchestrator.dialog.state import DialogState, DialogStatus
from orchestrator.events.convert import stored_inputs
from orchestrator.events.models import parse_event
from orchestrator.handler.handler import DialogMachineHandler, decode_inputs
from orchestrator.pipeline.keys import PORTAL_DIALOG
from orchestrator.pipeline.records import StoredEvent
from orchestrator.pipeline.timers import INPUT_EVENT_PREFIX
from tests.unit import b24_payloads as p


@pytest.fixture(scope="module")
def handler() -> DialogMachineHandler:
    """The handler with the shipped scenario and no executor (decide only)."""
    return DialogMachineHandler(load_scenario(None), executor=None)


def _stored(payload: dict[str, Any], *, seq: int = 1, chat: str = "901") -> StoredEvent:
    """An event as the drainer reads it: the inputs the ingress converted it to, as JSON."""
    event = parse_event(p.over_the_wire(payload))
    queued = json.loads(json.dumps(stored_inputs(event)))
    return StoredEvent(seq, f"e{seq}", event.name, p.MEMBER, chat, event.ts, 0, queued)


def _legacy(payload: dict[str, Any], *, seq: int = 1, chat: str = "901") -> StoredEvent:
    """An event as an older ingress queued it: the wire payload, application_token dropped."""
    wire = p.over_the_wire(payload)
    wire["auth"] = {k: v for k, v in wire["auth"].items() if k != "application_token"}
    queued = json.loads(json.dumps(wire))
    return StoredEvent(
        seq, f"e{seq}", str(queued["event"]), p.MEMBER, chat, int(queued["ts"]), 0, queued
    )


def _internal(inp: Any, *, seq: int, chat: str = "901") -> StoredEvent:
    kind, payload = input_record(inp)
    return StoredEvent(seq, f"i{seq}", INPUT_EVENT_PREFIX + kind, p.MEMBER, chat, p.TS, 0, payload)


def test_a_queued_event_is_decided_from_its_inputs_alone() -> None:
    """What the ingress queues is the event's inputs, not the wire event: the worker rebuilds
    them as they are (no wire model, no validation), and they decide like the event would."""
    stored = _stored(p.bot_join())
    assert set(stored.payload) == {"inputs"}
    [inp] = decode_inputs(stored)
    assert isinstance(inp, BotJoined)
    assert inp.bot_id == p.BOT_ID


def test_legacy_entries_parse_although_the_ingress_dropped_the_application_token() -> None:
    """An entry an older ingress queued as the wire payload (no application_token, verified at
    the ingress) still parses."""
    [inp] = decode_inputs(_legacy(p.bot_join()))
    assert isinstance(inp, BotJoined)
    assert (inp.chat_id, inp.bot_id, inp.line_id) == (901, p.BOT_ID, 3)


def test_bot_join_greets_asks_and_arms_the_silence_timer(handler: DialogMachineHandler) -> None:
    """The welcome bot's join starts the dialog: greeting, first prompt, silence timer."""
    decision = handler.decide(None, _stored(p.bot_join()))
    state = DialogState.from_json(decision.new_state)
    assert state.status is DialogStatus.BOT
    assert state.greeted
    kinds = [e.kind for e in decision.effects]
    assert kinds == ["SendMessage", "SendMessage", "ScheduleTimer"]
    ids = [EffectId.parse(e.effect_id) for e in decision.effects]
    assert all((i.member_id, i.dialog_key) == (p.MEMBER, "901") for i in ids)


def test_decide_is_deterministic_so_a_replay_mints_the_same_effect_ids(
    handler: DialogMachineHandler,
) -> None:
    """Deciding the same event on the same state twice yields identical records."""
    event = _stored(p.bot_join())
    assert handler.decide(None, event) == handler.decide(None, event)


def test_a_stale_timer_changes_nothing(handler: DialogMachineHandler) -> None:
    """A timer whose token is no longer armed leaves the state as it was, with no effects."""
    state = handler.decide(None, _stored(p.bot_join())).new_state
    decision = handler.decide(state, _internal(TimerFired(name="silence", token="old"), seq=2))
    assert decision.effects == []
    assert DialogState.from_json(decision.new_state) == DialogState.from_json(state)


def test_the_armed_silence_timer_makes_the_bot_close_the_dialog(
    handler: DialogMachineHandler,
) -> None:
    """The live silence timer: the bot says goodbye and asks the portal to finish."""
    state = handler.decide(None, _stored(p.bot_join())).new_state
    token = DialogState.from_json(state).timers["silence"]
    decision = handler.decide(state, _internal(TimerFired(name="silence", token=token), seq=2))
    assert [e.kind for e in decision.effects] == ["SendMessage", "FinishBotSession"]
    assert DialogState.from_json(decision.new_state).closing


def test_an_illegal_input_is_dropped_not_raised(handler: DialogMachineHandler) -> None:
    """A result for a dialog that never started is logged and dropped (the event leaves the
    inbox; the worker does not crash on it)."""
    decision = handler.decide(None, _internal(LeadCreated(session_id=5, lead_id=1), seq=1))
    assert decision.effects == []
    assert decision.new_state == b""


def test_an_unknown_internal_input_raises_so_the_runner_dead_letters_it(
    handler: DialogMachineHandler,
) -> None:
    """An internal event of a kind we do not know is an error, not a silent no-op."""
    event = StoredEvent(1, "x", INPUT_EVENT_PREFIX + "nonsense", p.MEMBER, "901", p.TS, 0, {})
    with pytest.raises(ValueError, match="unknown input kind"):
        handler.decide(None, event)


def test_portal_level_events_do_nothing(handler: DialogMachineHandler) -> None:
    """ONAPPINSTALL (the ingress verified it and stored the tokens), ONAPPUNINSTALL and
    ONIMBOTDELETE drive no dialog and decide no effect: no token travels in an effect record."""
    for payload in (p.app_install(), p.app_uninstall(), p.bot_delete()):
        decision = handler.decide(None, _stored(payload, chat=PORTAL_DIALOG))
        assert decision.effects == []
