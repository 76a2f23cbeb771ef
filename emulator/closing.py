"""The end of an Open Lines session (docs/bitrix24.md §4.4-§4.5): finish, the vote request, close,
the client's and the supervisor's votes, and the timers (welcome-bot timeout, vote time limit).
Functions over a portal's store, on top of emulator.lifecycle; every change is journaled with the
code path that made it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import payloads
from emulator.journal import current_via
from emulator.lifecycle import set_status, to_queue
from emulator.state import VOTE_DISLIKE, VOTE_LIKE, Chat, Message, Session, Status

if TYPE_CHECKING:
    from emulator.store import PortalStore


def finish(portal: PortalStore, session: Session, reason: str = "operator_finish") -> None:
    """Session::finish: ask for the vote (status 50) when the line wants one, else close
    (journaled with `reason`: who finished)."""
    chat = portal.chats[session.chat_id]
    line = portal.lines[session.config_id]
    if session.closed:
        return
    if (session.wait_action and not session.wait_answer) or not line.active:
        close(portal, session, "The conversation is closed", reason)
        return
    if line.vote_message and not session.vote:
        session.wait_vote = session.wait_action = chat.wait_action = True
        session.wait_answer = False
        connector_notice(
            portal,
            chat,
            session.operator_id,
            "Please rate the quality of service",
            {"IMOL_VOTE": session.id, "IMOL_VOTE_SID": session.id, "IMOL_FORM": "like"},
        )
        if line.vote_time_limit > 0:
            session.date_close_vote = portal.now() + line.vote_time_limit
        set_status(portal, session, Status.WAIT_CLIENT, "vote_wait")
        return
    operator = portal.get_user(session.operator_id)
    close(
        portal,
        session,
        f"{operator.full_name if operator else 'Operator'} finished the conversation",
        reason,
    )


def connector_notice(
    portal: PortalStore, chat: Chat, author_id: int, text: str, params: dict[str, Any]
) -> Message:
    """A system message the client receives too (IMPORTANT_CONNECTOR=Y)."""
    message = portal.post_message(
        chat,
        author_id,
        text,
        system=True,
        params={**params, "IMPORTANT_CONNECTOR": "Y"},
        to_client=True,
    )
    portal.emit_app_event(
        "ONOPENLINEMESSAGEADD",
        payloads.outgoing_message(portal, chat, message),
        chat_id=chat.id,
        ref=f"message:{message.id}",
    )
    return message


def close(
    portal: PortalStore,
    session: Session,
    text: str = "The conversation is closed",
    reason: str = "close",
) -> None:
    """CLOSED=Y: status 60, END_ID, times; bots leave; the chat's LINES_SESSION id, AUTHOR_ID
    and whisper mode are reset (Chat::close); OnSessionFinish fires."""
    chat = portal.chats[session.chat_id]
    portal.post_message(
        chat,
        session.operator_id,
        text,
        system=True,
        params={"IMOL_VOTE_SID": session.id, "IMOL_VOTE_USER": session.vote},
    )
    now = portal.now()
    session.closed = True
    session.end_id = portal.last_message_id(chat.id)
    session.date_close = now
    session.time_close = int(now - session.date_create)
    if session.operator_is_bot:
        session.time_bot = int(now - session.date_create)
    session.wait_action = session.wait_vote = session.wait_answer = session.pause = False
    session.queue_deadline = session.date_close_vote = None
    chat.pause = chat.wait_action = False
    # Chat::close (run by Session\Update::closeSession on CLOSED=Y): LINES_SESSION's ID goes to
    # 0, so ENTITY_DATA_1 position 5 no longer names the closed session; AUTHOR_ID 0, whisper off
    chat.session_id = chat.author_id = 0
    chat.silent = False
    chat.members = [m for m in chat.members if m not in portal.bots]
    chat.fake_relations = []
    set_status(portal, session, Status.SPAM if session.spam else Status.CLOSE, reason)
    portal.emit_app_event(
        "ONSESSIONFINISH",
        payloads.session_event(portal, session),
        chat_id=chat.id,
        ref=f"session:{session.id}",
    )


def client_vote(portal: PortalStore, session: Session, vote: str) -> None:
    """Session::voteAsUser: like 5 / dislike 1; a vote awaited on a closing-delay line closes."""
    if session.closed:
        return  # only an open (or vote-reopened) session takes a vote
    session.vote = VOTE_LIKE if vote == "like" else VOTE_DISLIKE
    portal.journal.append(
        "client_vote",
        chat_id=session.chat_id,
        session_id=session.id,
        vote=vote,
        score=session.vote,
        via=current_via(),
    )
    line = portal.lines[session.config_id]
    if session.wait_vote and line.vote_closing_delay:
        session.wait_vote = False
        close(portal, session, reason="client_vote")
        return
    # The portal's own "hack": the status is forced to 50, no other flag changes.
    session.wait_vote = False
    session.date_close_vote = None
    set_status(portal, session, Status.WAIT_CLIENT, "client_vote")


def tick(portal: PortalStore) -> None:
    """Fire due timers: the welcome bot's queue timeout and the vote time limit."""
    now = portal.now()
    for session in [s for s in portal.sessions.values() if not s.closed]:
        if (
            session.queue_deadline is not None
            and session.queue_deadline <= now
            and session.operator_is_bot
        ):
            to_queue(portal, session, reason="bot_timeout")
        elif (
            session.wait_vote
            and session.date_close_vote is not None
            and session.date_close_vote <= now
        ):
            close(portal, session, reason="vote_timeout")


def head_vote(portal: PortalStore, session: Session, rating: int | None, comment: str) -> None:
    """A supervisor's rating (None: unchanged) and comment (replaces the old one)."""
    if rating is not None:
        session.vote_head = rating
    session.comment_head = comment
    portal.journal.append(
        "head_vote",
        chat_id=session.chat_id,
        session_id=session.id,
        rating=session.vote_head,
        comment=comment,
        via=current_via(),
    )
