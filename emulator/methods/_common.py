"""Helpers shared by the method handlers: PHP-like parameter casts and Open Lines access rules."""

from __future__ import annotations

import re
from typing import Any

from emulator.portal import Portal
from emulator.primitives import RestError
from emulator.registry import CallContext
from emulator.state import ROLE_ADMIN, ROLE_SUPERVISOR, Bot, Chat, Line, Session, User

_LEADING_INT = re.compile(r"^\s*[+-]?\d+")


def php_int(value: Any) -> int:
    """PHP `(int)` cast: leading digits of a string, 0 for anything else."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        match = _LEADING_INT.match(value)
        return int(match.group()) if match else 0
    return 0


def php_empty(value: Any) -> bool:
    """PHP `empty()`: None, '', '0', 0, empty containers."""
    return value in (None, "", "0", 0, False) or (isinstance(value, list | dict) and not value)


def caller(ctx: CallContext) -> User | None:
    return ctx.portal.get_user(ctx.user_id)


def can_join(portal: Portal, user: User | None, line: Line | None) -> bool:
    """The line's "join" permission: admins and supervisors everywhere, operators in their line."""
    if user is None or line is None or not user.active:
        return False
    if user.role in (ROLE_ADMIN, ROLE_SUPERVISOR):
        return True
    return user.id in line.queue


def is_head(user: User | None) -> bool:
    """Who may see every history and vote as head: admins and supervisors."""
    return user is not None and user.role in (ROLE_ADMIN, ROLE_SUPERVISOR)


def check_access(ctx: CallContext, raw_chat_id: Any) -> Chat:
    """Operator::checkAccess (§5 common notes), returning the chat."""
    chat_id = php_int(raw_chat_id)
    if chat_id <= 0:
        raise RestError("CHAT_ID", "Chat ID is invalid.")
    if ctx.user_id <= 0:
        raise RestError("USER_ID", "User ID is invalid.")
    portal = ctx.portal
    chat = portal.get_chat(chat_id)
    if chat is not None and (ctx.user_id in chat.members or ctx.user_id in chat.fake_relations):
        if chat.entity_type != "LINES":
            raise RestError("CHAT_TYPE", "This chat is not Open Channel")
        return chat
    if chat is None:
        raise RestError("CHAT_ID", "Chat ID is invalid.")
    if chat.type != "L":
        raise RestError("CHAT_TYPE", "This chat is not Open Channel")
    if not can_join(portal, caller(ctx), portal.lines.get(chat.line_id)):
        raise RestError("ACCESS_DENIED", "You do not have permission to access this chat.")
    return chat


def require_user(ctx: CallContext) -> User:
    """The calling user (an access check already passed, so it exists)."""
    user = caller(ctx)
    if user is None:
        raise RestError("USER_ID", "User ID is invalid.")
    return user


def open_session(portal: Portal, chat: Chat | None) -> Session | None:
    if chat is None or chat.entity_type != "LINES":
        return None
    return portal.open_session(chat)


def app_bot(ctx: CallContext, params: dict[str, Any]) -> Bot:
    """The calling app's bot: BOT_ID when given (must be the app's), else the app's first bot."""
    app_id = ctx.app_id(params)
    portal = ctx.portal
    if not php_empty(params.get("BOT_ID")):
        bot = portal.bots.get(php_int(params.get("BOT_ID")))
        if bot is None:
            raise RestError("BOT_ID_ERROR", "Bot not found")
        if bot.app_id != app_id:
            raise RestError("APP_ID_ERROR", "Bot was installed by another rest application")
        return bot
    bots = portal.bots_of_app(app_id)
    if not bots:
        raise RestError("BOT_ID_ERROR", "Bot not found")
    return bots[0]


def chat_id_or_fail(params: dict[str, Any]) -> int:
    """CHAT_ID > 0 or 400 CHAT_ID_EMPTY, as the bot-session methods check it."""
    chat_id = php_int(params.get("CHAT_ID"))
    if chat_id <= 0:
        raise RestError("CHAT_ID_EMPTY", "Chat ID can't be empty")
    return chat_id
