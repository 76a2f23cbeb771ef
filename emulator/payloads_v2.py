"""Chat-bot API v2 shapes (docs/bitrix24-bots-v2.md §2.6, §3.6, §4): the camelCase bot, user, chat
and message objects the `imbot.v2.*` methods answer with and the `ONIMBOTV2*` events carry, and
the webhook form of an event (every scalar a string, nulls and empty arrays gone).

Booleans are JSON booleans here (v2 answers and the fetch log); `wire()` turns them into the
`"1"`/`"0"` a webhook receives. Reads the store; builds nothing it does not return."""

from __future__ import annotations

from typing import Any

from emulator.bots_v2 import V2Bot
from emulator.state import Bot, Chat, Message, User
from emulator.store import PortalStore
from emulator.transport import iso_date

MESSAGE_LIMIT = 20_000
TRUNCATED = " (...)"
LANGUAGE = "en"
# The colour of a user whose properties named none (the messenger picks one).
DEFAULT_COLOR = "#29ad49"


def truncate(text: str) -> str:
    """Message text as stored and shown: at most 20,000 characters, then " (...)"."""
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + TRUNCATED


def v2_record(store: PortalStore, bot: Bot) -> V2Bot:
    """A bot's v2 settings; a v1 bot gets the values v2 shows for it (no own v2 row)."""
    found = store.bots_v2.bots.get(bot.id)
    if found is not None:
        return found
    v1_types = {"O": "openline", "S": "supervisor", "N": "network", "P": "personal"}
    return V2Bot(bot.id, v1_types.get(bot.type, "bot"), event_mode="webhook")


def bot_brief(store: PortalStore, bot: Bot) -> dict[str, Any]:
    """What anybody may read of a bot (Bot.get by a non-owner)."""
    rec = v2_record(store, bot)
    return {
        "id": bot.id,
        "code": bot.code,
        "type": rec.type,
        "isHidden": rec.is_hidden,
        "isSupportOpenline": bot.openline,
        "isReactionsEnabled": rec.is_reactions_enabled,
        "backgroundId": rec.background_id,
        "language": LANGUAGE,
    }


def bot_owner(store: PortalStore, bot: Bot) -> dict[str, Any]:
    """The owner format: brief plus module, mode and counters (and `appId` on request, as the
    2026-05 code still sent it)."""
    rec = v2_record(store, bot)
    chats = [c for c in store.chats.values() if bot.id in c.members]
    partners = {m for c in chats if c.type == "P" for m in c.members if m != bot.id}
    block = {
        **bot_brief(store, bot),
        "moduleId": "rest",
        "eventMode": rec.event_mode,
        "countMessage": sum(1 for m in store.messages.values() if m.author_id == bot.id),
        "countCommand": len(store.bots_v2.commands_of(bot.id)),
        "countChat": len(chats),
        "countUser": len(partners),
    }
    if store.bots_v2.settings.emit_app_id:
        block["appId"] = bot.app_id
    return block


def user(store: PortalStore, person: User | None) -> dict[str, Any]:
    """The User object; online fields are always false in events (entities.md)."""
    if person is None:
        return {}
    external = "bot" if person.is_bot else "imconnector" if person.is_connector else "default"
    kind = "bot" if person.is_bot else "extranet" if person.is_connector else "employee"
    rec = store.bots_v2.bots.get(person.id)
    return {
        "id": person.id,
        "active": person.active,
        "name": person.full_name,
        "firstName": person.name,
        "lastName": person.last_name,
        "workPosition": person.work_position,
        "color": (rec.color if rec is not None and rec.color else DEFAULT_COLOR),
        "avatar": "",
        "gender": person.gender,
        "birthday": "",
        "extranet": person.is_connector,
        "bot": person.is_bot,
        "connector": person.is_connector,
        "externalAuthId": external,
        "status": "online",
        "idle": False,
        "lastActivityDate": False,
        "mobileLastDate": False,
        "desktopLastDate": False,
        "absent": False,
        "departments": list(person.department),
        "phones": False,
        "type": kind,
        "website": "",
        "email": person.email,
    }


def chat(store: PortalStore, room: Chat, viewer_id: int) -> dict[str, Any]:
    """The Chat object; a private chat's dialogId is the OTHER party as `viewer_id` sees it."""
    lines = room.entity_type == "LINES"
    if room.type == "P":
        other = next((m for m in room.members if m != viewer_id), viewer_id)
        dialog_id, kind = str(other), "private"
    else:
        dialog_id, kind = room.dialog_id, "lines" if lines else "chat"
    return {
        "id": room.id,
        "dialogId": dialog_id,
        "name": room.title,
        "description": "",
        "type": kind,
        "messageType": room.type if room.type in ("L", "P") else "C",
        "owner": room.author_id,
        "color": "#4ba984",
        "avatar": "",
        "extranet": False,
        "containsCollaber": False,
        "entityType": room.entity_type,
        "entityId": room.entity_id,
        "entityData1": room.entity_data_1,
        "entityData2": room.entity_data_2,
        "entityData3": room.entity_data_3,
        "entityLink": {"type": room.entity_type, "url": "", "id": ""},
        "diskFolderId": None,
        "permissions": {},
        "parentChatId": 0,
        "parentMessageId": 0,
        "isNew": False,
        "textFieldEnabled": "N" if room.id in store.bots_v2.text_field_disabled else "Y",
        "backgroundId": None,
    }


def message(item: Message) -> dict[str, Any]:
    """The Message object, with the code's snake_case duplicates `chat_id` and `author_id`."""
    author = 0 if item.system else item.author_id
    return {
        "id": item.id,
        "chatId": item.chat_id,
        "chat_id": item.chat_id,
        "authorId": author,
        "author_id": author,
        "date": iso_date(item.date),
        "text": truncate(item.text),
        "isSystem": item.system,
        "uuid": str(item.params.get("TEMPLATE_ID", "")),
        "forward": None,
        "params": {k: v for k, v in item.params.items() if k != "TEMPLATE_ID"},
        "viewedByOthers": False,
    }


def wire(value: Any) -> Any:
    """An event as PHP `http_build_query` sends it: scalars as strings (`true` -> "1", `false`
    -> "0"), nulls and empty arrays left out (so a key may be absent rather than "")."""
    if isinstance(value, dict):
        out = {str(k): wire(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v != {} and v != []}
    if isinstance(value, list | tuple):
        items = [wire(v) for v in value if v is not None]
        return [v for v in items if v != {} and v != []]
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
