"""`imbot.v2.Chat.*` and `imbot.v2.Command.register` (docs/bitrix24-bots-v2.md §5): a v2 bot writes,
edits and deletes messages, shows a typing indicator, switches the text field, and registers the
commands its keyboard buttons send. Messages go to the same chats, message table and journal as
v1 messages (kind `message`, `via` = the method), and in a LINES chat through the same path as an
operator's — so they count in the session and reach the client unless `skipConnector`."""

from __future__ import annotations

import json
import re
from typing import Any

from emulator import messaging
from emulator.bots_v2 import Command, InputAction
from emulator.methods._common import php_int
from emulator.methods._v2_common import fields_of, flag, owned_bot, required
from emulator.methods._v2_keyboard import keyboard, removes
from emulator.methods.imbot import _delete, _private_chat
from emulator.payloads_v2 import truncate
from emulator.portal import Portal
from emulator.primitives import RestError
from emulator.registry import CallContext, method
from emulator.state import Bot, Chat, Message

SEND_FIELDS = frozenset(
    {
        "MESSAGE",
        "ATTACH",
        "SYSTEM",
        "KEYBOARD",
        "URL_PREVIEW",
        "SKIP_CONNECTOR",
        "SILENT_CONNECTOR",
        "TEMPLATE_ID",
        "REPLY_ID",
    }
)
UPDATE_FIELDS = frozenset({"MESSAGE", "ATTACH", "KEYBOARD", "URL_PREVIEW"})
COMMAND_NAME = re.compile(r"^[\w-]+$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _upper_fields(params: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """`fields` with its TOP-level keys camelCase -> UPPER_SNAKE, then the white list."""
    out = {_CAMEL.sub("_", str(k)).upper(): v for k, v in fields_of(params).items()}
    return {k: v for k, v in out.items() if k in allowed}


def _denied() -> RestError:
    return RestError("ACCESS_DENIED", "You do not have access to this chat")


def _chat(portal: Portal, bot: Bot, dialog_id: str) -> Chat:
    """The chat a dialogId names, as the bot may use it: `chat<id>` it is a member of, or the
    private dialog with a user (created on first use)."""
    if dialog_id.startswith("chat") and dialog_id[4:].isdigit():
        found = portal.get_chat(int(dialog_id[4:]))
        if found is None:
            raise RestError("CHAT_NOT_FOUND", "Chat not found")
        if bot.id not in found.members:
            raise _denied()
        return found
    if dialog_id.isdigit():
        user = portal.get_user(int(dialog_id))
        if user is None or not user.active:
            raise RestError("CHAT_NOT_FOUND", "Chat not found")
        return _private_chat(portal, bot.id, user.id)
    raise RestError("CHAT_NOT_FOUND", "Chat not found")


def _attach(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise RestError("PARAM_ATTACH_ERROR", "Incorrect attach params") from exc
    if not isinstance(value, list | dict):
        raise RestError("PARAM_ATTACH_ERROR", "Incorrect attach params")
    return value


@method("imbot.v2.Chat.Message.send", scope="imbot", keys_normalised=False)
def message_send(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Post as the bot; `{id, uuidMap}` (forwards are not modelled, so uuidMap is empty)."""
    bot = owned_bot(ctx, params)
    portal = ctx.portal
    room = _chat(portal, bot, str(required(params, "dialogId")))
    fields = _upper_fields(params, SEND_FIELDS)
    raw = fields.get("MESSAGE")
    text = raw if isinstance(raw, str) else "" if raw is None else str(raw)
    extra: dict[str, Any] = {}
    if fields.get("ATTACH") not in (None, "", [], {}):
        extra["ATTACH"] = _attach(fields["ATTACH"])
    if not text.strip() and "ATTACH" not in extra:
        raise RestError("EMPTY_MESSAGE", "Message can't be empty")
    if not removes(fields.get("KEYBOARD")):
        extra["KEYBOARD"] = keyboard(fields["KEYBOARD"], bot.id)
    reply_id = php_int(fields.get("REPLY_ID"))
    if reply_id > 0:
        quoted = portal.messages.get(reply_id)
        if quoted is None or quoted.chat_id != room.id:
            raise RestError("REPLY_ERROR", "You can only reply to a message within the same chat")
        extra["REPLY_ID"] = reply_id
    if "URL_PREVIEW" in fields and not flag(fields["URL_PREVIEW"]):
        extra["URL_PREVIEW"] = "N"
    if fields.get("TEMPLATE_ID"):
        extra["TEMPLATE_ID"] = str(fields["TEMPLATE_ID"])
    if flag(fields.get("SILENT_CONNECTOR")):
        extra["SILENT_CONNECTOR"] = "Y"
    system = flag(fields.get("SYSTEM"))
    if room.entity_type == "LINES":
        message = messaging.staff_message(
            portal,
            room,
            portal.users[bot.id],
            truncate(text),
            system=system,
            params=extra,
            skip_connector=flag(fields.get("SKIP_CONNECTOR")),
        )
    else:
        message = portal.post_message(
            room, bot.id, truncate(text), system=system, params=extra, journal={"author": "bot"}
        )
    return {"id": message.id, "uuidMap": {}}


def _editable(ctx: CallContext, params: dict[str, Any], *, update: bool) -> tuple[Bot, Message]:
    """The message a bot may change: its own non-system one (docs); with the code's rules also
    any non-system message of a LINES chat it is in (update only), and MESSAGE_ACCESS_DENIED."""
    bot = owned_bot(ctx, params)
    portal = ctx.portal
    code_rules = portal.bots_v2.settings.message_rules == "code"
    refusal = RestError(
        "MESSAGE_ACCESS_DENIED" if code_rules else "ACCESS_DENIED", "Access to the message denied"
    )
    found = portal.messages.get(php_int(required(params, "messageId")))
    if found is None or found.deleted or found.system:
        raise refusal
    if found.author_id == bot.id:
        return bot, found
    room = portal.chats.get(found.chat_id)
    lines_member = room is not None and room.entity_type == "LINES" and bot.id in room.members
    if update and code_rules and lines_member:
        return bot, found
    raise refusal


@method("imbot.v2.Chat.Message.update", scope="imbot", keys_normalised=False)
def message_update(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Edit text, attach, keyboard (`"N"`/empty removes it) or URL preview."""
    bot, found = _editable(ctx, params, update=True)
    fields = _upper_fields(params, UPDATE_FIELDS)
    if "KEYBOARD" in fields:
        if removes(fields["KEYBOARD"]):
            found.params.pop("KEYBOARD", None)
        else:
            found.params["KEYBOARD"] = keyboard(fields["KEYBOARD"], bot.id)
    if "ATTACH" in fields:
        if removes(fields["ATTACH"]):
            found.params.pop("ATTACH", None)
        else:
            found.params["ATTACH"] = _attach(fields["ATTACH"])
    if "URL_PREVIEW" in fields:
        found.params["URL_PREVIEW"] = "Y" if flag(fields["URL_PREVIEW"]) else "N"
    if "MESSAGE" in fields:
        text = str(fields["MESSAGE"] or "")
        if not text.strip() and "ATTACH" not in found.params:
            raise RestError("EMPTY_MESSAGE", "Message can't be empty")
        found.text = truncate(text)
    messaging.message_changed(ctx.portal, found, deleted=False)
    return {"result": True}


@method("imbot.v2.Chat.Message.delete", scope="imbot", keys_normalised=False)
def message_delete(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Delete the bot's own message: soft (a stub stays) or `complete`."""
    _, found = _editable(ctx, params, update=False)
    _delete(ctx.portal, found, complete=flag(params.get("complete")))
    return {"result": True}


@method("imbot.v2.Chat.InputAction.notify", scope="imbot", keys_normalised=False)
def input_action_notify(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Show "typing" (or an IMBOT_AGENT_ACTION_* status) in a chat the bot may access; kept as
    the chat's last indicator for assertions. The duration is passed through unchecked."""
    bot = owned_bot(ctx, params)
    portal = ctx.portal
    room = _chat(portal, bot, str(required(params, "dialogId")))
    duration = params.get("duration")
    portal.bots_v2.input_actions[(bot.id, room.id)] = InputAction(
        bot.id,
        room.id,
        str(params.get("statusMessageCode") or ""),
        None if duration is None else php_int(duration),
        portal.now(),
    )
    return {"result": True}


@method("imbot.v2.Chat.TextField.enabled", scope="imbot", keys_normalised=False)
def text_field_enabled(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Switch the chat's input field (`chat.textFieldEnabled`); the bot must be a member."""
    bot = owned_bot(ctx, params)
    portal = ctx.portal
    room = _chat(portal, bot, str(required(params, "dialogId")))
    if bot.id not in room.members:
        raise _denied()
    enabled = flag(params["enabled"]) if "enabled" in params else True
    if enabled:
        portal.bots_v2.text_field_disabled.discard(room.id)
    else:
        portal.bots_v2.text_field_disabled.add(room.id)
    return {"result": True}


@method("imbot.v2.Command.register", scope="imbot", keys_normalised=False)
def command_register(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Register a command for the bot, idempotent per (bot, command); `fields` or, until
    2026-09-30, the flat legacy form."""
    bot = owned_bot(ctx, params)
    portal = ctx.portal
    fields = fields_of(params) if "fields" in params or "FIELDS" in params else params
    name = str(fields.get("command") or "").lstrip("/")
    if not name:
        raise RestError("COMMAND_REQUIRED", "Command is required")
    if not COMMAND_NAME.match(name):
        raise RestError("COMMAND_NAME_INVALID", "Command name is invalid")
    hidden = flag(fields.get("hidden"))
    title = fields.get("title")
    if not hidden and not (isinstance(title, dict) and title):
        raise RestError("COMMAND_TITLE_REQUIRED", "Command title is required")
    found = next((c for c in portal.bots_v2.commands_of(bot.id) if c.command == name), None)
    if found is None:
        given = fields.get("params")
        found = Command(
            portal.next_id("command"),
            bot.id,
            name,
            {str(k): str(v) for k, v in title.items()} if isinstance(title, dict) else {},
            {str(k): str(v) for k, v in given.items()} if isinstance(given, dict) else {},
            common=flag(fields.get("common")),
            hidden=hidden,
            extranet_support=flag(fields.get("extranetSupport")),
        )
        portal.bots_v2.commands[found.id] = found
    return {
        "command": {
            "id": found.id,
            "botId": bot.id,
            "command": f"/{found.command}",
            "common": found.common,
            "hidden": found.hidden,
            "extranetSupport": found.extranet_support,
        }
    }
