"""Open Lines session lifecycle (docs/bitrix24.md §4.4-§4.5): start, welcome bot, queue, answer
(the end of a session — finish, votes, timers — is emulator.closing; messages emulator.messaging).
Functions over a portal's store (emulator.store); the REST handlers and the control API both go
through here, so a transition behaves the same whoever triggers it, and each is journaled with
the code path (`reason`) that made it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator import payloads
from emulator.primitives import RestError
from emulator.state import (
    Chat,
    Line,
    Session,
    Status,
    User,
)

if TYPE_CHECKING:
    from emulator.store import PortalStore


def set_status(portal: PortalStore, session: Session, status: int, reason: str) -> None:
    """Change a session's status, keep its history and journal it, `reason` naming the code path
    (only real changes are recorded)."""
    if session.history and session.status == status:
        return
    previous = session.status if session.history else None
    session.status = int(status)
    session.history.append({"status": int(status), "at": portal.now()})
    portal.record_session(session, previous, reason)


# ---- session start and routing ------------------------------------------------------------


def start_session(
    portal: PortalStore, chat: Chat, line: Line, *, mode: str, parent_id: int = 0
) -> Session:
    """Create a session for the chat and fire OnSessionStart: status 0 for an incoming
    dialog, 10 for an outgoing one; START_ID is the "started" system message."""
    session = Session(
        portal.next_id("session"),
        chat.id,
        line.id,
        chat.client_id,
        chat.entity_id,
        chat.entity_id.split("|")[0],
        mode,
        portal.now(),
        parent_id=parent_id,
    )
    portal.sessions[session.id] = session
    chat.session_id = session.id
    chat.pause = chat.wait_action = False
    set_status(portal, session, Status.ANSWER if mode == "output" else Status.NEW, "start")
    text = (
        f"Conversation #{session.id} started from conversation #{parent_id}"
        if parent_id
        else f"Conversation #{session.id} started"
    )
    portal.post_message(chat, 0, text, system=True)
    if mode == "input" and line.crm and line.crm_create == "lead" and not chat.crm:
        create_chat_lead(portal, chat, assigned_by=line.queue[0] if line.queue else 0, via="line")
    portal.emit_app_event(
        "ONSESSIONSTART",
        payloads.session_event(portal, session),
        chat_id=chat.id,
        ref=f"session:{session.id}",
    )
    return session


def route_new_session(portal: PortalStore, chat: Chat, line: Line, session: Session) -> None:
    """The welcome bot takes a new dialog when configured; otherwise it goes to the queue."""
    bot = portal.bots.get(line.welcome_bot_id)
    first_session = all(
        s.id == session.id for s in portal.sessions.values() if s.chat_id == chat.id
    )
    if (
        bot is None
        or not line.welcome_bot_enable
        or not line.active
        or (line.welcome_bot_join == "first" and not first_session)
    ):
        to_queue(portal, session)
        return
    session.operator_id, session.operator_is_bot = bot.id, True
    portal.record_session(session, session.status, "welcome_bot")
    chat.author_id = bot.id
    if line.welcome_bot_time > 0:
        session.queue_deadline = portal.now() + line.welcome_bot_time
    join_chat(portal, chat, bot.id, context_user_id=chat.client_id)


def join_chat(portal: PortalStore, chat: Chat, user_id: int, *, context_user_id: int) -> None:
    """Add a member; a bot that joins gets ONIMBOTJOINCHAT."""
    if user_id in chat.members:
        return
    chat.members.append(user_id)
    bot = portal.bots.get(user_id)
    if bot is not None:
        portal.emit_bot_event(
            bot,
            "ONIMBOTJOINCHAT",
            payloads.bot_join(portal, bot, chat, context_user_id),
            chat_id=chat.id,
            ref=f"join:{chat.id}:{chat.session_id}",
        )


def leave_chat(chat: Chat, user_id: int) -> None:
    """Remove a member if present."""
    if user_id in chat.members:
        chat.members.remove(user_id)


def _bot_steps_down(portal: PortalStore, session: Session) -> None:
    """Account the bot's time when a bot operator hands over (TIME_BOT, DATE_OPERATOR)."""
    session.time_bot = int(portal.now() - session.date_create)
    session.date_operator = portal.now()


def remove_bot(chat: Chat, line: Line, bot_id: int) -> None:
    """A bot leaves the chat; the welcome bot stays hidden when WELCOME_BOT_LEFT=close."""
    leave_chat(chat, bot_id)
    if line.welcome_bot_left == "close" and bot_id == line.welcome_bot_id:
        chat.fake_relations.append(bot_id)


def to_queue(
    portal: PortalStore,
    session: Session,
    line: Line | None = None,
    *,
    remove_operator_bot: bool = True,
    reason: str = "queue",
) -> None:
    """Send the dialog to a line's queue: no operator, WAIT_ANSWER=Y, status 5."""
    chat = portal.chats[session.chat_id]
    line = line or portal.lines[session.config_id]
    before = (session.status, session.operator_id, session.config_id)
    if session.operator_is_bot and session.operator_id:
        _bot_steps_down(portal, session)
        if remove_operator_bot:
            remove_bot(chat, portal.lines[session.config_id], session.operator_id)
    session.config_id = line.id
    session.operator_id, session.operator_is_bot = 0, False
    session.wait_answer, session.queue_deadline = True, None
    chat.author_id = 0
    chat.fake_relations = [u for u in chat.fake_relations if u in portal.bots] + list(line.queue)
    set_status(portal, session, Status.SKIP, reason)
    if before[0] == Status.SKIP and before != (Status.SKIP, 0, line.id):
        portal.record_session(session, before[0], reason)  # another queue, same status


def end_bot_session(portal: PortalStore, chat: Chat) -> bool:
    """Chat::endBotSession: the bot operator hands the dialog to the queue; False if no bot."""
    session = portal.open_session(chat)
    if session is None or not session.operator_is_bot:
        return False
    portal.post_message(chat, 0, "The bot session has ended", system=True)
    to_queue(portal, session)
    return True


# ---- operators ----------------------------------------------------------------------------


def answer(
    portal: PortalStore,
    session: Session,
    user: User,
    *,
    check_responsible: bool = False,
    announce: bool = True,
    reason: str = "answer",
) -> None:
    """Chat::answer: the user becomes the responsible operator (status at least 10); the
    "picked conversation" system message is skipped for transfers and intercepts."""
    chat = portal.chats[session.chat_id]
    line = portal.lines[session.config_id]
    if check_responsible and chat.author_id == user.id:
        raise RestError(
            "IMOL_CHAT_ERROR_ANSWER_ALREADY_RESPONSIBLE",
            "You are already responsible for this dialog",
        )
    if session.operator_is_bot and session.operator_id and session.operator_id != user.id:
        _bot_steps_down(portal, session)
    previous_operator = session.operator_id
    for member in list(chat.members):
        person = portal.users[member]
        human_staff = not person.is_bot and not person.is_connector
        evicted_bot = member == line.welcome_bot_id and line.welcome_bot_left == "queue"
        if member != user.id and (human_staff or evicted_bot):
            leave_chat(chat, member)
    join_chat(portal, chat, user.id, context_user_id=user.id)
    chat.author_id = user.id
    chat.fake_relations = [u for u in chat.fake_relations if u in portal.bots]
    if announce:
        portal.post_message(chat, user.id, f"{user.full_name} picked conversation", system=True)
    session.operator_id, session.operator_is_bot = user.id, user.is_bot
    session.wait_answer = session.wait_action = chat.wait_action = False
    if not user.is_bot:
        session.queue_deadline = None
        session.date_operator_answer = portal.now()
        session.time_answer = int(portal.now() - session.date_create)
    if session.status < Status.ANSWER:
        set_status(portal, session, Status.ANSWER, reason)
    elif session.operator_id != previous_operator:
        portal.record_session(session, session.status, reason)  # a new operator, same status


def create_chat_lead(
    portal: PortalStore, chat: Chat, *, assigned_by: int, via: str | None = None
) -> int:
    """Create a lead from the chat's client and bind it (ENTITY_DATA_1/2); `via` "line" when the
    line's own CRM_CREATE makes it, else the acting REST method."""
    client = portal.users[chat.client_id]
    line = portal.lines[chat.line_id]
    connector = chat.entity_id.split("|")[0]
    lead = portal.add_lead(
        {
            "TITLE": f"{client.full_name} - {line.name}",
            "NAME": client.name,
            "LAST_NAME": client.last_name,
            "SOURCE_ID": f"{line.id}|{connector.upper()}",
            "SOURCE_DESCRIPTION": f"Open Channel: {line.name}",
            "ASSIGNED_BY_ID": assigned_by or portal.admin_user_id,
        },
        created_by=assigned_by or portal.admin_user_id,
        via=via,
        chat_id=chat.id,
        session_id=chat.session_id,
    )
    portal.bind_lead(chat, lead.id)
    return lead.id
