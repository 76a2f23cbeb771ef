"""Every (state, input kind) pair of the dialog machine has a stated outcome."""

from __future__ import annotations

import pytest

from orchestrator.dialog.inputs import INPUT_TYPES
from orchestrator.dialog.machine import DialogState, DialogStatus, transition
from orchestrator.errors import IllegalTransition
from tests.unit.machine_fixtures import T0, input_of, scenario, state_in

SEND, TIMER, CANCEL = "SendMessage", "ScheduleTimer", "CancelTimer"
GREET = (SEND, SEND, TIMER)  # greeting, first question, silence timer
NOOP: tuple[str, tuple[str, ...]] = ("noop", ())
ILLEGAL: tuple[str, tuple[str, ...]] = ("illegal", ())

# (status or None for "no dialog yet", input kind) -> (new status | noop | illegal, effect kinds)
TABLE: dict[tuple[str | None, str], tuple[str, tuple[str, ...]]] = {
    ("bot", "client_message"): ("bot", (SEND, TIMER)),  # the name is taken, e-mail asked
    ("bot", "operator_message"): ("operator", (CANCEL,)),  # a human took over
    ("bot", "bot_joined"): NOOP,  # already greeted
    ("bot", "session_started"): NOOP,
    # every closed session is evaluated, a bot-only one too (on the client's vote alone)
    ("bot", "session_finished"): ("finished", (CANCEL, "FetchTranscript", "CreateLead")),
    ("bot", "message_updated"): NOOP,
    ("bot", "message_deleted"): NOOP,
    ("bot", "timer_fired"): ("bot", (SEND, "FinishBotSession")),  # silent client
    ("bot", "transcript_fetched"): ILLEGAL,
    ("bot", "vote_saved"): ILLEGAL,
    ("bot", "lead_created"): ILLEGAL,
    ("bot", "effect_failed"): ("operator_queue", (SEND, SEND, "HandToQueue", CANCEL, TIMER)),
    # a reconcile check found the session gone (its finish push was lost): the close tail
    ("bot", "session_checked"): ("finished", (CANCEL, "FetchTranscript", "CreateLead")),
    ("operator_queue", "client_message"): ("operator_queue", ()),
    ("operator_queue", "operator_message"): ("operator", (CANCEL,)),
    ("operator_queue", "bot_joined"): NOOP,
    ("operator_queue", "session_started"): NOOP,
    ("operator_queue", "session_finished"): ("finished", (CANCEL, "FetchTranscript", "CreateLead")),
    ("operator_queue", "message_updated"): NOOP,
    ("operator_queue", "message_deleted"): NOOP,
    ("operator_queue", "timer_fired"): NOOP,  # the silence timer was cancelled at the handoff
    ("operator_queue", "transcript_fetched"): ILLEGAL,
    ("operator_queue", "vote_saved"): ILLEGAL,
    ("operator_queue", "lead_created"): ILLEGAL,
    ("operator_queue", "effect_failed"): NOOP,  # a chat message failed after the handoff
    ("operator_queue", "session_checked"): ("finished", (CANCEL, "FetchTranscript", "CreateLead")),
    ("operator", "client_message"): ("operator", ()),
    ("operator", "operator_message"): ("operator", ()),
    ("operator", "bot_joined"): NOOP,
    ("operator", "session_started"): NOOP,
    ("operator", "session_finished"): ("finished", ("FetchTranscript", "CreateLead")),
    ("operator", "message_updated"): NOOP,
    ("operator", "message_deleted"): NOOP,
    ("operator", "timer_fired"): NOOP,
    ("operator", "transcript_fetched"): ILLEGAL,
    ("operator", "vote_saved"): ILLEGAL,
    ("operator", "lead_created"): ILLEGAL,
    ("operator", "effect_failed"): NOOP,
    ("operator", "session_checked"): ("finished", ("FetchTranscript", "CreateLead")),
    # a new session after the close; the pending vote is rated with what we know
    ("finished", "client_message"): ("bot", ("SaveHeadVote", *GREET)),
    ("finished", "operator_message"): NOOP,
    ("finished", "bot_joined"): ("bot", ("SaveHeadVote", *GREET)),
    ("finished", "session_started"): ("bot", ("SaveHeadVote",)),
    ("finished", "session_finished"): NOOP,
    ("finished", "message_updated"): NOOP,
    ("finished", "message_deleted"): NOOP,
    ("finished", "timer_fired"): NOOP,
    ("finished", "transcript_fetched"): ("finished", ("SaveHeadVote",)),
    ("finished", "vote_saved"): ("voted", ()),
    ("finished", "lead_created"): ("finished", ()),  # the vote is still pending
    ("finished", "effect_failed"): NOOP,
    ("finished", "session_checked"): NOOP,  # the finish came first: nothing to reconcile
    ("voted", "client_message"): ("bot", GREET),
    ("voted", "operator_message"): NOOP,
    ("voted", "bot_joined"): ("bot", GREET),
    ("voted", "session_started"): ("bot", ()),
    ("voted", "session_finished"): NOOP,
    ("voted", "message_updated"): NOOP,
    ("voted", "message_deleted"): NOOP,
    ("voted", "timer_fired"): NOOP,
    ("voted", "transcript_fetched"): NOOP,
    ("voted", "vote_saved"): NOOP,
    ("voted", "lead_created"): ("lead", ()),
    ("voted", "effect_failed"): NOOP,
    ("voted", "session_checked"): NOOP,
}
# no question to the line's answerer is out in any of these states: an answer is stale
for _status in ("bot", "operator_queue", "operator", "finished", "voted"):
    TABLE[(_status, "answered")] = NOOP
    # a button pressed once people have the dialog, or after the close, changes nothing
    TABLE[(_status, "button_pressed")] = NOOP
TABLE[("bot", "button_pressed")] = ("bot", (SEND, SEND, TIMER))  # the topic's answer, re-ask
for _closed in ("lead", "failed"):
    for _kind in INPUT_TYPES:
        TABLE[(_closed, _kind)] = NOOP
    TABLE[(_closed, "client_message")] = ("bot", GREET)
    TABLE[(_closed, "bot_joined")] = ("bot", GREET)
    TABLE[(_closed, "session_started")] = ("bot", ())
TABLE |= {
    (None, "client_message"): ("bot", GREET),
    (None, "operator_message"): ("operator", ()),
    (None, "bot_joined"): ("bot", GREET),
    (None, "session_started"): ("bot", ()),
    (None, "session_finished"): ("finished", ("FetchTranscript", "CreateLead")),
}
for _kind in INPUT_TYPES:
    TABLE.setdefault((None, _kind), ILLEGAL)

STATUSES: list[str | None] = [s.value for s in DialogStatus] + [None]


def test_the_table_covers_every_pair() -> None:
    """No (state, input) pair is left without a stated outcome."""
    assert set(TABLE) == {(s, k) for s in STATUSES for k in INPUT_TYPES}


@pytest.mark.parametrize(("status", "kind"), sorted(TABLE, key=str))
def test_state_input_pair(status: str | None, kind: str) -> None:
    """The pair gives the stated next status and effect kinds, a no-op, or IllegalTransition."""
    expected_status, expected_effects = TABLE[(status, kind)]
    state: DialogState | None = state_in(DialogStatus(status)) if status else None
    before = state.model_copy(deep=True) if state else None
    if expected_status == "illegal":
        with pytest.raises(IllegalTransition):
            transition(state, input_of(kind), scenario(), T0 + 700)
        return
    result = transition(state, input_of(kind), scenario(), T0 + 700)
    assert tuple(e.kind for e in result.effects) == expected_effects
    if expected_status == "noop":
        assert not result.changed
        assert result.state == before
    else:
        assert result.changed
        assert result.state.status == expected_status
        assert result.state.seq == (before.seq if before else 0) + 1
    assert state == before, "transition must not mutate its input state"
