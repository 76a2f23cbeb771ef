"""Dialog machine behaviours beyond the table: replays, stale timers and results, effect ids,
failure handling and the stored form."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.dialog.effects import EffectId
from orchestrator.dialog.inputs import (
    BotJoined,
    ClientMessage,
    EffectFailed,
    Input,
    LeadCreated,
    OperatorMessage,
    SessionFinished,
    TimerFired,
    VoteSaved,
)
from orchestrator.dialog.machine import DialogState, DialogStatus, transition
from orchestrator.errors import IllegalTransition
from tests.unit.machine_fixtures import (
    BOT,
    CHAT,
    MEMBER,
    OPERATOR,
    PORTAL,
    SESSION,
    T0,
    input_of,
    scenario,
    state_in,
)

S = DialogStatus


def run(state: DialogState | None, *inputs: Input) -> tuple[DialogState, list[str]]:
    """Apply inputs in order; the final state and every effect kind emitted."""
    kinds: list[str] = []
    for inp in inputs:
        result = transition(state, inp, scenario(), T0)
        state = result.state
        kinds += [e.kind for e in result.effects]
    assert state is not None
    return state, kinds


def client(text: str, message_id: int, **extra: Any) -> ClientMessage:
    """A client message in the fixture dialog."""
    at = extra.pop("at", T0 + message_id)
    return ClientMessage(text=text, message_id=message_id, at=at, **{**PORTAL, **extra})


@pytest.mark.parametrize("status", list(S))
def test_a_replayed_client_message_is_a_no_op_in_every_state(status: DialogStatus) -> None:
    """The same message id again (a re-delivery after a restart) changes nothing, emits nothing."""
    first = transition(state_in(status), client("Jane Roe", 50), scenario(), T0)
    again = transition(first.state, client("Jane Roe", 50), scenario(), T0)
    assert not again.changed
    assert again.effects == ()
    assert again.state == first.state


def test_replaying_a_whole_transition_yields_the_same_effect_ids() -> None:
    """A re-run after a crash (same state, same input) produces identical effects and ids."""
    state = state_in(S.OPERATOR)
    a = transition(state, input_of("session_finished"), scenario(), T0)
    b = transition(state, input_of("session_finished"), scenario(), T0)
    assert a.effects == b.effects
    assert [str(e.effect_id) for e in a.effects] == [
        f"{MEMBER}:{CHAT}:{SESSION}:{state.seq + 1}:{i}" for i in range(len(a.effects))
    ]


def test_effect_ids_never_repeat_across_a_dialog() -> None:
    """Every effect of a whole dialog has its own id."""
    ids: list[EffectId | None] = []
    state = None
    for inp in [
        BotJoined(bot_id=BOT, at=T0, **PORTAL),
        client("hi", 1),
        client("Jane", 2),
        client("jane@example.com", 3),
        client("+1 555 123 4567", 4),
        OperatorMessage(text="hello", message_id=5, user_id=OPERATOR, at=T0 + 60, **PORTAL),
        SessionFinished(at=T0 + 900, **PORTAL),
        input_of("transcript_fetched"),
        input_of("vote_saved"),
        input_of("lead_created"),
    ]:
        result = transition(state, inp, scenario(), T0)
        state = result.state
        ids += [e.effect_id for e in result.effects]
    assert state is not None
    assert state.status is S.LEAD
    assert len(ids) == len(set(ids))


def test_a_stale_timer_token_is_ignored() -> None:
    """A timer re-armed since (the client wrote again) fires with an old token: nothing happens."""
    state, _ = run(state_in(S.BOT), client("Jane", 60))
    assert state.timers["silence"] != "silence:0:3"
    late = transition(state, TimerFired(name="silence", token="silence:0:3", at=T0), scenario(), T0)
    assert not late.changed


def test_an_unknown_timer_is_ignored() -> None:
    """A timer we never armed is a no-op, not an error."""
    result = transition(state_in(S.OPERATOR), TimerFired(name="x", token="y"), scenario(), T0)
    assert not result.changed


def test_operator_message_from_our_own_bot_is_not_a_takeover() -> None:
    """The bot's own words echoed by OnOpenLineMessageAdd do not hand the dialog to a human."""
    echo = OperatorMessage(text="hello", message_id=70, user_id=BOT, at=T0, **PORTAL)
    assert not transition(state_in(S.BOT), echo, scenario(), T0).changed


def test_results_for_an_earlier_session_are_ignored() -> None:
    """A vote or lead result naming another session is stale, whatever the state."""
    for status in S:
        stale = VoteSaved(session_id=SESSION - 1, at=T0)
        assert not transition(state_in(status), stale, scenario(), T0).changed


def test_post_close_results_arriving_in_a_later_session_are_ignored() -> None:
    """After a new session began, the old session's late lead result is not an error."""
    state, _ = run(state_in(S.VOTED), client("hello again", 80, session_id=None, at=T0 + 700))
    assert state.status is S.BOT
    assert state.epoch == 1
    late = LeadCreated(session_id=SESSION, lead_id=5, at=T0)
    assert not transition(state, late, scenario(), T0).changed


def test_a_vote_result_during_the_first_open_session_is_illegal() -> None:
    """A result that cannot exist yet (nothing was ever closed in this chat) is rejected."""
    with pytest.raises(IllegalTransition):
        transition(state_in(S.OPERATOR), VoteSaved(session_id=SESSION), scenario(), T0)


def test_an_opener_of_the_closed_session_arriving_after_its_close_starts_nothing() -> None:
    """The bot's join and the client's first message come through the fetched log, the session
    events through the offline queue: a join from before the close (naming no other session)
    belongs to the closed session, and does not open a new one."""
    closed = state_in(S.LEAD)
    closed.session_id = None  # the offline session events named none
    join = BotJoined(bot_id=BOT, user_code="livechat|1|5|7", at=T0 + 1, **PORTAL)
    late = transition(closed, join, scenario(), T0 + 700)
    assert not late.changed
    assert late.state.status is S.LEAD
    assert not transition(closed, client("hi", 70, at=T0 + 2), scenario(), T0 + 700).changed
    # after the close, or naming another session, it is a new session
    other = BotJoined(bot_id=BOT, user_code="x", at=T0 + 2, **{**PORTAL, "session_id": 999})
    assert transition(state_in(S.LEAD), other, scenario(), T0 + 700).state.status is S.BOT
    again = client("back again", 71, session_id=None, at=T0 + 800)
    assert transition(closed, again, scenario(), T0 + 800).state.status is S.BOT


def test_a_failure_minted_before_the_new_session_is_ignored() -> None:
    """A chat message of the previous session failing late does not trigger a handoff now."""
    state, _ = run(state_in(S.LEAD), client("new question", 90, session_id=None))
    failed = EffectFailed(
        effect_kind="SendMessage",
        error_code="X",
        effect_id=f"{MEMBER}:{CHAT}:{SESSION}:2:0",
        session_id=SESSION,
    )
    assert EffectId.parse(failed.effect_id).seq == 2
    assert not transition(state, failed, scenario(), T0).changed


@pytest.mark.parametrize(
    ("status", "failure", "expected", "kinds"),
    [
        (
            S.OPERATOR_QUEUE,
            EffectFailed(effect_kind="HandToQueue", error_code="WRONG_CHAT"),
            None,
            (),
        ),
        (
            S.OPERATOR_QUEUE,
            EffectFailed(effect_kind="HandToQueue", error_code="ACCESS_DENIED"),
            S.FAILED,
            ("CancelTimer",),
        ),
        (
            S.OPERATOR,
            EffectFailed(effect_kind="Transfer", error_code="OPERATOR_WRONG"),
            S.OPERATOR_QUEUE,
            ("HandToQueue",),
        ),
        (
            S.FINISHED,
            EffectFailed(effect_kind="FetchTranscript", error_code="ACCESS_DENIED"),
            S.FINISHED,
            ("SaveHeadVote",),
        ),
        (
            S.FINISHED,
            EffectFailed(effect_kind="CreateLead", error_code="ACCESS_DENIED"),
            S.FAILED,
            (),
        ),
        (S.VOTED, EffectFailed(effect_kind="CreateLead", error_code=""), S.FAILED, ()),
    ],
)
def test_effect_failures(
    status: DialogStatus,
    failure: EffectFailed,
    expected: DialogStatus | None,
    kinds: tuple[str, ...],
) -> None:
    """WRONG_CHAT means already queued; a refused transfer falls back to the queue; a failed
    transcript still rates; a lead that cannot be made fails the dialog."""
    failure = dataclasses.replace(failure, session_id=SESSION)
    result = transition(state_in(status), failure, scenario(), T0)
    assert tuple(e.kind for e in result.effects) == kinds
    if expected is None:
        assert not result.changed
    else:
        assert result.state.status is expected


def test_a_failed_vote_does_not_block_the_lead() -> None:
    """When the head vote cannot be saved, the lead step still completes the dialog."""
    state = state_in(S.FINISHED)
    state.transcript_pending = False
    state, _ = run(
        state,
        EffectFailed(effect_kind="SaveHeadVote", error_code="ACCESS_DENIED", session_id=SESSION),
        LeadCreated(session_id=SESSION, lead_id=7),
    )
    assert state.status is S.LEAD
    assert state.failure == "vote: ACCESS_DENIED"
    assert state.lead_id == 7


@pytest.mark.parametrize("status", list(S))
def test_state_round_trips_through_json(status: DialogStatus) -> None:
    """The stored form gives back an equal state."""
    state, _ = run(state_in(status), input_of("client_message"))
    assert DialogState.from_json(state.to_json()) == state


def test_history_is_bounded() -> None:
    """Only the last 50 transitions are kept, each with its input and statuses."""
    state: DialogState | None = None
    for i in range(70):
        state = transition(state, client(f"question {i}?", 1000 + i), scenario(), T0).state
    assert state is not None
    assert len(state.history) == 50
    assert state.history[-1].input == "client_message"
    assert '"from":' in state.to_json()


def test_machine_imports_no_io_libraries() -> None:
    """The machine and its helpers stay pure: no aiohttp, redis or arq in dialog/ or events/."""
    import sys
    from pathlib import Path

    import orchestrator

    root = Path(orchestrator.__file__).parent
    pure = [*sorted((root / "dialog").glob("*.py")), *sorted((root / "events").glob("*.py"))]
    assert len(pure) >= 12
    for path in pure:
        text = path.read_text()
        for lib in ("aiohttp", "redis", "arq"):
            assert f"import {lib}" not in text, (path.name, lib)
            assert f"from {lib}" not in text, (path.name, lib)
    assert "orchestrator.dialog.machine" in sys.modules


_inputs = st.sampled_from(
    [
        "client_message",
        "operator_message",
        "bot_joined",
        "session_started",
        "session_finished",
        "message_updated",
        "timer_fired",
        "transcript_fetched",
        "vote_saved",
        "lead_created",
        "effect_failed",
    ]
)
_texts = st.sampled_from(
    ["hi", "0", "operator", "price?", "Jane", "jane@example.com", "+1 555 123 4567", "???"]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_inputs, _texts, st.integers(1, 40)), min_size=1, max_size=30))
def test_random_input_sequences_never_crash_or_repeat_effect_ids(
    steps: list[tuple[str, str, int]],
) -> None:
    """Any order of realistic inputs yields states that round-trip and unique effect ids;
    the only error ever raised is IllegalTransition."""
    state: DialogState | None = None
    ids: set[str] = set()
    for kind, text, n in steps:
        inp = input_of(kind)
        if isinstance(inp, ClientMessage | OperatorMessage):
            inp = dataclasses.replace(inp, text=text, message_id=n)
        if isinstance(inp, TimerFired) and state is not None and state.timers:
            name, token = sorted(state.timers.items())[0]
            inp = TimerFired(name=name, token=token)
        try:
            result = transition(state, inp, scenario(), T0)
        except IllegalTransition:
            continue
        state = result.state
        new_ids = [e.effect_id for e in result.effects]
        assert not ids & set(new_ids)
        ids |= set(new_ids)
        assert DialogState.from_json(state.to_json()) == state


def test_run_inputs_folds_an_events_inputs_into_one_outcome() -> None:
    """Several inputs of one event give one state and all their effects, ids unique."""
    from orchestrator.dialog.machine import run_inputs

    outcome = run_inputs(None, [input_of("bot_joined"), input_of("client_message")], scenario(), T0)
    assert outcome is not None
    assert outcome.state.seq == 2
    ids = [e.effect_id for e in outcome.effects]
    assert len(ids) == len(set(ids)) == 4
    assert run_inputs(None, [], scenario(), T0) is None
    same = run_inputs(outcome.state, [input_of("bot_joined")], scenario(), T0)
    assert same is not None
    assert not same.changed


@pytest.mark.parametrize("status", [S.OPERATOR_QUEUE, S.OPERATOR])
def test_contact_data_written_to_a_person_is_kept_quietly(status: DialogStatus) -> None:
    """A client who gives an e-mail or phone while a person holds the dialog (a handoff
    overtook the bot's question) gets no answer from the bot, and the data reaches the lead;
    a text of no recognizable shape is no name, and a second e-mail does not replace the first."""
    state, effects = run(state_in(status), client("jane@example.com", 40))
    assert state.data.email == "jane@example.com"
    assert "SendMessage" not in effects
    state, _ = run(state, client("Thanks, bye", 41), client("+1 555 0100 200", 42))
    state, _ = run(state, client("other@example.com", 43))
    assert (state.data.name, state.data.email, state.data.phone) == (
        None,
        "jane@example.com",
        "+1 555 0100 200",
    )


def test_a_late_join_in_the_second_of_the_close_belongs_to_the_closed_session() -> None:
    """A fast dialog: the bot's fetched join arrives after the offline finish, both stamped
    the same whole second. It is that session's join, not a new session (which would drop the
    closed session's rating and lead and leave the dialog waiting in a phantom session)."""
    closed = state_in(S.FINISHED)
    assert closed.closed_at is not None
    join = BotJoined(bot_id=BOT, at=closed.closed_at, **{**PORTAL, "session_id": None})
    result = transition(closed, join, scenario(), closed.closed_at)
    assert not result.changed
    assert result.state is not None
    assert result.state.status is S.FINISHED
    later = BotJoined(bot_id=BOT, at=closed.closed_at + 1, **{**PORTAL, "session_id": None})
    assert transition(closed, later, scenario(), closed.closed_at + 1).state.status is S.BOT
