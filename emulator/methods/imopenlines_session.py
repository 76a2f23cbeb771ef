"""`imopenlines.session.*` actions, `imopenlines.message.session.start` and
`imopenlines.crm.lead.create` (docs/bitrix24.md §5.5, §5.7, §5.8, §5.10, §5.11, §5.15, §5.16)."""

from __future__ import annotations

from typing import Any

from emulator import closing, lifecycle
from emulator.methods._common import (
    caller,
    can_join,
    check_access,
    is_head,
    open_session,
    php_empty,
    php_int,
    require_user,
)
from emulator.primitives import RestError
from emulator.registry import CallContext, method

COMMENT_LIMIT = 10_000


@method("imopenlines.session.open", scope="imopenlines", keys_normalised=False)
def session_open(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """The operator chat of a USER_CODE (exact ENTITY_ID, no `imol|` stripping, no creation)."""
    portal = ctx.portal
    chat = portal.chat_by_user_code(str(params.get("USER_CODE") or ""))
    if chat is None or (
        chat.author_id != ctx.user_id
        and not can_join(portal, caller(ctx), portal.lines.get(chat.line_id))
    ):
        raise RestError("ACCESS_DENIED", "You do not have permission to access this chat.")
    return {"chatId": str(chat.id)}


@method("imopenlines.session.start", scope="imopenlines", keys_normalised=False)
def session_start(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Open an outgoing session (MODE output, caller operates) or join the open one."""
    chat = check_access(ctx, params.get("CHAT_ID"))
    portal = ctx.portal
    user = require_user(ctx)
    session = portal.open_session(chat)
    if session is not None:
        lifecycle.join_chat(portal, chat, user.id, context_user_id=user.id)
        return True
    session = lifecycle.start_session(portal, chat, portal.lines[chat.line_id], mode="output")
    lifecycle.answer(portal, session, user)
    return True


@method("imopenlines.message.session.start", scope="imopenlines", keys_normalised=False)
def message_session_start(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Close the current session and start a new one (PARENT_ID) from one of the chat's messages."""
    chat = check_access(ctx, params.get("CHAT_ID"))
    portal = ctx.portal
    user = require_user(ctx)
    message = portal.messages.get(php_int(params.get("MESSAGE_ID")))
    if message is None or message.chat_id != chat.id or message.deleted:
        return True
    portal.post_message(
        chat,
        0,
        f"{user.full_name} closed the current conversation and started a new one",
        system=True,
    )
    old = portal.open_session(chat)
    if old is not None:
        closing.close(portal, old, reason="new_session")
    session = lifecycle.start_session(
        portal,
        chat,
        portal.lines[chat.line_id],
        mode="output",
        parent_id=old.id if old is not None else 0,
    )
    lifecycle.answer(portal, session, user)
    portal.post_message(
        chat,
        message.author_id,
        message.text,
        params={"IMOL_FORWARD_MESSAGE_ID": message.id},
        journal={"forwarded_from": message.id},
    )
    return True


@method("imopenlines.session.join", scope="imopenlines", keys_normalised=False)
def session_join(ctx: CallContext, params: dict[str, Any]) -> bool:
    """The caller joins the chat; session and operator stay as they are."""
    chat = check_access(ctx, params.get("CHAT_ID"))
    user = require_user(ctx)
    if user.id not in chat.members:
        lifecycle.join_chat(ctx.portal, chat, user.id, context_user_id=user.id)
        ctx.portal.post_message(chat, 0, f"{user.full_name} joined the conversation", system=True)
    return True


@method("imopenlines.session.intercept", scope="imopenlines", keys_normalised=False)
def session_intercept(ctx: CallContext, params: dict[str, Any]) -> bool:
    """The caller takes the dialog from its current operator; any access failure: OPERATOR_WRONG."""
    if php_int(params.get("CHAT_ID")) <= 0:
        raise RestError("CHAT_ID_EMPTY", "Chat ID can't be empty")
    try:
        chat = check_access(ctx, params.get("CHAT_ID"))
    except RestError as exc:
        raise RestError("OPERATOR_WRONG", "You can not redirect to this operator") from exc
    portal = ctx.portal
    user = require_user(ctx)
    session = portal.open_session(chat)
    if session is None or chat.author_id <= 0 or chat.author_id == user.id:
        return True
    previous = portal.users[chat.author_id]
    lifecycle.answer(portal, session, user, announce=False, reason="intercept")
    portal.post_message(
        chat, user.id, f"{user.full_name} took conversation from {previous.full_name}", system=True
    )
    return True


@method("imopenlines.session.head.vote", scope="imopenlines", keys_normalised=False)
def session_head_vote(ctx: CallContext, params: dict[str, Any]) -> bool:
    """A supervisor rates a session: RATING > 5 stored as 0; no COMMENT wipes COMMENT_HEAD."""
    if php_empty(params.get("SESSION_ID")) or php_int(params.get("SESSION_ID")) <= 0:
        raise RestError("EMPTY_SESSION_ID", "Session ID can't be empty")
    rating = str(params.get("RATING") or "").strip()
    comment = str(params.get("COMMENT") or "").strip()
    if php_empty(rating) and php_empty(comment):
        raise RestError(
            "EMPTY_VOTE_PARAMS",
            "At least one of the parameters RATING or COMMENT must be specified",
        )
    session = ctx.portal.sessions.get(php_int(params.get("SESSION_ID")))
    if session is None or not is_head(caller(ctx)):
        raise RestError("ACCESS_DENIED", "You do not have permission to vote for this session")
    value = None if php_empty(rating) else php_int(rating)
    stored = None if value is None else (0 if value > 5 else value)
    raw_comment = str(params.get("COMMENT") or "")
    if len(raw_comment) > COMMENT_LIMIT:
        raw_comment = raw_comment[:COMMENT_LIMIT] + "..."
    closing.head_vote(ctx.portal, session, stored, raw_comment)
    return True


@method("imopenlines.crm.lead.create", scope="imopenlines", keys_normalised=False)
def crm_lead_create(ctx: CallContext, params: dict[str, Any]) -> bool:
    """The session's operator creates a lead from the chat and binds it; no-op when bound."""
    chat = check_access(ctx, params.get("CHAT_ID"))
    portal = ctx.portal
    session = open_session(portal, chat)
    if session is None:
        raise RestError("IMOL_CHAT_ERROR_ANSWER_NOT_LOAD_SESSION", "Cannot load session")
    if session.operator_id != ctx.user_id:
        raise RestError("ERROR_USER_NOT_OPERATOR", "The user is not the operator of this dialog")
    if chat.crm:
        return True
    lead_id = lifecycle.create_chat_lead(portal, chat, assigned_by=ctx.user_id)
    portal.post_message(
        chat,
        0,
        f"Lead created: #{lead_id}",
        system=True,
        params={"CRM_ENTITY_TYPE": "LEAD", "CRM_ENTITY_ID": lead_id},
    )
    return True
