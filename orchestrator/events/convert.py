"""Bitrix24 events -> the dialog's inputs, once, at the ingress, and the form they are queued in.

The ingress validates an event (events/models.py) and converts it here; what it queues is the
inputs (`{"inputs": [[kind, fields], ...]}`), so a worker rebuilds plain dataclasses and never
parses or validates the wire event again. An inbox entry an older ingress queued as the wire
payload is still read (`inputs_of_stored`, the one place a worker parses a wire event).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.dialog.inputs import (
    BotJoined,
    ButtonPressed,
    ClientMessage,
    Input,
    MessageDeleted,
    MessageUpdated,
    OperatorMessage,
    SessionFinished,
    SessionStarted,
    input_from_record,
    input_record,
)
from orchestrator.events import models as ev
from orchestrator.events.base import chat_of_dialog
from orchestrator.events.bots_v2 import BUTTON_COMMAND

__all__ = ["inputs_from_event", "inputs_of_stored", "stored_inputs"]


def stored_inputs(event: ev.Event) -> dict[str, Any]:
    """What the inbox keeps of a verified event: its inputs, as records."""
    return {"inputs": [list(input_record(i)) for i in inputs_from_event(event)]}


def inputs_of_stored(payload: Mapping[str, Any]) -> list[Input]:
    """The inputs a queued portal event means (`stored_inputs`'s form, or a legacy payload)."""
    records = payload.get("inputs")
    if isinstance(records, list):
        return [input_from_record(kind, fields) for kind, fields in records]
    return inputs_from_event(ev.parse_stored_event(payload))


def inputs_from_event(event: ev.Event) -> list[Input]:
    """The domain inputs one portal event means (none for portal-level or non-Open-Lines ones)."""
    at = float(event.ts)
    if isinstance(event, ev.BotMessageAdd):
        return _from_bot_message(event, at)
    if isinstance(event, ev.BotMessageUpdate | ev.BotMessageDelete):
        params = event.data.PARAMS
        if not params.is_lines:
            return []
        base = _portal(event, params.chat_id, params.session_id, params.line_id, at)
        if isinstance(event, ev.BotMessageDelete):
            return [MessageDeleted(message_id=params.MESSAGE_ID, **base)]
        return [MessageUpdated(message_id=params.MESSAGE_ID, text=params.MESSAGE, **base)]
    if isinstance(event, ev.BotJoinChat):
        p = event.data.PARAMS
        if p.CHAT_ENTITY_TYPE != "LINES" and p.CHAT_TYPE != "L":
            return []
        base = _portal(event, p.CHAT_ID, None, p.line_id, at)
        return [BotJoined(bot_id=event.bot_id, user_code=p.CHAT_ENTITY_ID, **base)]
    if isinstance(event, ev.OpenLineMessageAdd):
        return _from_openline_message(event, at)
    if isinstance(event, ev.BotV2MessageAdd | ev.BotV2MessageDelete | ev.BotV2JoinChat):
        return _from_bot_v2(event, at)  # (MessageUpdate is a MessageAdd subclass)
    if isinstance(event, ev.SessionStart | ev.SessionFinish):
        data = event.data.DATA
        base = _portal(event, data.chat_id, event.session_id, data.line_id, at)
        if isinstance(event, ev.SessionStart):
            return [SessionStarted(**base)]
        return [SessionFinished(**base)]
    if isinstance(event, ev.BotV2CommandAdd):
        return _pressed(event, at)
    # ONIMBOT(V2)DELETE, ONAPPINSTALL, ONAPPUNINSTALL: portal-level, not dialog inputs
    return []


def _pressed(event: ev.BotV2CommandAdd, at: float) -> list[Input]:
    """A press of one of our keyboard buttons (the BUTTON_COMMAND) by the line's client; other
    commands, and presses by an operator (who sees the same keyboard), mean nothing here."""
    chat, command, user = event.data.chat, event.data.command, event.data.user
    chat_id = chat.id or chat_of_dialog(chat.dialogId)
    if command is None or command.command.lstrip("/") != BUTTON_COMMAND:
        return []
    if not chat.is_lines or not chat_id or not user.connector or not command.params:
        return []
    message_id = event.data.message.id if event.data.message else 0
    return [
        ButtonPressed(
            value=command.params,
            message_id=message_id,
            user_id=user.id,
            **_portal(event, chat_id, chat.session_id, chat.line_id, at),
        )
    ]


def _portal(
    event: ev.BaseEvent, chat_id: int, session_id: int | None, line_id: int | None, at: float
) -> dict[str, Any]:
    return {
        "member_id": event.member_id,
        "chat_id": chat_id,
        "session_id": session_id,
        "line_id": line_id,
        "at": at,
    }


def _from_bot_message(event: ev.BotMessageAdd, at: float) -> list[Input]:
    params = event.data.PARAMS
    if not params.is_lines or params.SYSTEM or not params.FROM_USER_ID:
        return []  # private chats are not dialogs; system notices are the portal talking
    base = _portal(event, params.chat_id, params.session_id, params.line_id, at)
    author = params.FROM_USER_ID
    user = event.data.USER
    # The client is a connector user; without USER, the user code's last part is the client.
    is_client = user.IS_CONNECTOR if user else params.user_code.endswith(f"|{author}")
    if is_client:
        return [
            ClientMessage(
                text=params.MESSAGE,
                message_id=params.MESSAGE_ID,
                user_id=author,
                user_code=params.user_code,
                bot_id=next(iter(event.bot_ids), 0),
                **base,
            )
        ]
    if user and user.IS_BOT:
        return []
    return [
        OperatorMessage(text=params.MESSAGE, message_id=params.MESSAGE_ID, user_id=author, **base)
    ]


def _from_openline_message(event: ev.OpenLineMessageAdd, at: float) -> list[Input]:
    packet = event.data.DATA
    if packet.message.system or not packet.portal_chat_id:
        return []  # a notice, or only external ids: we cannot tell which dialog it belongs to
    line_id = packet.connector.line_id or None
    base = _portal(event, packet.portal_chat_id, None, line_id, at)
    if event.data.outbound:  # going out to the connector: an operator (or the bot) wrote
        return [
            OperatorMessage(
                text=packet.message.text,
                message_id=packet.portal_message_id,
                user_id=packet.message.user_id,
                **base,
            )
        ]
    return [
        ClientMessage(
            text=packet.message.text,
            message_id=packet.portal_message_id,
            user_id=packet.message.user_id,
            **base,
        )
    ]


def _from_bot_v2(
    event: ev.BotV2MessageAdd | ev.BotV2MessageDelete | ev.BotV2JoinChat, at: float
) -> list[Input]:
    """The v2 twins of the v1 bot events mean the same inputs (docs/bitrix24-bots-v2.md)."""
    chat = event.data.chat
    chat_id = chat.id or chat_of_dialog(chat.dialogId)
    if not chat.is_lines or not chat_id:
        return []  # private and group chats are not dialogs; an Open Line chat has an id
    base = _portal(event, chat_id, chat.session_id, chat.line_id, at)
    if isinstance(event, ev.BotV2JoinChat):
        return [BotJoined(bot_id=event.bot_id, user_code=chat.entityId, **base)]
    if isinstance(event, ev.BotV2MessageDelete):
        return [MessageDeleted(message_id=event.data.messageId, **base)]
    message, user = event.data.message, event.data.user
    if message is None or message.isSystem or not message.authorId:
        return []  # a notice: the portal talking
    if isinstance(event, ev.BotV2MessageUpdate):
        return [MessageUpdated(message_id=message.id, text=message.text, **base)]
    # The client is the connector user; without `user`, the user code's last part is the client.
    is_client = user.connector if user.id else chat.entityId.endswith(f"|{message.authorId}")
    if is_client:
        return [
            ClientMessage(
                text=message.text,
                message_id=message.id,
                user_id=message.authorId,
                user_code=chat.entityId,
                bot_id=event.bot_id,
                **base,
            )
        ]
    if user.bot:
        return []
    return [
        OperatorMessage(text=message.text, message_id=message.id, user_id=message.authorId, **base)
    ]
