"""What the machine does with the line's answer (pure): apply the one action, or the fallback.

The answer to question `turn` is applied once: an answer for another turn (a question the dialog
has moved past, a replay, an earlier session's) changes nothing. The action is validated again
against the dialog as it is now, since the state may have moved while the question was out (the
client gave the field the answerer now asks for). A failed answer — timed out, refused, invalid,
or given up after the workers asking it died — takes the line's `on_failure`: the scenario's
rules answer the same message, or the dialog goes to people.
"""

from __future__ import annotations

from orchestrator.dialog import asking
from orchestrator.dialog.actions import Ask, Finish, Handoff, Reply, parse_action
from orchestrator.dialog.bot import answer, ask_field, finish_by_bot, handoff, rules_answer
from orchestrator.dialog.effects import EffectId
from orchestrator.dialog.inputs import Answered, EffectFailed
from orchestrator.dialog.state import DialogStatus, PendingAsk
from orchestrator.dialog.step import Step

__all__ = ["ask_failed", "on_answered"]

AnyAction = Reply | Ask | Handoff | Finish


def on_answered(step: Step, res: Answered) -> bool:
    """Apply the answer to the question out; False for any other (a stale or repeated one)."""
    st = step.state
    pending = st.pending_ask
    if pending is None or res.turn != pending.turn:
        return False
    st.pending_ask = None
    if st.status is not DialogStatus.BOT or st.closing:
        st.unasked = False  # people have the dialog, or it is closing: nothing to say
        step.quiet = True
        return True
    action, failure = _validated(step, res, pending)
    if action is None:
        step.label = f"answer_failed:{failure}"
        _fallback(step, pending, failure, res.at)
    else:
        step.label = f"answered:{action.action}"
        _apply(step, action, res.at)
    if st.status is DialogStatus.BOT and not st.closing:
        if st.unasked:  # the client wrote more while we waited: one answer for all of it
            st.unasked = False
            answer(step, st.last_message, False, res.at)
        step.schedule("silence", step.scenario.timers.client_silence_s)
    return True


def ask_failed(step: Step, failure: EffectFailed) -> bool:
    """The question's effect was given up (its workers kept dying): the fallback answers."""
    try:
        turn = EffectId.parse(failure.effect_id).seq
    except ValueError:
        return False
    gave_up = f"gave_up:{failure.error_code}"
    return on_answered(
        step, Answered(turn=turn, failure=gave_up, session_id=failure.session_id, at=failure.at)
    )


def _validated(step: Step, res: Answered, pending: PendingAsk) -> tuple[AnyAction | None, str]:
    if res.action is None:
        return None, res.failure or "no_action"
    request = asking.request_for(step, pending.text, pending.turn, pending.first)
    try:
        return parse_action(res.action, request), ""
    except ValueError:
        return None, "invalid_now"


def _apply(step: Step, action: AnyAction, at: float) -> None:
    st = step.state
    if action.language is not None:
        # the answerer tells the client's language: the line's texts follow from the next step
        st.language = action.language
    match action:
        case Reply():
            st.unanswered = 0
            step.say(action.text, buttons=_pairs(action))
        case Ask():
            ask_field(step, action.field, action.text, at, _pairs(action))
        case Handoff() if st.after_hours:
            # nobody to hand to: say so and keep collecting, as for a client who asks
            step.say(step.scenario.hours.outside_message)
        case Handoff():
            handoff(step, f"answerer:{action.reason}", at, message=action.text, note=action.note)
        case Finish():
            step.say(action.text or "")
            finish_by_bot(step)


def _pairs(action: Reply | Ask) -> list[tuple[str, str]]:
    return [(b.text, b.value) for b in action.buttons]


def _fallback(step: Step, pending: PendingAsk, failure: str, at: float) -> None:
    if step.scenario.answerer.on_failure == "handoff" and not step.state.after_hours:
        handoff(step, f"answerer_{failure.split(':')[0]}", at)
    else:
        rules_answer(step, pending.text, pending.first, at)
