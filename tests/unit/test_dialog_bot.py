"""The bot's conversation: FAQ, data collection with re-asking, every handoff trigger,
working hours and the timers."""

from __future__ import annotations

from typing import Any

from orchestrator.dialog.effects import Effect, FinishBotSession, HandToQueue, SendMessage, Transfer
from orchestrator.dialog.inputs import BotJoined, ClientMessage, EffectFailed, Input, TimerFired
from orchestrator.dialog.machine import DialogState, DialogStatus, transition
from orchestrator.dialog.scenario import Scenario
from orchestrator.dialog.scenario_file import parse_scenario
from tests.unit.machine_fixtures import BOT, PORTAL, T0, scenario

S = DialogStatus
MONDAY_NOON_BERLIN = 1_767_610_800.0  # 2026-01-05 11:00 UTC
MONDAY_NIGHT_BERLIN = 1_767_646_800.0  # 2026-01-05 21:00 UTC


class Dialog:
    """Drives one dialog through the machine and keeps what it said."""

    def __init__(self, scn: Scenario | None = None, now: float = T0) -> None:
        self.scenario = scn or scenario()
        self.now = now
        self.state: DialogState | None = None
        self.effects: list[Effect] = []
        self.next_id = 100

    def send(self, inp: Input) -> list[Effect]:
        """Apply an input; return its effects."""
        result = transition(self.state, inp, self.scenario, self.now)
        self.state = result.state
        self.effects += result.effects
        return list(result.effects)

    def join(self) -> list[Effect]:
        """The welcome bot joins."""
        return self.send(BotJoined(bot_id=BOT, at=self.now, **PORTAL))

    def say(self, text: str) -> list[Effect]:
        """The client writes."""
        self.next_id += 1
        return self.send(ClientMessage(text=text, message_id=self.next_id, at=self.now, **PORTAL))

    @property
    def st(self) -> DialogState:
        """The current state."""
        assert self.state is not None
        return self.state


def texts(effects: list[Effect]) -> list[str]:
    """What the bot said, in order."""
    return [e.text for e in effects if isinstance(e, SendMessage)]


def custom(**overrides: Any) -> Scenario:
    """The default scenario with some top-level sections replaced."""
    from importlib import resources

    import yaml

    doc = yaml.safe_load(
        resources.files("orchestrator.dialog").joinpath("scenarios/default.yaml").read_text()
    )
    doc["default"] |= overrides
    return parse_scenario(doc).default


def test_join_greets_and_asks_the_first_field() -> None:
    """The welcome bot greets the way the scenario says, then asks for the name."""
    d = Dialog()
    effects = d.join()
    greeting = effects[0]
    assert isinstance(greeting, SendMessage)
    assert greeting.via == "session"
    assert texts(effects)[1] == "How may I call you?"
    assert d.st.asking == "name"


def test_opening_message_is_not_taken_as_the_name() -> None:
    """The client's first words are their question, even when the join came first."""
    d = Dialog()
    d.join()
    d.say("Need help with my order")
    assert d.st.data.name is None
    d.say("Jane Roe")
    assert d.st.data.name == "Jane Roe"


def test_faq_answers_and_repeats_the_pending_question() -> None:
    """A keyword gets its answer; the pending question is asked again; nothing is stored."""
    d = Dialog()
    d.join()
    d.say("hello")
    said = texts(d.say("What is the price of delivery?"))
    assert said == ["Our prices are listed at https://example.com/pricing.", "How may I call you?"]
    assert d.st.data.name is None


def test_data_collection_validates_and_reasks() -> None:
    """A bad e-mail is refused with the scenario's hint; a good one is stored."""
    d = Dialog()
    d.join()
    d.say("hi")
    d.say("Jane")
    assert texts(d.say("jane at example")) == [
        "That does not look like an e-mail address, e.g. jane@example.com."
    ]
    assert d.st.reasks == 1
    d.say("jane@example.com")
    assert d.st.data.email == "jane@example.com"
    assert d.st.asking == "phone"


def test_a_field_is_skipped_after_max_reasks() -> None:
    """After max_reasks refusals the bot moves on without the field."""
    d = Dialog()
    d.join()
    d.say("hi")
    d.say("Jane")
    for _ in range(3):  # max_reasks = 2: the third wrong answer gives up
        d.say("no")
    assert d.st.skipped == ["email"]
    assert d.st.asking == "phone"


def test_all_data_collected_hands_to_the_queue_with_a_note() -> None:
    """The last field triggers the handoff: message, operator note, then the line's queue."""
    d = Dialog()
    d.join()
    for text in ("hi", "Jane", "jane@example.com"):
        d.say(text)
    effects = d.say("+1 555 123 4567")
    assert d.st.status is S.OPERATOR_QUEUE
    assert d.st.handoff_reason == "collected"
    note = [e for e in effects if isinstance(e, SendMessage) and e.via == "note"]
    assert note
    assert "Jane / jane@example.com / +1 555 123 4567" in note[0].text
    assert any(isinstance(e, HandToQueue) for e in effects)
    assert d.st.timers.keys() == {"accept"}


def test_keyword_hands_off_at_once() -> None:
    """Asking for a human hands the dialog over immediately."""
    d = Dialog()
    d.join()
    effects = d.say("I want a human please")
    assert d.st.status is S.OPERATOR_QUEUE
    assert d.st.handoff_reason == "keyword"
    assert any(isinstance(e, HandToQueue) for e in effects)


def test_client_zero_expects_the_queue_without_calling_the_portal() -> None:
    """On "0" the portal ends the bot session itself; we only follow, calling nothing."""
    d = Dialog()
    d.join()
    effects = d.say("0")
    assert d.st.status is S.OPERATOR_QUEUE
    assert d.st.handoff_reason == "client_zero"
    assert not any(isinstance(e, HandToQueue | Transfer | SendMessage) for e in effects)


def test_unanswered_questions_hand_off_after_the_limit() -> None:
    """With nothing to collect, N messages the bot cannot answer lead to the queue."""
    d = Dialog(custom(collect={"fields": []}))
    d.join()
    d.say("hello")
    assert texts(d.say("blah")) == [d.scenario.fallback]
    d.say("blah blah")
    assert d.st.status is S.OPERATOR_QUEUE
    assert d.st.handoff_reason == "unanswered"


def test_route_by_keyword_transfers_to_another_line() -> None:
    """A routing keyword sends the dialog to the rule's line (imopenlines.bot.session.transfer)."""
    d = Dialog()
    d.join()
    d.say("hello")
    effects = d.say("operator, it is about a refund")
    transfer = [e for e in effects if isinstance(e, Transfer)]
    assert transfer
    assert transfer[0].queue_id == 2
    assert transfer[0].leave
    assert d.st.status is S.OPERATOR_QUEUE


def test_route_by_data_transfers_to_a_user_who_answers_at_once() -> None:
    """A collected e-mail matching a rule goes to that user; a bot transfer to a user answers."""
    d = Dialog(
        custom(
            handoff={
                "routes": [
                    {"field": "email", "pattern": "@bigcorp\\.com$", "target": {"user_id": 12}}
                ]
            }
        )
    )
    d.join()
    for text in ("hi", "Jane", "jane@bigcorp.com"):
        d.say(text)
    effects = d.say("+1 555 123 4567")
    assert next(e for e in effects if isinstance(e, Transfer)).user_id == 12
    assert d.st.status is S.OPERATOR
    assert d.st.operator_id == 12


def test_bot_failure_hands_off() -> None:
    """When a bot call fails for good, the dialog goes to the queue rather than hanging."""
    d = Dialog()
    d.join()
    d.send(
        EffectFailed(
            effect_kind="SendMessage", error_code="WRONG_REQUEST", session_id=PORTAL["session_id"]
        )
    )
    assert d.st.status is S.OPERATOR_QUEUE
    assert d.st.handoff_reason == "bot_failure"


def test_bot_failure_without_handoff_fails_the_dialog() -> None:
    """With on_bot_failure off, a failing bot marks the dialog failed."""
    d = Dialog(custom(handoff={"on_bot_failure": False}))
    d.join()
    d.send(EffectFailed(effect_kind="SendMessage", error_code="X", session_id=PORTAL["session_id"]))
    assert d.st.status is S.FAILED
    assert d.st.failure == "SendMessage: X"


def test_inside_working_hours_the_bot_works_normally() -> None:
    """Within the schedule there is no closed notice."""
    d = Dialog(load_line2(), now=MONDAY_NOON_BERLIN)
    d.join()
    assert not d.st.after_hours


def load_line2() -> Scenario:
    """Line 2 of the shipped file: Mon-Fri 9-18 in Berlin."""
    from orchestrator.dialog.scenario_file import load_scenario

    return load_scenario(None).for_line(2)


def test_outside_working_hours_collects_then_finishes_without_an_operator() -> None:
    """After hours: tell the client, collect the contact, close the session; no handoff, even
    when asked; the lead follows the close."""
    d = Dialog(load_line2(), now=MONDAY_NIGHT_BERLIN)
    said = texts(d.join())
    assert d.st.after_hours
    assert said[1] == d.scenario.hours.outside_message
    d.say("hi")
    assert texts(d.say("operator")) == [d.scenario.hours.outside_message, "How may I call you?"]
    for text in ("Jane", "jane@example.com"):
        d.say(text)
    effects = d.say("+1 555 123 4567")
    assert any(isinstance(e, FinishBotSession) for e in effects)
    assert d.scenario.hours.goodbye in texts(effects)
    assert d.st.status is S.BOT
    assert d.st.closing
    assert d.st.handed_off_at is None
    from orchestrator.dialog.inputs import SessionFinished

    kinds = [e.kind for e in d.send(SessionFinished(at=T0, **PORTAL))]
    # every closed session is evaluated; with no operator, on the client's vote alone
    assert kinds == ["FetchTranscript", "CreateLead"]


def test_silent_client_gets_the_session_finished() -> None:
    """The silence timer says goodbye and asks the portal to finish the session."""
    d = Dialog()
    d.join()
    effects = d.send(TimerFired(name="silence", token=d.st.timers["silence"]))
    assert texts(effects) == [d.scenario.timers.silence_message]
    assert isinstance(effects[-1], FinishBotSession)
    assert d.st.closing
    # closing: the bot keeps quiet; the client's message may have cancelled the portal's vote
    # wait (the session then stays open), so the bot asks the portal to finish again
    again = d.say("hello?")
    assert [type(e) for e in again] == [FinishBotSession]
    assert d.st.closing


def test_nobody_accepting_transfers_to_the_fallback() -> None:
    """When no operator accepts in time, the dialog is transferred to the fallback line."""
    d = Dialog(custom(timers={"accept_timeout_s": 60, "accept_fallback": {"queue_id": 9}}))
    d.join()
    d.say("operator")
    effects = d.send(TimerFired(name="accept", token=d.st.timers["accept"]))
    transfer = [e for e in effects if isinstance(e, Transfer)]
    assert transfer
    assert transfer[0].queue_id == 9
    assert d.st.status is S.OPERATOR_QUEUE
    assert "accept_timeout" in (d.st.handoff_reason or "")
    assert "accept" in d.st.timers  # armed again for the fallback line


def test_accept_timeout_without_fallback_only_disarms() -> None:
    """Without a fallback the accept timer just expires."""
    d = Dialog()
    d.join()
    d.say("operator")
    effects = d.send(TimerFired(name="accept", token=d.st.timers["accept"]))
    assert effects == []
    assert d.st.timers == {}
