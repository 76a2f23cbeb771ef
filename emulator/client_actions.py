"""What a client does in the chat widget besides writing: press a keyboard button of a bot's
message, edit or delete its own message (docs/bitrix24-bots-v2.md §5.3; docs/bitrix24.md §8.2).

A button is pressed by its label, as a person does. The widget does what the button says: a
COMMAND button raises the bot's command event (emulator.events_v2.keyboard_command), a SEND
button posts its ACTION_VALUE as the client's message (the bot gets no other callback). An edit
or deletion of the client's own message reaches the chat's open-line bots as
ONIMBOTMESSAGEUPDATE/DELETE (ONIMBOTV2* for a v2 bot), as the portal's messenger fires them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import events_v2, messaging
from emulator.primitives import RestError

if TYPE_CHECKING:
    from emulator.state import Message
    from emulator.store import PortalStore

__all__ = ["DELETED_TEXT", "client_delete", "client_edit", "client_press"]

DELETED_TEXT = "This message was deleted."


def client_press(portal: PortalStore, chat_id: int, message_id: int, label: str) -> dict[str, Any]:
    """The client presses the button labelled `label` under message `message_id`."""
    message = _message(portal, chat_id, message_id)
    button = next(
        (
            b
            for b in message.params.get("KEYBOARD") or []
            if isinstance(b, dict) and b.get("TEXT") == label
        ),
        None,
    )
    if button is None:
        raise RestError("BUTTON_NOT_FOUND", f"No button {label!r} on message {message_id}")
    if button.get("COMMAND"):
        return events_v2.keyboard_command(
            portal, chat_id, message_id, str(button["COMMAND"]), label=label
        )
    if button.get("ACTION") == "SEND":
        chat = portal.chats[chat_id]
        sent = messaging.client_message(
            portal, int(chat.line_id or 0), str(button["ACTION_VALUE"]), chat.entity_id, None
        )
        return {"sent": sent}
    raise RestError("BUTTON_NOT_PRESSABLE", f"Button {label!r} sends nothing to the chat")


def client_edit(portal: PortalStore, chat_id: int, message_id: int, text: str) -> dict[str, Any]:
    """The client changes the text of its own message."""
    message = _own(portal, chat_id, message_id)
    if not str(text).strip():
        raise RestError("MESSAGE_EMPTY", "Message can't be empty")
    message.text = str(text)
    messaging.message_changed(portal, message, deleted=False)
    return {"chat_id": chat_id, "message_id": message_id, "text": message.text}


def client_delete(portal: PortalStore, chat_id: int, message_id: int) -> dict[str, Any]:
    """The client deletes its own message (soft: the chat shows a placeholder)."""
    message = _own(portal, chat_id, message_id)
    message.deleted = True
    message.text = DELETED_TEXT
    message.params.clear()
    messaging.message_changed(portal, message, deleted=True)
    return {"chat_id": chat_id, "message_id": message_id, "deleted": True}


def _message(portal: PortalStore, chat_id: int, message_id: int) -> Message:
    message = portal.messages.get(message_id)
    if message is None or message.chat_id != chat_id or message.deleted:
        raise RestError("MESSAGE_NOT_FOUND", f"No message {message_id} in chat {chat_id}")
    return message


def _own(portal: PortalStore, chat_id: int, message_id: int) -> Message:
    message = _message(portal, chat_id, message_id)
    chat = portal.chats[chat_id]
    if message.author_id != chat.client_id:
        raise RestError("CANT_EDIT_MESSAGE", "The client may change only its own messages", 403)
    return message
