"""Reconciliation in the machine (dialog/reconcile.py): the timer an active dialog keeps armed,
the check it asks for, and what the portal's answer does."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.dialog import reconcile
from orchestrator.dialog.effects import CheckSession, EffectId, ScheduleTimer
from orchestrator.dialog.inputs import (
    ClientMessage,
    EffectFailed,
    OperatorMessage,
    SessionChecked,
    SessionFinished,
    TimerFired,
)
from orchestrator.dialog.machine import DialogState, DialogStatus, Transition, transition
from orchestrator.dialog.scenario import Scenario
from tests.unit.machine_fixtures import CHAT, OPERATOR, PORTAL, SESSION, T0, scenario, state_in

S = DialogStatus
INTERVAL = 300


def _scenario(interval: int | None = INTERVAL) -> Scenario:
    base = scenario()
    timers = base.timers.model_copy(update={"reconcile_s": interval})
    return base.model_copy(update={"timers": timers})


def _step(state: DialogState | None, inp: object, sc: Scenario | None = None) -> Transition:
    return transition(state, inp, sc or _scenario(), T0 + 700)  # type: ignore[arg-type]


def _armed(status: DialogStatus) -> DialogState:
    """An active dialog whose reconcile timer is armed."""
    st = state_in(status)
    st.timers = {**st.timers, reconcile.TIMER: "reconcile:0:3"}
    return st


def _fire(st: DialogState) -> Transition:
    return _step(
        st, TimerFired(name=reconcile.TIMER, token=st.timers[reconcile.TIMER], at=T0 + 900)
    )


def _check(st: DialogState, result: Transition, current: int) -> Transition:
    [check] = [e for e in result.effects if isinstance(e, CheckSession)]
    answer = SessionChecked(
        session_id=check.session_id,
        current_session_id=current,
        effect_id=str(check.effect_id),
        at=T0 + 901,
    )
    return _step(st, answer)


def test_the_delay_is_the_interval_stretched_by_a_fixed_share_per_chat() -> None:
    """Deterministic per chat, within [interval, interval * (1 + JITTER)), spread over chats."""
    delays = {chat: reconcile.delay_s(chat, 300) for chat in range(1, 201)}
    assert all(300 <= d < 300 * (1 + reconcile.JITTER) for d in delays.values())
    assert reconcile.delay_s(17, 300) == delays[17]
    assert len(set(delays.values())) > 150


def test_entering_an_active_status_arms_the_timer() -> None:
    """The first message of a dialog (BOT) arms it; the handoff to the queue keeps that one."""
    first = _step(None, ClientMessage(text="Hello", message_id=1, at=T0, **PORTAL))
    armed = [e for e in first.effects if isinstance(e, ScheduleTimer) and e.name == "reconcile"]
    assert [e.delay_s for e in armed] == [reconcile.delay_s(CHAT, INTERVAL)]
    token = first.state.timers[reconcile.TIMER]
    handed = _step(first.state, ClientMessage(text="operator", message_id=2, at=T0 + 5, **PORTAL))
    assert handed.state.status is S.OPERATOR_QUEUE
    assert handed.state.timers[reconcile.TIMER] == token
    assert not [e for e in handed.effects if getattr(e, "name", "") == reconcile.TIMER]


def test_a_dialog_stored_before_reconciliation_gets_its_timer_on_the_next_step() -> None:
    """An operator dialog without the timer (stored by an earlier version) arms it."""
    st = state_in(S.OPERATOR)
    result = _step(st, OperatorMessage(text="Hi", message_id=9, user_id=OPERATOR, **PORTAL))
    assert reconcile.TIMER in result.state.timers
    assert [e.kind for e in result.effects] == ["ScheduleTimer"]


def test_no_interval_no_timer() -> None:
    """A scenario without reconcile_s (and no worker setting) never arms it."""
    result = _step(None, ClientMessage(text="Hello", message_id=1, at=T0, **PORTAL), scenario())
    assert reconcile.TIMER not in result.state.timers


def test_leaving_the_active_statuses_cancels_the_timer() -> None:
    """The portal's own finish cancels it with the others."""
    st = _armed(S.OPERATOR)
    result = _step(st, SessionFinished(at=T0 + 800, **PORTAL))
    assert result.state.status is S.FINISHED
    assert reconcile.TIMER not in result.state.timers
    assert "CancelTimer" in [e.kind for e in result.effects]


@pytest.mark.parametrize("status", [S.BOT, S.OPERATOR_QUEUE, S.OPERATOR])
def test_the_firing_asks_the_portal_and_rearms_quietly(status: DialogStatus) -> None:
    """CheckSession for our session, the next timer armed, nothing in the history."""
    st = _armed(status)
    result = _fire(st)
    kinds = [e.kind for e in result.effects]
    assert kinds == ["CheckSession", "ScheduleTimer"]
    assert result.effects[0] == dataclasses.replace(
        CheckSession(chat_id=CHAT, session_id=SESSION), effect_id=result.effects[0].effect_id
    )
    assert result.state.status is status
    assert result.state.timers[reconcile.TIMER] != st.timers[reconcile.TIMER]
    assert result.state.history == st.history
    assert result.state.seq == st.seq + 1


def test_the_session_still_open_changes_nothing() -> None:
    """The portal still names our session: a no-op, the timer stays armed for the next check."""
    st = _armed(S.OPERATOR)
    fired = _fire(st)
    answer = _check(fired.state, fired, SESSION)
    assert not answer.changed
    assert answer.state == fired.state
    assert reconcile.TIMER in answer.state.timers


@pytest.mark.parametrize(
    ("status", "current"),
    [(S.OPERATOR, 0), (S.OPERATOR_QUEUE, 0), (S.BOT, 0), (S.OPERATOR, SESSION + 1)],
)
def test_a_session_the_portal_moved_on_from_is_finished(status: DialogStatus, current: int) -> None:
    """No session open, or a newer one: the close tail (transcript, lead), the path visible in
    the history as session_reconciled."""
    st = _armed(status)
    fired = _fire(st)
    result = _check(fired.state, fired, current)
    assert result.state.status is S.FINISHED
    assert result.state.closed_at == T0 + 901
    assert {"FetchTranscript", "CreateLead"} <= {e.kind for e in result.effects}
    assert result.state.timers == {}
    last = result.state.history[-1]
    assert (last.input, last.from_, last.to) == (reconcile.RECONCILED, status.value, "finished")


def test_without_our_session_id_only_none_open_tells() -> None:
    """We never learned the session's id: another id may be ours, only 0 is a finish."""
    st = _armed(S.OPERATOR)
    st.session_id = None
    fired = _fire(st)
    assert not _check(fired.state, fired, 777).changed
    finished = _check(fired.state, fired, 0)
    assert finished.state.status is S.FINISHED
    assert [e.kind for e in finished.effects][-2:] == ["CancelTimer", "FetchTranscript"]


def test_answers_for_an_earlier_session_are_ignored() -> None:
    """Another session's answer, or one minted before this session began, is stale."""
    st = _armed(S.OPERATOR)
    other = SessionChecked(session_id=SESSION - 1, current_session_id=0, at=T0 + 901)
    assert not _step(st, other).changed
    st.session_seq = 5
    earlier = EffectId("m1", CHAT, SESSION, 4, 0)
    minted = SessionChecked(
        session_id=SESSION, current_session_id=0, effect_id=str(earlier), at=T0 + 901
    )
    assert not _step(st, minted).changed


def test_a_check_after_the_finish_arrived_is_a_no_op() -> None:
    """The finish push came after all (late, not lost): the answer changes nothing."""
    st = _armed(S.OPERATOR)
    fired = _fire(st)
    finished = _step(fired.state, SessionFinished(at=T0 + 902, **PORTAL))
    late = _check(finished.state, fired, 0)
    assert not late.changed


@pytest.mark.parametrize("status", [S.BOT, S.OPERATOR_QUEUE, S.OPERATOR])
def test_a_failed_check_is_ignored(status: DialogStatus) -> None:
    """dialog.get refused or out of tries: nothing happens (no handoff); the timer asks again."""
    st = _armed(status)
    failed = EffectFailed(
        session_id=SESSION, effect_kind="CheckSession", error_code="ACCESS_ERROR", at=T0 + 901
    )
    result = _step(st, failed)
    assert not result.changed
