"""After the close: the rating policy and the vote/lead steps, each done by its owner only.

How the client's like/dislike reaches us (imopenlines/lib/session.php, rest.php): neither
`imopenlines.session.history.get` nor `imopenlines.dialog.get` has a VOTE field, and the
portal's `OnSessionVote` is a module event, not a REST event. What REST does show is the
close message: `Session::finish` posts it with the params `IMOL_VOTE_SID` (the session) and
`IMOL_VOTE_USER` (the session's VOTE: 5 like, 1 dislike, 0 none), and `Session::voteAsUser`
re-sets `IMOL_VOTE_USER` on that message (END_ID) for a vote given after it. The transcript
carries message params, so `client_vote_from` reads the vote there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.dialog.effects import CreateLead, FetchTranscript, SaveHeadVote
from orchestrator.dialog.inputs import TranscriptFetched
from orchestrator.dialog.scenario import Evaluation
from orchestrator.dialog.state import DialogState, DialogStatus
from orchestrator.dialog.step import Step, render

__all__ = [
    "ORIGINATOR_ID",
    "advance",
    "apply_transcript",
    "client_vote_from",
    "emit_vote",
    "first_response_s",
    "handling_s",
    "on_close",
    "origin_id",
    "rate",
]

ORIGINATOR_ID = "openlines-orchestrator"
LIKE, DISLIKE = 5, 1  # the session's VOTE values (Session::VOTE_LIKE / VOTE_DISLIKE)


def _param(params: Mapping[str, Any], name: str) -> Any:
    # the key as stored (IMOL_VOTE_USER) or in the REST encoder's lower-case style (imolvoteuser)
    wanted = name.replace("_", "").lower()
    return next((v for k, v in params.items() if k.replace("_", "").lower() == wanted), None)


def client_vote_from(session_id: int, params_in_order: Iterable[Mapping[str, Any]]) -> int | None:
    """The client's vote (LIKE or DISLIKE) from the session's message params, latest first."""
    vote: int | None = None
    for params in params_in_order:
        raw, sid = _param(params, "IMOL_VOTE_USER"), _param(params, "IMOL_VOTE_SID")
        if raw is None or (sid is not None and str(sid) != str(session_id)):
            continue
        try:
            value = int(raw)
        except (TypeError, ValueError):
            continue
        vote = value if value in (LIKE, DISLIKE) else None  # 0: the client did not vote
    return vote


def first_response_s(st: DialogState) -> float | None:
    """Seconds from the handoff (or the session start) to the first operator message."""
    start = st.handed_off_at or st.started_at
    if st.first_operator_response_at is None or start is None:
        return None
    return max(0.0, st.first_operator_response_at - start)


def handling_s(st: DialogState) -> float | None:
    """Seconds from the operator taking the dialog to the close."""
    start = st.operator_accepted_at or st.first_operator_response_at
    if start is None or st.closed_at is None:
        return None
    return max(0.0, st.closed_at - start)


def rate(st: DialogState, policy: Evaluation) -> tuple[int, str]:
    """Rating 1-5 and its comment: the client's vote, less a penalty per missed time target."""
    if st.client_vote == LIKE:
        base, vote = policy.like_rating, "like"
    elif st.client_vote == DISLIKE:
        base, vote = policy.dislike_rating, "dislike"
    else:
        base, vote = policy.no_vote_rating, "none"
    if not _handed_off(st):
        # No operator took part: the time targets are the operators', so only the vote counts.
        why = "after hours" if st.after_hours else "the bot handled it alone"
        return base, f"Client vote: {vote}. No operator ({why}): time targets do not apply."
    first, handling = first_response_s(st), handling_s(st)
    missed = 0
    if first is None or first > policy.first_response_target_s:
        missed += 1  # never answered counts as late
    if handling is not None and handling > policy.handling_target_s:
        missed += 1
    rating = min(5, max(1, base - missed * policy.penalty_per_missed_target))
    comment = (
        f"Client vote: {vote}. "
        f"First response: {_secs(first)} (target {policy.first_response_target_s} s). "
        f"Handling: {_secs(handling)} (target {policy.handling_target_s} s). "
        f"Missed targets: {missed}."
    )
    return rating, comment


def _handed_off(st: DialogState) -> bool:
    return st.handed_off_at is not None or st.operator_id is not None


def _secs(value: float | None) -> str:
    return "none" if value is None else f"{round(value)} s"


def origin_id(st: DialogState) -> str:
    """Our id for the session in the CRM (ORIGIN_ID): stable across retries and crashes."""
    session = st.session_id if st.session_id else f"e{st.epoch}"
    return f"{st.member_id}:{st.chat_id}:{session}"


def on_close(step: Step, at: float) -> None:
    """The portal closed the session: start the rating and lead steps this scenario owns."""
    st, policy = step.state, step.scenario.evaluation
    step.cancel_all()
    st.status, st.closed_at, st.closing, st.asking = DialogStatus.FINISHED, at, False, None
    if policy.vote_owner == "orchestrator":
        # Every closed session is evaluated, the bot-only ones too. The client's vote is on the
        # close message and, after a handoff, the operator's times are only in the history.
        # When no event told us the session's id (the Open Lines copies of a message and the
        # session events carry none, and the bot's copy may arrive second and be dropped as
        # the same message), the chat's history names it: read by chat, it is the newest one.
        st.vote_pending = st.transcript_pending = True
        step.emit(FetchTranscript(session_id=st.session_id, chat_id=st.chat_id))
    if policy.lead_owner == "orchestrator":
        st.lead_pending = True
        if st.session_id is not None or not st.transcript_pending:
            step.emit(_lead(st, policy))
        # else the lead waits for the transcript: its ORIGIN_ID names the session
    advance(st)


def after_transcript(step: Step, session_was_known: bool) -> None:
    """Rate, and create the lead that waited for the session's id (see on_close)."""
    emit_vote(step)
    st, policy = step.state, step.scenario.evaluation
    if not session_was_known and st.lead_pending and policy.lead_owner == "orchestrator":
        step.emit(_lead(st, policy))


def _lead(st: DialogState, policy: Evaluation) -> CreateLead:
    data = st.data
    fields: dict[str, object] = {
        "TITLE": render(policy.lead_title, {"name": data.name}),
        "SOURCE_ID": "OPENLINE" if st.handed_off_at else "WEB",
        "COMMENTS": f"Open Lines chat {st.chat_id}, session {st.session_id or '-'}",
    }
    if data.name:
        fields["NAME"] = data.name
    if data.email:
        fields["EMAIL"] = [{"VALUE": data.email, "VALUE_TYPE": "WORK"}]
    if data.phone:
        fields["PHONE"] = [{"VALUE": data.phone, "VALUE_TYPE": "WORK"}]
    return CreateLead(
        session_id=st.session_id,
        chat_id=st.chat_id,
        fields=fields,
        originator_id=ORIGINATOR_ID,
        origin_id=origin_id(st),
    )


def apply_transcript(st: DialogState, fetched: TranscriptFetched) -> None:
    """Fill in what the bot could not see; what it saw itself wins."""
    st.operator_id = st.operator_id or fetched.operator_id
    st.operator_accepted_at = st.operator_accepted_at or fetched.operator_accepted_at
    st.first_operator_response_at = (
        st.first_operator_response_at or fetched.first_operator_response_at
    )
    st.client_vote = fetched.client_vote or st.client_vote
    st.session_id = st.session_id or fetched.session_id
    st.transcript_pending = False


def emit_vote(step: Step) -> None:
    """Rate with what we know now and save it as the supervisor's vote."""
    st = step.state
    st.transcript_pending = False
    if st.session_id is None:
        st.vote_pending = False
        return
    rating, comment = rate(st, step.scenario.evaluation)
    st.vote = rating
    step.emit(SaveHeadVote(session_id=st.session_id, rating=rating, comment=comment))


def advance(st: DialogState) -> None:
    """Move along finished -> voted -> lead as the pending steps complete."""
    if st.status is DialogStatus.FINISHED and not st.vote_pending:
        st.status = DialogStatus.VOTED
    if st.status is DialogStatus.VOTED and not st.lead_pending:
        st.status = DialogStatus.LEAD
