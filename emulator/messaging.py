"""Messages in an open-line chat (docs/bitrix24.md §4.5, §8.1): a client message opens or
continues a session, operator and bot messages move its status, and each message reaches the
chat's open-line bots and the connector events. Session transitions live in emulator.lifecycle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import payloads
from emulator.lifecycle import answer, end_bot_session, route_new_session, set_status, start_session
from emulator.primitives import RestError
from emulator.state import ROLE_CLIENT, Bot, Chat, Line, Message, Session, Status, User

if TYPE_CHECKING:
    from emulator.store import PortalStore


def client_message(
    portal: PortalStore, line_id: int, text: str, user_code: str | None, name: str | None
) -> dict[str, Any]:
    """A client message from the line's connector; opens user, chat and session as needed."""
    line = portal.lines.get(int(line_id))
    if line is None:
        raise RestError("LINE_NOT_FOUND", f"Open line {line_id} not found", 404)
    if not str(text).strip():
        raise RestError("MESSAGE_EMPTY", "Message can't be empty")
    chat, client = _client_chat(portal, line, user_code, name)
    session = portal.open_session(chat)
    if session is None:
        session = start_session(portal, chat, line, mode="input")
        route_new_session(portal, chat, line, session)
    message = portal.post_message(chat, client.id, str(text))
    _client_status(portal, chat, session)
    _deliver_client_message(portal, chat, client, message)
    portal.emit_app_event(
        "ONOPENLINEMESSAGEADD",
        payloads.client_message(portal, chat, message),
        chat_id=chat.id,
        ref=f"message:{message.id}",
    )
    return {
        "chat_id": chat.id,
        "session_id": session.id,
        "message_id": message.id,
        "user_code": chat.entity_id,
        "user_id": client.id,
    }


def _client_chat(
    portal: PortalStore, line: Line, user_code: str | None, name: str | None
) -> tuple[Chat, User]:
    """The client's user and LINES chat for a user code, created on first contact."""
    if user_code is not None:
        parts = str(user_code).split("|")
        if len(parts) != 4 or parts[1] != str(line.id):
            raise RestError(
                "WRONG_USER_CODE", "USER_CODE must be <connector>|<line>|<chat>|<user> of this line"
            )
    if user_code is not None and user_code in portal.client_codes:
        client = portal.users[portal.client_codes[user_code]]
    else:
        first, _, last = (name or f"Guest {len(portal.client_codes) + 1}").partition(" ")
        client = portal.add_user(first, last, role=ROLE_CLIENT)
        if user_code is None:
            user_code = f"{line.connector}|{line.id}|{1000 + client.id}|{client.id}"
        portal.client_codes[user_code] = client.id
    chat = portal.chat_by_user_code(user_code)
    if chat is None:
        chat = Chat(
            portal.next_id("chat"),
            "L",
            f"{client.full_name} - {line.name}",
            0,
            [client.id],
            portal.now(),
            entity_type="LINES",
            entity_id=user_code,
            line_id=line.id,
            client_id=client.id,
        )
        portal.chats[chat.id] = chat
    return chat, client


def _client_status(portal: PortalStore, chat: Chat, session: Session) -> None:
    """Session update for a client message: WAIT_ACTION=N; unless the dialog waits in the
    queue, 25 when the status was >= 40 (so also from 50), else 20 (also from 25)."""
    session.wait_action = chat.wait_action = False
    if session.wait_answer:
        return
    status = Status.CLIENT_AFTER_OPERATOR if session.status >= Status.OPERATOR else Status.CLIENT
    _set_message_status(portal, session, status, "client_message")


def _set_message_status(portal: PortalStore, session: Session, status: int, reason: str) -> None:
    """Apply a message-driven status; below 50 a pending vote is dropped (Update::checkVote)."""
    if status < Status.WAIT_CLIENT and session.wait_vote:
        session.wait_vote = False
        session.date_close_vote = None
    set_status(portal, session, status, reason)


def _deliver_client_message(
    portal: PortalStore, chat: Chat, client: User, message: Message
) -> None:
    """Every OPENLINE bot in the chat gets the message; '0' ends a bot session instead."""
    bots = openline_bots(portal, chat)
    if message.text.strip() == "0" and bots and end_bot_session(portal, chat):
        return
    for bot in bots:
        portal.emit_bot_event(
            bot,
            "ONIMBOTMESSAGEADD",
            payloads.bot_message(portal, bot, chat, message, client),
            chat_id=chat.id,
            ref=f"message:{message.id}",
        )


def openline_bots(portal: PortalStore, chat: Chat) -> list[Bot]:
    """Bots with OPENLINE=Y among the chat's members."""
    return [portal.bots[m] for m in chat.members if m in portal.bots and portal.bots[m].openline]


def _staff_status(portal: PortalStore, session: Session, author: User, message: Message) -> None:
    """Session update for an operator/bot message: in the queue 20/25, waiting for the
    client's action 50, otherwise 40."""
    if not author.is_bot and session.date_first_answer is None:
        session.date_first_answer = message.date
        session.time_first_answer = int(message.date - session.date_create)
    if session.wait_answer:
        status = (
            Status.CLIENT_AFTER_OPERATOR
            if session.status >= Status.CLIENT_AFTER_OPERATOR
            else Status.CLIENT
        )
    elif session.wait_action:
        status = Status.WAIT_CLIENT
    else:
        status = Status.OPERATOR
    _set_message_status(
        portal, session, status, "bot_message" if author.is_bot else "operator_message"
    )


def staff_message(
    portal: PortalStore,
    chat: Chat,
    author: User,
    text: str,
    *,
    system: bool = False,
    params: dict[str, Any] | None = None,
    skip_connector: bool = False,
) -> Message:
    """A message from an operator or a bot in a LINES chat, with its status and deliveries."""
    session = portal.open_session(chat)
    if author.id not in chat.members:
        if author.is_bot or session is None or author.id not in chat.fake_relations:
            raise RestError("ACCESS_DENIED", "You do not have permission to access this chat.")
        answer(portal, session, author)  # writing to a queued dialog takes it
    to_client = session is not None and not system and not skip_connector and not chat.silent
    message = portal.post_message(
        chat,
        author.id,
        text,
        system=system,
        params=params,
        to_client=to_client,
        journal={"author": "bot" if author.is_bot else "operator"},
    )
    if session is not None and not system and not chat.silent:
        _staff_status(portal, session, author, message)
    ref = f"message:{message.id}"
    if not author.is_bot:
        for bot in openline_bots(portal, chat):
            portal.emit_bot_event(
                bot,
                "ONIMBOTMESSAGEADD",
                payloads.bot_message(portal, bot, chat, message, author),
                chat_id=chat.id,
                ref=ref,
            )
    if to_client:
        portal.emit_app_event(
            "ONOPENLINEMESSAGEADD",
            payloads.outgoing_message(portal, chat, message),
            chat_id=chat.id,
            ref=ref,
        )
    return message


def message_changed(portal: PortalStore, message: Message, *, deleted: bool) -> None:
    """Journal an edit or a deletion just applied to `message`; ONIMBOTMESSAGEUPDATE/DELETE to the
    chat's OPENLINE bots (a bot's own edits notify no bot)."""
    change = portal.message_changed(message, deleted=deleted)
    chat = portal.chats[message.chat_id]
    author = portal.get_user(message.author_id)
    if author is None or author.is_bot or chat.entity_type != "LINES":
        return
    event = "ONIMBOTMESSAGEDELETE" if deleted else "ONIMBOTMESSAGEUPDATE"
    for bot in openline_bots(portal, chat):
        portal.emit_bot_event(
            bot,
            event,
            payloads.bot_message_change(portal, bot, chat, message, author, deleted=deleted),
            chat_id=chat.id,
            ref=f"change:{change['seq']}",
        )
