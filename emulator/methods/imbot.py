"""`imbot.*` chat-bot platform v1 (docs/bitrix24.md §6): register, unregister, messages, typing."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from emulator import messaging, payloads
from emulator.client_actions import DELETED_TEXT
from emulator.methods._common import app_bot, php_empty, php_int
from emulator.portal import Portal
from emulator.primitives import RestError
from emulator.registry import CallContext, method
from emulator.state import BOT_EVENT_PARAMS, Bot, Chat, Message

REQUIRED_HANDLERS = ("EVENT_MESSAGE_ADD", "EVENT_WELCOME_MESSAGE", "EVENT_BOT_DELETE")
ATTACH_LIMIT = 30_000
DIALOG_ID = re.compile(r"^(chat\d+|\d+)$")


def _handler_urls(params: dict[str, Any]) -> dict[str, str]:
    """EVENT_HANDLER fills all six; each URL must be absolute http(s); three are required."""
    if not php_empty(params.get("EVENT_HANDLER")):
        for param in BOT_EVENT_PARAMS:
            params[param] = params["EVENT_HANDLER"]
    urls: dict[str, str] = {}
    for param in BOT_EVENT_PARAMS:
        value = params.get(param)
        if php_empty(value):
            continue
        parts = urlsplit(str(value))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RestError(f"{param}_ERROR", "Handler URL is invalid")
        urls[param] = str(value)
    for param in REQUIRED_HANDLERS:
        if param not in urls:
            raise RestError(
                f"{param}_ERROR", f'Handler for "{BOT_EVENT_PARAMS[param]}" event isn\'t specified'
            )
    return urls


def _with_client_id(url: str, client_id: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}CLIENT_ID={client_id}"


@method("imbot.register", scope="imbot", keys_normalised=True)
def bot_register(ctx: CallContext, params: dict[str, Any]) -> int:
    """Register a bot (idempotent on CODE: the existing id comes back, handlers rebound)."""
    params = dict(params)
    app_id = ctx.app_id(params)
    urls = _handler_urls(params)
    code = str(params.get("CODE") or "")
    if not code:
        raise RestError("CODE_ERROR", "Bot code isn't specified")
    props = params.get("PROPERTIES")
    props = {str(k).upper(): v for k, v in props.items()} if isinstance(props, dict) else {}
    name, last_name = str(props.get("NAME") or ""), str(props.get("LAST_NAME") or "")
    if not name and not last_name:
        raise RestError("NAME_ERROR", "Bot name isn't specified")
    # Webhook bots: the app id is "custom" + CLIENT_ID, and their handlers carry CLIENT_ID.
    client_id = (
        None if ctx.auth_type == "oauth" and ctx.app_client_id else app_id.removeprefix("custom")
    )
    if client_id is not None:
        urls = {param: _with_client_id(url, client_id) for param, url in urls.items()}
    portal = ctx.portal
    existing = next((b for b in portal.bots.values() if b.code == code), None)
    if existing is not None:
        portal.reregister_bot(existing, urls)
        return existing.id
    bot_type = str(params.get("TYPE") or "B").upper()
    openline = bot_type == "O" or str(params.get("OPENLINE") or "N") == "Y"
    bot = portal.add_bot(
        code,
        name,
        app_id=app_id,
        bot_type=bot_type,
        openline=openline,
        urls=urls,
        client_id=client_id,
    )
    user = portal.users[bot.id]
    user.last_name = last_name
    user.work_position = str(props.get("WORK_POSITION") or "")
    user.email = str(props.get("EMAIL") or "")
    user.gender = str(props.get("PERSONAL_GENDER") or "")
    return bot.id


@method("imbot.unregister", scope="imbot", keys_normalised=True)
def bot_unregister(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Delete the app's bot; ONIMBOTDELETE goes to its handler first."""
    if php_empty(params.get("BOT_ID")):
        ctx.app_id(params)
        raise RestError("BOT_ID_ERROR", "Bot not found")
    bot = app_bot(ctx, params)
    portal = ctx.portal
    portal.emit_bot_event(
        bot, "ONIMBOTDELETE", payloads.bot_delete(bot), chat_id=0, ref=f"bot:{bot.id}"
    )
    portal.remove_bot(bot)
    return True


def _json_param(value: Any, code: str) -> Any:
    """ATTACH/KEYBOARD/MENU arrive as objects or JSON strings."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise RestError(code, "Incorrect params") from exc
    return value


def _check_blocks(params: dict[str, Any]) -> dict[str, Any]:
    """Validate ATTACH, KEYBOARD and MENU; return them as message params."""
    blocks: dict[str, Any] = {}
    if not php_empty(params.get("ATTACH")) and params.get("ATTACH") != "N":
        attach = _json_param(params["ATTACH"], "ATTACH_ERROR")
        if not isinstance(attach, list | dict):
            raise RestError("ATTACH_ERROR", "Incorrect attach params")
        if len(json.dumps(attach)) > ATTACH_LIMIT:
            raise RestError(
                "ATTACH_OVERSIZE", "You have exceeded the maximum allowable size of attach"
            )
        blocks["ATTACH"] = attach
    for key in ("KEYBOARD", "MENU"):
        if php_empty(params.get(key)) or params.get(key) == "N":
            continue
        value = _json_param(params[key], f"{key}_ERROR")
        buttons = value.get("BUTTONS") if isinstance(value, dict) else value
        if isinstance(buttons, dict):
            buttons = list(buttons.values())
        if (
            not isinstance(buttons, list)
            or not buttons
            or not all(
                isinstance(b, dict) and ("TEXT" in b or b.get("TYPE") == "NEWLINE") for b in buttons
            )
        ):
            raise RestError(f"{key}_ERROR", f"Incorrect {key.lower()} params")
        blocks[key] = buttons
    return blocks


def _private_chat(portal: Portal, one: int, two: int) -> Chat:
    """The private chat of two users, created on first use."""
    found = next(
        (
            c
            for c in portal.chats.values()
            if c.type == "P" and sorted(c.members) == sorted((one, two))
        ),
        None,
    )
    if found is not None:
        return found
    chat = Chat(portal.next_id("chat"), "P", "", one, sorted((one, two)), portal.now())
    portal.chats[chat.id] = chat
    return chat


def _target_chat(portal: Portal, bot: Bot, params: dict[str, Any]) -> tuple[Chat, bool]:
    """The chat to post in and whether the message is forced to be a system one."""
    from_id, to_id = php_int(params.get("FROM_USER_ID")), php_int(params.get("TO_USER_ID"))
    if from_id > 0 and to_id > 0:
        return _private_chat(portal, from_id, to_id), True
    dialog_id = str(params.get("DIALOG_ID") or "")
    if not DIALOG_ID.match(dialog_id):
        raise RestError("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    refused = RestError("WRONG_REQUEST", "Message isn't added")
    if dialog_id.startswith("chat"):
        chat = portal.get_chat(int(dialog_id[4:]))
        if chat is None or bot.id not in chat.members:
            raise refused
        return chat, False
    user = portal.get_user(int(dialog_id))
    if user is None or not user.active:
        raise refused
    return _private_chat(portal, bot.id, user.id), False


@method("imbot.message.add", scope="imbot", keys_normalised=True)
def bot_message_add(ctx: CallContext, params: dict[str, Any]) -> int:
    """Post as the bot into a chat or a private dialog; the new message id."""
    bot = app_bot(ctx, params)
    portal = ctx.portal
    chat, forced_system = _target_chat(portal, bot, params)
    raw = params.get("MESSAGE")
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise RestError("MESSAGE_EMPTY", "Message can't be empty")
    blocks = _check_blocks(params)
    system = forced_system or str(params.get("SYSTEM") or "N") == "Y"
    if str(params.get("URL_PREVIEW") or "Y") == "N":
        blocks["URL_PREVIEW"] = "N"
    if chat.entity_type == "LINES":
        message = messaging.staff_message(
            portal,
            chat,
            portal.users[bot.id],
            text,
            system=system,
            params=blocks,
            skip_connector=str(params.get("SKIP_CONNECTOR") or "N") == "Y",
        )
    else:
        message = portal.post_message(
            chat, bot.id, text, system=system, params=blocks, journal={"author": "bot"}
        )
    return message.id


def _own_message(ctx: CallContext, params: dict[str, Any]) -> tuple[Bot, Message]:
    bot = app_bot(ctx, params)
    message_id = php_int(params.get("MESSAGE_ID"))
    if message_id <= 0:
        raise RestError("MESSAGE_ID_ERROR", "Message ID can't be empty")
    message = ctx.portal.messages.get(message_id)
    if message is None or message.author_id != bot.id or message.deleted:
        raise RestError(
            "CANT_EDIT_MESSAGE", "Time has expired for modification or you don't have access", 403
        )
    return bot, message


@method("imbot.message.update", scope="imbot", keys_normalised=True)
def bot_message_update(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Edit the bot's own message: text, attach, keyboard, menu ('N' or empty clears)."""
    _, message = _own_message(ctx, params)
    blocks = _check_blocks(params)
    for key in ("ATTACH", "KEYBOARD", "MENU"):
        if key in params:
            message.params.pop(key, None)
    message.params.update(blocks)
    if "MESSAGE" in params:
        text = str(params.get("MESSAGE") or "").strip()
        if not text:
            return _delete(ctx.portal, message, complete=False)
        message.text = text
    messaging.message_changed(ctx.portal, message, deleted=False)
    return True


def _delete(portal: Portal, message: Message, *, complete: bool) -> bool:
    message.deleted = True
    message.text = DELETED_TEXT
    message.params.clear()
    messaging.message_changed(portal, message, deleted=True)
    if complete:
        del portal.messages[message.id]
    return True


@method("imbot.message.delete", scope="imbot", keys_normalised=True)
def bot_message_delete(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Delete the bot's own message (COMPLETE=Y: without the 'deleted' stub)."""
    _, message = _own_message(ctx, params)
    return _delete(ctx.portal, message, complete=str(params.get("COMPLETE") or "N") == "Y")


def _typing(ctx: CallContext, params: dict[str, Any]) -> bool:
    app_bot(ctx, params)
    if not DIALOG_ID.match(str(params.get("DIALOG_ID") or "")):
        raise RestError("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    return True


@method("imbot.chat.sendTyping", scope="imbot", keys_normalised=True)
def bot_chat_send_typing(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Show the bot typing in a dialog; fire-and-forget."""
    return _typing(ctx, params)


@method("imbot.sendTyping", scope="imbot", keys_normalised=True)
def bot_send_typing(ctx: CallContext, params: dict[str, Any]) -> bool:
    """The private alias of imbot.chat.sendTyping."""
    return _typing(ctx, params)
