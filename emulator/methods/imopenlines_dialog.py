"""Read methods of an open-line dialog: `imopenlines.dialog.get` (§5.6) and
`imopenlines.session.history.get` (§5.9), in the portal's own key styles."""

from __future__ import annotations

from typing import Any

from emulator.methods._common import caller, can_join, is_head, php_empty, php_int
from emulator.portal import Portal
from emulator.primitives import RestError
from emulator.registry import CallContext, method
from emulator.state import Chat, Message, Session
from emulator.transport import iso_date


def _resolve_dialog_chat(portal: Portal, params: dict[str, Any]) -> Chat | None:
    """The first given of CHAT_ID, DIALOG_ID (chat<N>), SESSION_ID, USER_CODE (imol| allowed)."""
    if not php_empty(params.get("CHAT_ID")):
        return portal.get_chat(php_int(params["CHAT_ID"]))
    if not php_empty(params.get("DIALOG_ID")):
        dialog_id = str(params["DIALOG_ID"])
        if not dialog_id.startswith("chat") or not dialog_id[4:].isdigit():
            return None
        return portal.get_chat(int(dialog_id[4:]))
    if not php_empty(params.get("SESSION_ID")):
        session = portal.sessions.get(php_int(params["SESSION_ID"]))
        return portal.get_chat(session.chat_id) if session is not None else None
    if not php_empty(params.get("USER_CODE")):
        code = str(params["USER_CODE"]).removeprefix("imol|")
        return portal.chat_by_user_code(code)
    return None


def chat_object(portal: Portal, chat: Chat) -> dict[str, Any]:
    """The messenger's chat object in snake_case, as dialog.get returns it."""
    last_id = portal.last_message_id(chat.id)
    count = sum(1 for m in portal.messages.values() if m.chat_id == chat.id)
    flags = dict.fromkeys(
        ("avatar", "rename", "extend", "call", "mute", "leave", "leave_owner", "send", "user_list"),
        True,
    )
    return {
        "id": chat.id,
        "parent_chat_id": 0,
        "parent_message_id": 0,
        "name": chat.title,
        "description": "",
        "owner": chat.author_id,
        "extranet": False,
        "avatar": "",
        "color": "#29619b",
        "type": "lines",
        "counter": 0,
        "user_counter": len(chat.members),
        "message_count": count,
        "unread_id": 0,
        "restrictions": flags,
        "last_message_id": last_id,
        "last_id": last_id,
        "marked_id": 0,
        "disk_folder_id": 0,
        "entity_type": chat.entity_type,
        "entity_id": chat.entity_id,
        "entity_data_1": chat.entity_data_1,
        "entity_data_2": chat.entity_data_2,
        "entity_data_3": chat.entity_data_3,
        "mute_list": [],
        "date_create": iso_date(chat.date_create),
        "message_type": chat.type,
        "public": "",
        "role": "member",
        "entity_link": {"type": "LINES", "url": "", "id": chat.entity_id},
        "text_field_enabled": True,
        "background_id": None,
        "permissions": {
            "manage_users_add": "member",
            "manage_users_delete": "manager",
            "manage_ui": "member",
            "manage_settings": "owner",
            "manage_messages": "member",
            "can_post": "member",
        },
        "is_new": False,
        "readed_list": [],
        "manager_list": [],
        "last_message_views": {"message_id": last_id, "first_viewers": [], "count_of_viewers": 0},
        "dialog_id": chat.dialog_id,
    }


@method("imopenlines.dialog.get", scope="imopenlines", keys_normalised=True)
def dialog_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """The operator chat of a dialog; anything unresolvable or not allowed: ACCESS_ERROR."""
    portal = ctx.portal
    chat = _resolve_dialog_chat(portal, params)
    allowed = (
        chat is not None
        and chat.type == "L"
        and chat.entity_type == "LINES"
        and (
            ctx.user_id in chat.members
            or can_join(portal, caller(ctx), portal.lines.get(chat.line_id))
        )
    )
    if chat is None or not allowed:
        raise RestError("ACCESS_ERROR", "You do not have access to the specified dialog")
    return chat_object(portal, chat)


def _history_session(portal: Portal, params: dict[str, Any]) -> Session:
    if php_empty(params.get("SESSION_ID")) and php_empty(params.get("CHAT_ID")):
        raise RestError("MISSING_REQUIRED_PARAM", "Session ID or Chat ID must be provided")
    if php_empty(params.get("SESSION_ID")):
        chat = portal.get_chat(php_int(params.get("CHAT_ID")))
        latest = portal.latest_session(chat) if chat is not None else None
        if latest is None:
            raise RestError(
                "INVALID_SESSION_ID", "Unable to determine session ID from provided parameters"
            )
        return latest
    session = portal.sessions.get(php_int(params.get("SESSION_ID")))
    if session is None:
        raise RestError("ACCESS_DENIED", "You do not have permission to view this session")
    return session


def _message_row(chat: Chat, message: Message) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "chatid": str(chat.id),
        "senderid": str(message.author_id),
        "recipientid": chat.dialog_id,
        "date": iso_date(message.date),
        "text": message.text,
        "textlegacy": message.text,
        "params": dict(message.params),
    }


@method("imopenlines.session.history.get", scope="imopenlines", keys_normalised=False)
def session_history_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """The session's messages START_ID..END_ID with users and chat, in the portal's key styles."""
    portal = ctx.portal
    session = _history_session(portal, params)
    user = caller(ctx)
    if session.operator_id != ctx.user_id and not is_head(user):
        raise RestError("ACCESS_DENIED", "You do not have permission to view this session")
    chat = portal.chats[session.chat_id]
    last = session.end_id or portal.last_message_id(chat.id)
    messages = sorted(
        (
            m
            for m in portal.messages.values()
            if m.chat_id == chat.id and session.start_id and session.start_id <= m.id <= last
        ),
        key=lambda m: m.id,
    )
    if not messages:
        raise RestError("ACCESS_DENIED", "You do not have permission to view this session")
    authors = sorted({m.author_id for m in messages if m.author_id} | set(chat.members))
    line_id = str(session.config_id)
    return {
        "chatId": chat.id,
        "canJoin": "Y" if can_join(portal, user, portal.lines.get(session.config_id)) else "N",
        "canVoteHead": "Y" if is_head(user) else "N",
        "sessionId": session.id,
        "sessionVoteHead": session.vote_head,
        "sessionCommentHead": session.comment_head or None,
        "userId": chat.dialog_id,
        "message": {str(m.id): _message_row(chat, m) for m in messages},
        "usersMessage": {chat.dialog_id: [str(m.id) for m in messages]},
        "users": {str(uid): _user_row(portal, uid) for uid in authors if uid in portal.users},
        "openlines": {"canvoteashead": {line_id: is_head(user)}},
        "userInGroup": [],
        "woUserInGroup": [],
        "chat": {
            str(chat.id): {
                "id": str(chat.id),
                "name": chat.title,
                "owner": str(chat.author_id),
                "type": "lines",
                "entityType": chat.entity_type,
                "entityId": chat.entity_id,
                "entityData1": chat.entity_data_1,
                "entityData2": chat.entity_data_2,
                "entityData3": chat.entity_data_3,
            }
        },
        "userBlockChat": {str(chat.id): {str(uid): False for uid in chat.members}},
        "userInChat": {str(chat.id): list(chat.members)},
        "files": [],
    }


def _user_row(portal: Portal, user_id: int) -> dict[str, Any]:
    user = portal.users[user_id]
    return {
        "id": str(user.id),
        "name": user.full_name,
        "firstname": user.name,
        "lastname": user.last_name,
        "workposition": user.work_position,
        "gender": user.gender or "M",
        "active": user.active,
        "bot": user.is_bot,
        "connector": user.is_connector,
        "extranet": user.is_connector,
        "network": False,
    }
