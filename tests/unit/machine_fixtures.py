"""Dialog states in every status and one input of every kind, for the machine's tables."""

from __future__ import annotations

import functools
from typing import Any

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
from orchestrator.dialog.scenario import Scenario
from orchestrator.dialog.scenario_file import load_scenario
from orchestrator.dialog.state import Collected, DialogState, DialogStatus

S = DialogStatus
MEMBER, CHAT, SESSION, LINE, BOT, OPERATOR = "m1", 901, 512, 1, 77, 12
T0 = 1_767_225_600.0  # a Thursday, 00:00 UTC
PORTAL: dict[str, Any] = {
    "member_id": MEMBER,
    "chat_id": CHAT,
    "session_id": SESSION,
    "line_id": LINE,
}


@functools.cache
def scenario() -> Scenario:
    """The shipped default scenario (always open, all steps owned by the orchestrator)."""
    return load_scenario(None).default


def state_in(status: DialogStatus) -> DialogState:
    """A realistic state in `status` (the bot is asking for the name while it owns the dialog)."""
    st = DialogState(
        member_id=MEMBER,
        chat_id=CHAT,
        session_id=SESSION,
        line_id=LINE,
        bot_ids=[BOT],
        status=status,
        seq=3,
        greeted=True,
        started_at=T0,
        last_client_at=T0 + 5,
        seen=[1],
    )
    if status is S.BOT:
        st.asking = "name"
        st.timers = {"silence": "silence:0:3"}
        return st
    st.handed_off_at, st.handoff_reason = T0 + 10, "keyword"
    if status is S.OPERATOR_QUEUE:
        st.timers = {"accept": "accept:0:3"}
        return st
    st.operator_id, st.operator_accepted_at = OPERATOR, T0 + 20
    st.first_operator_response_at = T0 + 30
    if status is S.OPERATOR:
        return st
    st.closed_at = T0 + 600
    st.data = Collected(name="Jane")
    if status is S.FINISHED:
        st.transcript_pending = st.vote_pending = st.lead_pending = True
    elif status is S.VOTED:
        st.vote_saved, st.lead_pending = True, True
    elif status is S.LEAD:
        st.vote_saved, st.lead_done, st.lead_id = True, True, 99
    else:
        st.vote_saved, st.failure = True, "lead: ACCESS_DENIED"
    return st


def input_of(kind: str) -> Input:
    """One input of each kind, for the current session, as it would realistically arrive."""
    at = T0 + 700
    inputs: dict[str, Input] = {
        "client_message": ClientMessage(
            text="Jane Roe", message_id=2, user_id=4567, at=at, **PORTAL
        ),
        "operator_message": OperatorMessage(
            text="Hello", message_id=3, user_id=OPERATOR, at=at, **PORTAL
        ),
        "bot_joined": BotJoined(bot_id=BOT, at=at, **{**PORTAL, "session_id": None}),
        "session_started": SessionStarted(at=at, **{**PORTAL, "session_id": None}),
        "session_finished": SessionFinished(at=at, **PORTAL),
        "message_updated": MessageUpdated(message_id=1, text="edited", at=at, **PORTAL),
        "message_deleted": MessageDeleted(message_id=1, at=at, **PORTAL),
        "timer_fired": TimerFired(name="silence", token="silence:0:3", at=at),
        "transcript_fetched": TranscriptFetched(session_id=SESSION, client_vote=5, at=at),
        "vote_saved": VoteSaved(session_id=SESSION, at=at),
        "lead_created": LeadCreated(session_id=SESSION, lead_id=99, at=at),
        "effect_failed": EffectFailed(
            session_id=SESSION, effect_kind="SendMessage", error_code="ERROR_NO_ACCESS", at=at
        ),
        # the portal shows no open session in the chat: the finish push was lost
        "session_checked": SessionChecked(session_id=SESSION, current_session_id=0, at=at),
        # the client pressed the first FAQ topic of the menu under the greeting
        "button_pressed": ButtonPressed(value="faq:0", message_id=1, user_id=4567, at=at, **PORTAL),
        # an answer to a question that is not out (no line of the test scenario asks one)
        "answered": Answered(
            turn=3, action={"action": "reply", "text": "Hi"}, session_id=SESSION, at=at
        ),
    }
    return inputs[kind]
