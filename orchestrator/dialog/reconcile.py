"""Reconciliation: a dialog left open by a lost `OnSessionFinish` push finds out by asking.

Bitrix24 pushes each event once and never retries, so a dialog whose finish push was lost would
wait forever in an active status. While a dialog is active (BOT too: the silence timer only asks
the portal to finish, and the push confirming it can be lost just the same) the machine keeps a
`reconcile` timer armed; each firing emits `CheckSession`, which the executor answers with
`SessionChecked`: the chat's current session as `imopenlines.dialog.get` shows it (position 5 of
ENTITY_DATA_1). Closing a session sets that position to 0, and a new session writes its own id
there (docs/bitrix24.md §4.2), so any other value than ours means the portal moved on: the
machine then runs the same close tail as a `session_finished` (rating, lead), recorded in the
history as `session_reconciled`. A check that finds the session still open changes nothing, and
the firing that asked is left out of the history (it would crowd out the real path).
"""

from __future__ import annotations

from orchestrator.dialog import evaluation
from orchestrator.dialog.effects import CheckSession
from orchestrator.dialog.inputs import SessionChecked
from orchestrator.dialog.state import ACTIVE, DialogState
from orchestrator.dialog.step import Step

__all__ = ["JITTER", "RECONCILED", "TIMER", "checked", "delay_s", "fired", "keep_armed", "moved_on"]

TIMER = "reconcile"
RECONCILED = "session_reconciled"  # the history's name for a finish found by a check
JITTER = 0.2  # the interval is stretched by up to this share, by chat id


def delay_s(chat_id: int, interval_s: int) -> float:
    """The interval, stretched by a fixed share of up to JITTER per chat: dialogs that went
    active together drift apart instead of asking the portal all at once."""
    share = (chat_id * 2_654_435_761 % 2**32) / 2**32  # Knuth's multiplicative hash
    return round(interval_s * (1 + JITTER * share), 3)


def keep_armed(step: Step) -> None:
    """After a transition: an active dialog has its reconcile timer armed, once."""
    st, interval = step.state, step.scenario.timers.reconcile_s
    if interval and st.status in ACTIVE and TIMER not in st.timers:
        step.schedule(TIMER, delay_s(st.chat_id, interval))


def fired(step: Step) -> None:
    """The timer came due: ask the portal (keep_armed arms the next one)."""
    st = step.state
    if st.status in ACTIVE:
        step.emit(CheckSession(chat_id=st.chat_id, session_id=st.session_id))
        step.quiet = True


def moved_on(st: DialogState, current_session_id: int) -> bool:
    """Whether the portal's current session for the chat says ours is over: none is open, or
    another one is. Without our own id only "none open" tells."""
    if not current_session_id:
        return True
    return st.session_id is not None and current_session_id != st.session_id


def checked(step: Step, res: SessionChecked) -> bool:
    """The portal's answer: finish the session it no longer has; else nothing changes."""
    st = step.state
    if st.status not in ACTIVE or not moved_on(st, res.current_session_id):
        return False
    st.session_id = st.session_id or res.session_id
    evaluation.on_close(step, res.at)
    step.label = RECONCILED
    return True
