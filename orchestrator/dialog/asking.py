"""Asking the line's answerer (pure): the request for one client message, the effect that carries
it, and the recent turns the answerer is shown.

A question is an effect with a deterministic id like every other, so a replayed transition asks
the same question under the same id, and its answer comes back as an input naming the question's
`turn` (dialog/answers.py applies it). One question is out at a time: messages that arrive
meanwhile are noted and asked about together once the answer is in, so each client message is
answered once, in order.
"""

from __future__ import annotations

from orchestrator.dialog.actions import AnswerRequest, DialogView
from orchestrator.dialog.effects import AskAnswerer
from orchestrator.dialog.state import PendingAsk
from orchestrator.dialog.step import Step

__all__ = ["ask", "request_for"]


def request_for(step: Step, text: str, turn: int, first: bool) -> AnswerRequest:
    """What the answerer is asked about `text`."""
    st, scenario = step.state, step.scenario
    fields = [spec.name for spec in scenario.collect.fields]
    return AnswerRequest(
        turn=turn,
        message=text,
        dialog=DialogView(
            member_id=st.member_id,
            chat_id=st.chat_id,
            session_id=st.session_id,
            line_id=st.line_id,
            language=st.language or scenario.language,
            asking=st.asking if st.asking in fields else None,
            collected={name: st.data.get(name) for name in fields},
            skipped=list(st.skipped),
            answers=st.answers,
            first_message=first,
        ),
        recent=list(st.recent),
        fields=fields,
        languages=list(scenario.languages or [scenario.language]),
    )


def ask(step: Step, text: str, first: bool) -> None:
    """Put the question out; while one is out, note that there is more to answer."""
    st = step.state
    if st.pending_ask is not None:
        st.unasked = True
        return
    turn = st.seq + 1  # this transition's seq: unique over the dialog's life
    request = request_for(step, text, turn, first)
    st.pending_ask, st.unasked = PendingAsk(turn=turn, text=text, first=first), False
    st.answers += 1
    step.emit(
        AskAnswerer(
            chat_id=st.chat_id,
            line_id=st.line_id,
            turn=turn,
            request=request.model_dump(mode="json"),
        )
    )
