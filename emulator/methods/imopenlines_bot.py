"""`imopenlines.bot.session.*` (docs/bitrix24.md §5.1-§5.4): what an open-line bot does with its
dialog: finish it, post an automatic message, hand it to operators or transfer it."""

from __future__ import annotations

from typing import Any

from emulator import closing, lifecycle
from emulator.methods._common import app_bot, chat_id_or_fail, open_session, php_int
from emulator.primitives import RestError
from emulator.registry import CallContext, method
from emulator.state import Status


@method("imopenlines.bot.session.finish", scope="imopenlines", keys_normalised=True)
def bot_session_finish(ctx: CallContext, params: dict[str, Any]) -> bool:
    """The bot answers the dialog (evicting human operators), then finishes it; always true."""
    chat_id = chat_id_or_fail(params)
    bot = app_bot(ctx, params)
    portal = ctx.portal
    chat = portal.get_chat(chat_id)
    session = open_session(portal, chat)
    if chat is None or session is None:
        return True
    if chat.author_id != bot.id:  # answer() refuses the already-responsible; the result is ignored
        lifecycle.answer(portal, session, portal.users[bot.id], reason="bot_finish")
    closing.finish(portal, session, "bot_finish")
    return True


def _auto_message(ctx: CallContext, params: dict[str, Any]) -> bool:
    chat_id = chat_id_or_fail(params)
    portal = ctx.portal
    chat = portal.get_chat(chat_id)
    session = open_session(portal, chat)
    if chat is None or session is None:
        return True
    name = str(params.get("NAME") or "")
    if name == "DEFAULT":
        text = str(params.get("MESSAGE") or "")
    elif name == "WELCOME":
        text = portal.lines[session.config_id].welcome_message
    else:
        return True
    if not text:
        return True
    closing.connector_notice(portal, chat, 0, text, {})
    return True


@method("imopenlines.bot.session.message.send", scope="imopenlines", keys_normalised=True)
def bot_session_message_send(ctx: CallContext, params: dict[str, Any]) -> bool:
    """NAME=DEFAULT posts MESSAGE, NAME=WELCOME the line's welcome text; true either way."""
    return _auto_message(ctx, params)


@method("imopenlines.bot.session.send.message", scope="imopenlines", keys_normalised=True)
def bot_session_send_message(ctx: CallContext, params: dict[str, Any]) -> bool:
    """The legacy alias of imopenlines.bot.session.message.send."""
    return _auto_message(ctx, params)


@method("imopenlines.bot.session.operator", scope="imopenlines", keys_normalised=True)
def bot_session_operator(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Chat::endBotSession: the dialog leaves the bot for the queue; WRONG_CHAT if no bot leads."""
    chat_id = chat_id_or_fail(params)
    chat = ctx.portal.get_chat(chat_id)
    if (
        chat is None
        or chat.entity_type != "LINES"
        or not lifecycle.end_bot_session(ctx.portal, chat)
    ):
        raise RestError("WRONG_CHAT", "Operator is not a bot")
    return True


def _transfer_target(params: dict[str, Any]) -> tuple[str, int]:
    """Validation steps 3-4 of §5.4: ("user", id) or ("queue", line id)."""
    if "TRANSFER_ID" in params:
        transfer_id = str(params["TRANSFER_ID"])
        if transfer_id.startswith("queue"):
            params["QUEUE_ID"] = transfer_id[len("queue") :]
        else:
            params["USER_ID"] = transfer_id
    if "USER_ID" in params:
        if php_int(params["USER_ID"]) <= 0:
            raise RestError("USER_ID_EMPTY", "User ID can't be empty")
        return "user", php_int(params["USER_ID"])
    if "QUEUE_ID" in params:
        if php_int(params["QUEUE_ID"]) <= 0:
            raise RestError("QUEUE_ID_EMPTY", "QUEUE ID can't be empty")
        return "queue", php_int(params["QUEUE_ID"])
    raise RestError("TRANSFER_ID_EMPTY", "Queue ID or User ID can't be empty")


@method("imopenlines.bot.session.transfer", scope="imopenlines", keys_normalised=False)
def bot_session_transfer(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Chat::transfer in BOT mode to an employee or a line's queue (§5.4)."""
    params = dict(params)
    chat_id = chat_id_or_fail(params)
    kind, target = _transfer_target(params)
    bot = app_bot(ctx, params)
    leave = str(params.get("LEAVE", "N")) == "Y"
    portal = ctx.portal
    chat = portal.get_chat(chat_id)
    session = open_session(portal, chat)
    wrong = RestError("OPERATOR_WRONG", "You can not redirect to this operator")
    if chat is None or session is None:
        raise wrong
    bot_name = portal.users[bot.id].full_name
    if kind == "queue":
        line = portal.lines.get(target)
        if line is None:
            raise wrong
        # Chat::transferToQueue ignores LEAVE: the calling bot always stays.
        chat.members = [m for m in chat.members if portal.users[m].is_connector or m == bot.id]
        text = (
            f"{bot_name} rejected conversation"
            if line.id == session.config_id
            else f"{bot_name} redirected conversation from queue "
            f"{portal.lines[session.config_id].name} to queue {line.name}"
        )
        portal.post_message(chat, 0, text, system=True)
        lifecycle.to_queue(portal, session, line, remove_operator_bot=False, reason="transfer")
        return True
    user = portal.get_user(target)
    if user is None or not user.active or user.is_bot or user.is_connector:
        raise wrong
    chat.members = [
        m for m in chat.members if portal.users[m].is_bot or portal.users[m].is_connector
    ]
    if leave:
        lifecycle.leave_chat(chat, bot.id)
    chat.author_id = 0
    portal.post_message(
        chat, 0, f"{bot_name} transferred conversation to {user.full_name}", system=True
    )
    if session.status < Status.ANSWER:
        lifecycle.set_status(portal, session, Status.ANSWER, "transfer")
    lifecycle.answer(portal, session, user, announce=False, reason="transfer")
    return True
