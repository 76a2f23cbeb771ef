"""From portal events to machine inputs, and the stored forms of inputs and effects."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.dialog import effects as fx
from orchestrator.dialog import inputs as ins
from orchestrator.events.convert import inputs_from_event
from orchestrator.events.models import parse_event
from tests.unit import b24_payloads as p
from tests.unit.machine_fixtures import input_of


def inputs_of(payload: dict[str, Any]) -> list[ins.Input]:
    """The inputs of a payload as it arrives over the wire."""
    return inputs_from_event(parse_event(p.over_the_wire(payload)))


def test_client_message_from_a_connector_user() -> None:
    """A LINES message by a connector user is the client's, with the session context."""
    [msg] = inputs_of(p.bot_message("Need help"))
    assert isinstance(msg, ins.ClientMessage)
    assert (msg.text, msg.message_id, msg.chat_id, msg.session_id, msg.line_id) == (
        "Need help",
        70001,
        901,
        512,
        3,
    )
    assert (msg.member_id, msg.user_id, msg.bot_id, msg.at) == (p.MEMBER, 4567, p.BOT_ID, p.TS)
    assert msg.user_code == "telegrambot|3|123456789|4567"


def test_message_by_an_employee_is_an_operator_message() -> None:
    """A non-connector author in a LINES chat is an operator."""
    [msg] = inputs_of(p.bot_message("I am Olga", from_user=12, connector=False))
    assert isinstance(msg, ins.OperatorMessage)
    assert msg.user_id == 12


def test_without_user_block_the_user_code_tells_the_client() -> None:
    """When USER is absent, an author matching the user code's last part is the client."""
    payload = p.bot_message()
    del payload["data"]["USER"]
    assert isinstance(inputs_of(payload)[0], ins.ClientMessage)
    payload["data"]["PARAMS"]["FROM_USER_ID"] = "12"
    assert isinstance(inputs_of(payload)[0], ins.OperatorMessage)


@pytest.mark.parametrize(
    "change",
    [
        {"SYSTEM": "Y"},
        {"CHAT_ENTITY_TYPE": "", "MESSAGE_TYPE": "C", "CHAT_TYPE": "C"},
    ],
)
def test_system_and_non_open_lines_messages_are_not_inputs(change: dict[str, str]) -> None:
    """Portal notices and ordinary group chats do not drive dialogs."""
    payload = p.bot_message()
    payload["data"]["PARAMS"] |= change
    assert inputs_of(payload) == []


def test_updates_deletes_joins_and_sessions() -> None:
    """Each remaining dialog event maps to its one input."""
    [upd] = inputs_of(p.bot_message("edited", event="ONIMBOTMESSAGEUPDATE"))
    assert isinstance(upd, ins.MessageUpdated)
    assert upd.text == "edited"
    [dele] = inputs_of(p.bot_message(event="ONIMBOTMESSAGEDELETE"))
    assert isinstance(dele, ins.MessageDeleted)
    assert dele.message_id == 70001
    [join] = inputs_of(p.bot_join())
    assert isinstance(join, ins.BotJoined)
    assert (join.bot_id, join.line_id) == (p.BOT_ID, 3)
    [start] = inputs_of(p.session_event())
    assert isinstance(start, ins.SessionStarted)
    assert start.chat_id == 901
    [finish] = inputs_of(p.session_event_docs())
    assert isinstance(finish, ins.SessionFinished)
    assert finish.session_id == 512


def test_openline_messages_in_both_directions() -> None:
    """Inbound connector messages are the client's; outbound ones are an operator's."""
    [inbound] = inputs_of(p.openline_message_in())
    assert isinstance(inbound, ins.ClientMessage)
    assert inbound.message_id == 70001
    [outbound] = inputs_of(p.openline_message_out())
    assert isinstance(outbound, ins.OperatorMessage)
    assert outbound.user_id == 12


def test_openline_message_without_portal_ids_drives_nothing() -> None:
    """A connector packet with only external ids cannot be placed in a dialog."""
    payload = p.openline_message_in()
    del payload["data"]["DATA"]["im"]
    assert inputs_of(payload) == []


@pytest.mark.parametrize("build", [p.bot_delete, p.app_install, p.app_uninstall])
def test_portal_level_events_are_not_dialog_inputs(build: Any) -> None:
    """Bot deletion and app (un)install are handled by the portal registry, not a dialog."""
    assert inputs_of(build()) == []


@pytest.mark.parametrize("kind", sorted(ins.INPUT_TYPES))
def test_input_records_round_trip(kind: str) -> None:
    """Every input survives its stored form (for follow-ups and timers through the inbox)."""
    inp = input_of(kind)
    name, payload = ins.input_record(inp)
    assert name == kind
    assert ins.input_from_record(name, payload) == inp


def test_bad_input_records_are_refused() -> None:
    """Unknown kinds and wrong fields are a ValueError."""
    with pytest.raises(ValueError, match="unknown input kind"):
        ins.input_from_record("nope", {})
    with pytest.raises(ValueError, match="bad timer_fired"):
        ins.input_from_record("timer_fired", {"colour": "red"})


EFFECTS: list[fx.Effect] = [
    fx.SendMessage(chat_id=1, text="hi", via="note"),
    fx.HandToQueue(chat_id=1),
    fx.Transfer(chat_id=1, queue_id=3, leave=False),
    fx.FinishBotSession(chat_id=1),
    fx.FetchTranscript(session_id=5, chat_id=1),
    fx.SaveHeadVote(session_id=5, rating=4, comment="ok"),
    fx.CreateLead(session_id=None, chat_id=1, fields={"TITLE": "x"}, origin_id="m:1:e0"),
    fx.ScheduleTimer(name="silence", delay_s=600.0, token="silence:0:1"),
    fx.CancelTimer(name="silence"),
    fx.CheckSession(chat_id=1, session_id=5),
    fx.AskAnswerer(chat_id=1, line_id=2, turn=7, request={"turn": 7, "message": "hi"}),
]


@pytest.mark.parametrize("effect", EFFECTS, ids=lambda e: e.kind)
def test_effect_records_round_trip(effect: fx.Effect) -> None:
    """Every effect survives the runner's stored form (kind + JSON payload + id)."""
    [stamped] = fx.with_ids([effect], "m1", 1, 5, 7)
    rebuilt = fx.effect_from_record(stamped.kind, fx.effect_payload(stamped), stamped.effect_id)
    assert rebuilt == stamped
    assert stamped.effect_id is not None
    assert stamped.effect_id.session_id == 5
    assert stamped.effect_id.seq == 7
    assert fx.EffectId.parse(str(stamped.effect_id)) == stamped.effect_id


def test_every_effect_kind_is_registered() -> None:
    """The registry of kinds lists every effect type exactly once."""
    assert sorted(fx.EFFECT_TYPES) == sorted(e.kind for e in EFFECTS)
    with pytest.raises(ValueError):
        fx.effect_from_record("Explode", {})
