"""The dialog state machine, PURE: `transition(state, input, scenario, now) -> Transition`.

    bot ──► operator_queue ──► operator ──► finished ──► voted ──► lead
     │            ▲                ▲            │
     └────────────┴── (transfer) ──┘            └──► failed   (a client message after the
                                                              close starts a new session)

While active, a `reconcile` timer asks the portal whether the session is still open, so a lost
finish push is found out (dialog/reconcile.py).

No I/O here: effects come back as frozen data with deterministic ids. Replays are no-ops:
a message id already seen, a duplicate join/start/finish, a timer whose token is stale, a
result for another session. `IllegalTransition` is raised only for inputs that cannot happen
(e.g. a vote result for the current session while it is still open).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.dialog import answers, edits, evaluation, reconcile
from orchestrator.dialog.bot import (
    begin,
    finish_by_bot,
    handoff,
    note_contact,
    on_button,
    on_client_message,
)
from orchestrator.dialog.effects import Effect, EffectId, HandToQueue, Transfer, with_ids
from orchestrator.dialog.inputs import (
    Answered,
    BotJoined,
    ButtonPressed,
    ClientMessage,
    EffectFailed,
    Input,
    LeadCreated,
    MessageDeleted,
    MessageUpdated,
    OperatorMessage,
    SessionChecked,
    SessionFinished,
    SessionStarted,
    TimerFired,
    TranscriptFetched,
    VoteSaved,
)
from orchestrator.dialog.scenario import Scenario, ScenarioSet
from orchestrator.dialog.state import (
    ACTIVE,
    CLOSED,
    HISTORY_LIMIT,
    SEEN_LIMIT,
    TERMINAL,
    Collected,
    DialogState,
    DialogStatus,
    HistoryEntry,
)
from orchestrator.dialog.step import Step
from orchestrator.errors import IllegalTransition

__all__ = [
    "ACTIVE",
    "CLOSED",
    "TERMINAL",
    "Collected",
    "DialogState",
    "DialogStatus",
    "Transition",
    "run_inputs",
    "scenario_for",
    "transition",
]

S = DialogStatus
_Opener = ClientMessage | BotJoined | SessionStarted | OperatorMessage | SessionFinished
Result = TranscriptFetched | VoteSaved | LeadCreated | EffectFailed
_Stamped = EffectFailed | SessionChecked  # results that name the effect they answer
_AFTER = frozenset({"FetchTranscript", "SaveHeadVote", "CreateLead"})  # post-close effect kinds


@dataclass(frozen=True)
class Transition:
    """The outcome: the next state and the effects to run; `changed` False means a no-op."""

    state: DialogState
    effects: tuple[Effect, ...] = ()
    changed: bool = True


def scenario_for(scenarios: ScenarioSet, state: DialogState | None, inp: Input) -> Scenario:
    """The scenario of the dialog's line (from the state, else from the input)."""
    line_id = state.line_id if state is not None else getattr(inp, "line_id", None)
    return scenarios.for_line(line_id, state.language if state is not None else None)


def transition(state: DialogState | None, inp: Input, scenario: Scenario, now: float) -> Transition:
    """Apply one input to a dialog; pure and deterministic."""
    created = state is None
    if state is None:
        if not isinstance(inp, _Opener):
            raise IllegalTransition(f"{inp.kind} for a dialog that does not exist")
        state = _fresh(inp)
    step = Step(state=state.model_copy(deep=True), scenario=scenario, now=now)
    if not _dispatch(step, inp) and not created:
        return Transition(state=state, changed=False)
    reconcile.keep_armed(step)
    st = step.state
    st.seq += 1
    if not step.quiet:
        entry = HistoryEntry(
            at=inp.at, input=step.label or inp.kind, from_=state.status.value, to=st.status.value
        )
        st.history = [*st.history, entry][-HISTORY_LIMIT:]
    effects = with_ids(step.effects, st.member_id, st.chat_id, st.session_id, st.seq)
    return Transition(state=st, effects=tuple(effects))


def run_inputs(
    state: DialogState | None, inputs: list[Input], scenario: Scenario, now: float
) -> Transition | None:
    """Apply the inputs of one event in order as one outcome; None when there are none."""
    outcome: Transition | None = None
    effects: list[Effect] = []
    for inp in inputs:
        step = transition(state, inp, scenario, now)
        if step.changed or state is None:
            state = step.state
            effects += step.effects
            outcome = Transition(state=state, effects=tuple(effects))
    if outcome is None and state is not None and inputs:
        return Transition(state=state, changed=False)
    return outcome


def _fresh(inp: _Opener) -> DialogState:
    return DialogState(
        member_id=inp.member_id,
        chat_id=inp.chat_id,
        session_id=inp.session_id,
        line_id=inp.line_id,
        started_at=inp.at,
    )


def _dispatch(step: Step, inp: Input) -> bool:
    """Apply `inp` to the working state; False when it changes nothing (a no-op)."""
    if isinstance(inp, ClientMessage):
        return _client_message(step, inp)
    if isinstance(inp, OperatorMessage):
        return _operator_message(step, inp)
    if isinstance(inp, BotJoined | SessionStarted):
        return _session_opened(step, inp)
    if isinstance(inp, SessionFinished):
        return _session_finished(step, inp)
    if isinstance(inp, MessageUpdated):
        return edits.on_edited(step, inp)
    if isinstance(inp, MessageDeleted):
        return edits.on_deleted(step, inp)
    if isinstance(inp, ButtonPressed):
        return on_button(step, inp)
    if isinstance(inp, TimerFired):
        return _timer(step, inp)
    if isinstance(inp, Answered):
        return not _is_other_session(step.state, inp.session_id) and answers.on_answered(step, inp)
    if isinstance(inp, SessionChecked):
        stale = _is_other_session(step.state, inp.session_id) or _minted_before_session(
            step.state, inp
        )
        return not stale and reconcile.checked(step, inp)
    return _result(step, inp)


def _seen(step: Step, message_id: int) -> bool:
    st = step.state
    if message_id in st.seen:
        return True
    st.seen = [*st.seen, message_id][-SEEN_LIMIT:]
    return False


def _new_session(step: Step, inp: ClientMessage | BotJoined | SessionStarted) -> None:
    """Start over in the same chat; the old session's post-close effects carry on by themselves."""
    old = step.state
    if old.status is S.FINISHED and old.transcript_pending:
        evaluation.emit_vote(step)  # the transcript would come back as stale: rate now
    step.state = DialogState(
        member_id=old.member_id,
        chat_id=old.chat_id,
        session_id=inp.session_id,
        line_id=inp.line_id or old.line_id,
        user_code=old.user_code,
        client_user_id=old.client_user_id,
        bot_ids=old.bot_ids,
        seq=old.seq,
        session_seq=old.seq + 1,
        epoch=old.epoch + 1,
        started_at=inp.at,
        language=old.language,
        seen=old.seen,
        history=old.history,
    )


def _adopt(step: Step, inp: ClientMessage | BotJoined | SessionStarted) -> None:
    """Learn ids the first events of a session may not carry."""
    st = step.state
    st.session_id = st.session_id or inp.session_id
    st.line_id = st.line_id or inp.line_id
    if isinstance(inp, ClientMessage | BotJoined):
        st.user_code = st.user_code or inp.user_code
        bot = inp.bot_id
        if bot and bot not in st.bot_ids:
            st.bot_ids = [*st.bot_ids, bot]
    if isinstance(inp, ClientMessage) and inp.user_id:
        st.client_user_id = st.client_user_id or inp.user_id


def _is_other_session(st: DialogState, session_id: int | None) -> bool:
    return bool(session_id and st.session_id and session_id != st.session_id)


def _late_for_closed(st: DialogState, inp: ClientMessage | BotJoined | SessionStarted) -> bool:
    """An opener of the session we already closed, reaching us after its close: the bot's events
    and the session events come by different ways (fetched log, offline queue, push) with no
    order between them, and the session events may name no session. What happened before the
    close belongs to the closed session, unless it names another one."""
    if st.status not in CLOSED or st.closed_at is None or _is_other_session(st, inp.session_id):
        return False
    # The portal's times are whole seconds: a join or start in the very second of the close is
    # that session's (a fast dialog opens and closes within one second, and its fetched join may
    # come after the offline finish); a new session's opener names its session or is a message.
    if isinstance(inp, BotJoined | SessionStarted):
        return inp.at <= st.closed_at
    return inp.at < st.closed_at


def _client_message(step: Step, msg: ClientMessage) -> bool:
    if msg.message_id in step.state.seen:
        return False
    if _late_for_closed(step.state, msg):
        _seen(step, msg.message_id)
        return False
    if step.state.status in CLOSED or _is_other_session(step.state, msg.session_id):
        _new_session(step, msg)
    _seen(step, msg.message_id)
    _adopt(step, msg)
    st = step.state
    if st.status is S.BOT:
        on_client_message(step, msg)
    else:  # a human owns the dialog: the bot keeps quiet, keeps time and contact data
        st.last_message, st.last_client_at = msg.text.strip(), msg.at
        note_contact(step, st.last_message)
    return True


def _operator_message(step: Step, msg: OperatorMessage) -> bool:
    st = step.state
    if msg.user_id in st.bot_ids or st.status in CLOSED or _seen(step, msg.message_id):
        return False  # our own bot's words, a late echo after the close, or a replay
    if st.status is not S.OPERATOR:
        # an operator wrote while the bot or the queue had it: a human took over
        st.status, st.asking = S.OPERATOR, None
        st.operator_accepted_at = st.operator_accepted_at or msg.at
        step.cancel_all()
    st.operator_id = st.operator_id or msg.user_id
    st.first_operator_response_at = st.first_operator_response_at or msg.at
    return True


def _session_opened(step: Step, inp: BotJoined | SessionStarted) -> bool:
    st = step.state
    if st.status in CLOSED and inp.session_id and inp.session_id == st.session_id:
        return False  # a late start of the session that is already closed
    if _late_for_closed(st, inp):
        st.session_id = st.session_id or inp.session_id
        return False
    if st.status in CLOSED or _is_other_session(st, inp.session_id):
        _new_session(step, inp)
    elif isinstance(inp, SessionStarted) or st.status is not S.BOT or st.greeted:
        before = (st.session_id, st.line_id)
        _adopt(step, inp)
        return (st.session_id, st.line_id) != before  # a repeat tells us nothing new
    _adopt(step, inp)
    if isinstance(inp, BotJoined):
        begin(step, inp.at)
    return True


def _session_finished(step: Step, inp: SessionFinished) -> bool:
    st = step.state
    if st.closed_at is not None and (st.status in CLOSED):
        return False  # the same close again
    st.session_id = st.session_id or inp.session_id
    evaluation.on_close(step, inp.at)
    return True


def _timer(step: Step, fired: TimerFired) -> bool:
    st = step.state
    if st.timers.get(fired.name) != fired.token:
        return False  # cancelled or re-armed since: a stale firing
    del st.timers[fired.name]
    timers = step.scenario.timers
    if fired.name == "silence" and st.status is S.BOT and not st.closing:
        step.say(timers.silence_message)
        finish_by_bot(step)
    elif fired.name == "accept" and st.status is S.OPERATOR_QUEUE and timers.accept_fallback:
        target = timers.accept_fallback
        step.emit(Transfer(chat_id=st.chat_id, user_id=target.user_id, queue_id=target.queue_id))
        st.handoff_reason = f"{st.handoff_reason or 'handoff'}+accept_timeout"
        if target.user_id is not None:
            st.status, st.operator_id = S.OPERATOR, target.user_id
            st.operator_accepted_at = fired.at
        else:
            step.schedule("accept", timers.accept_timeout_s)
    elif fired.name == reconcile.TIMER:
        reconcile.fired(step)
    return True


def _result(step: Step, res: Result) -> bool:
    st = step.state
    if _is_other_session(st, res.session_id) or _minted_before_session(st, res):
        return False  # a result for an earlier session of this chat
    if st.status in ACTIVE and (not isinstance(res, EffectFailed) or res.effect_kind in _AFTER):
        if st.epoch > 0:
            return False  # post-close work of an earlier session finishing late
        raise IllegalTransition(f"{res.kind} while the only session is still {st.status}")
    if isinstance(res, EffectFailed):
        return _failed(step, res)
    if isinstance(res, TranscriptFetched):
        if not st.transcript_pending:
            return False
        known = st.session_id is not None
        evaluation.apply_transcript(st, res)
        evaluation.after_transcript(step, known)
    elif isinstance(res, VoteSaved):
        if not st.vote_pending:
            return False
        st.vote_pending, st.vote_saved = False, True
    else:
        if not st.lead_pending:
            return False
        st.lead_pending, st.lead_done, st.lead_id = False, True, res.lead_id
    if st.status not in TERMINAL:
        evaluation.advance(st)
    return True


def _minted_before_session(st: DialogState, res: Result | SessionChecked) -> bool:
    if not isinstance(res, _Stamped):
        return False
    try:
        return EffectId.parse(res.effect_id).seq < st.session_seq
    except ValueError:  # not one of ours: nothing to tell it by
        return False


def _failed(step: Step, failure: EffectFailed) -> bool:
    st, kind, code = step.state, failure.effect_kind, failure.error_code
    if st.status in TERMINAL or kind == "CheckSession":
        return False  # a check that failed: the reconcile timer asks again
    if kind == "AskAnswerer":
        return answers.ask_failed(step, failure)
    if kind == "FetchTranscript" and st.transcript_pending:
        # rate with what the bot saw itself (no rating without a session id; the waiting lead
        # goes out under our own id for the session)
        evaluation.after_transcript(step, st.session_id is not None)
    elif kind == "SaveHeadVote" and st.vote_pending:
        st.vote_pending, st.failure = False, f"vote: {code}"
        evaluation.advance(st)
    elif kind == "CreateLead" and st.lead_pending:
        st.lead_pending, st.status, st.failure = False, S.FAILED, f"lead: {code}"
    elif kind == "Transfer" and st.status in (S.OPERATOR_QUEUE, S.OPERATOR) and not st.closed_at:
        # the target refused (OPERATOR_WRONG, inactive user): fall back to the line's queue
        st.status, st.operator_id, st.operator_accepted_at = S.OPERATOR_QUEUE, None, None
        step.emit(HandToQueue(chat_id=st.chat_id))
    elif kind == "HandToQueue" and st.status is S.OPERATOR_QUEUE:
        if code == "WRONG_CHAT":
            return False  # the bot is no longer the operator: the portal queued it already
        st.status, st.failure = S.FAILED, f"handoff: {code}"
        step.cancel_all()
    elif st.status is S.BOT and step.scenario.handoff.on_bot_failure:
        handoff(step, "bot_failure", failure.at)
    elif st.status is S.BOT:
        st.status, st.failure = S.FAILED, f"{kind}: {code}"
        step.cancel_all()
    else:
        return False  # e.g. a chat message that failed after a human took over
    return True
