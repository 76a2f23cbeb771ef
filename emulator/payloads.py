"""Outbound event payloads (docs/bitrix24.md §8), built as the nested dicts the platform
form-encodes with PHP brackets. Scalars are strings because that is how they arrive on the wire.

The builders read a portal only through `PortalView`, the little they need of it, so the portal
can use them without this module knowing the portal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from emulator.primitives import PortalIdentity
from emulator.state import Bot, Chat, Line, Message, Session, User

# (user_id, app client_id) -> token fields for a bot's `data[BOT][id]` block; set by the platform.
TokenIssuer = Callable[[int, str], dict[str, Any]]


class PortalView(Protocol):
    """What event payloads read of a portal: who it is, where it answers, the tokens it hands
    its bots, its lines and its users."""

    @property
    def identity(self) -> PortalIdentity: ...

    @property
    def client_endpoint(self) -> str: ...

    @property
    def token_issuer(self) -> TokenIssuer | None: ...

    @property
    def lines(self) -> Mapping[int, Line]: ...

    def get_user(self, user_id: int) -> User | None: ...


SERVER_ENDPOINT = "https://oauth.bitrix.info/rest/"


def yn(flag: bool) -> str:
    return "Y" if flag else "N"


def envelope(
    event: str, handler_id: int, data: dict[str, Any], ts: float, auth: dict[str, Any]
) -> dict[str, Any]:
    """The top level of every event POST (REST-SEND `call`)."""
    return {
        "event": event,
        "event_handler_id": str(handler_id),
        "data": data,
        "ts": str(int(ts)),
        "auth": auth,
    }


def event_auth(portal: PortalView, application_token: str) -> dict[str, Any]:
    """The top-level `auth` block of an event with no acting user: no tokens (§8)."""
    return {
        "domain": portal.identity.domain,
        "client_endpoint": portal.client_endpoint,
        "server_endpoint": SERVER_ENDPOINT,
        "member_id": portal.identity.member_id,
        "status": "L",
        "application_token": application_token,
    }


def bot_block(portal: PortalView, bot: Bot) -> dict[str, Any]:
    """`data[BOT]`: the bot's own auth keyed by its id; webhook bots only get BOT_ID/BOT_CODE."""
    ident = {"BOT_ID": str(bot.id), "BOT_CODE": bot.code}
    if bot.client_id is not None:
        return {str(bot.id): ident}
    auth: dict[str, Any] = {
        "domain": portal.identity.domain,
        "server_endpoint": SERVER_ENDPOINT,
        "status": "L",
        "client_endpoint": portal.client_endpoint,
        "member_id": portal.identity.member_id,
        "user_id": str(bot.id),
        "client_id": bot.app_id,
        "application_token": portal.identity.application_token,
    }
    if portal.token_issuer is not None:
        auth.update(portal.token_issuer(bot.id, bot.app_id))
    return {str(bot.id): {**auth, "AUTH": dict(auth), **ident}}


def user_block(user: User | None, *, flags: bool = True) -> dict[str, Any]:
    """`data[USER]`: the author (ONIMBOTJOINCHAT has no IS_* flags); empty for author 0."""
    if user is None:
        return {}
    block: dict[str, Any] = {
        "ID": str(user.id),
        "NAME": user.full_name,
        "FIRST_NAME": user.name,
        "LAST_NAME": user.last_name,
        "WORK_POSITION": user.work_position,
        "GENDER": user.gender,
    }
    if flags:
        block.update(
            IS_BOT=yn(user.is_bot),
            IS_CONNECTOR=yn(user.is_connector),
            IS_NETWORK="N",
            IS_EXTRANET="N",
        )
    return block


def chat_fields(chat: Chat) -> dict[str, Any]:
    """The CHAT_* keys of bot message events in a group (here: LINES) chat."""
    return {
        "CHAT_ID": str(chat.id),
        "CHAT_TITLE": chat.title,
        "CHAT_AUTHOR_ID": str(chat.author_id),
        "CHAT_TYPE": chat.type,
        "CHAT_AVATAR": "",
        "CHAT_COLOR": "MINT",
        "CHAT_ENTITY_TYPE": chat.entity_type,
        "CHAT_ENTITY_ID": chat.entity_id,
        "CHAT_ENTITY_DATA_1": chat.entity_data_1,
        "CHAT_ENTITY_DATA_2": chat.entity_data_2,
        "CHAT_ENTITY_DATA_3": chat.entity_data_3,
        "CHAT_EXTRANET": "N",
        "CHAT_USER_COUNT": str(len(chat.members)),
    }


def bot_message(
    portal: PortalView, bot: Bot, chat: Chat, message: Message, author: User | None
) -> dict[str, Any]:
    """ONIMBOTMESSAGEADD `data` for a message in a LINES chat (§8.1)."""
    params = {
        "MESSAGE": message.text,
        "MESSAGE_ORIGINAL": message.text,
        "TEMPLATE_ID": "",
        "MESSAGE_TYPE": chat.type,
        "FROM_USER_ID": str(message.author_id),
        "AUTHOR_ID": str(message.author_id),
        "DIALOG_ID": chat.dialog_id,
        "TO_CHAT_ID": str(chat.id),
        "TO_USER_ID": "0",
        "SYSTEM": yn(message.system),
        "PARAMS": dict(message.params),
        "FILES": {},
        "EXTRA_PARAMS": {},
        "URL_ATTACH": [],
        **chat_fields(chat),
        "CHAT_CAN_POST": "",
        "RID": "",
        "IS_MANAGER": "N",
        "SKIP_CONNECTOR": "N",
        "IMPORTANT_CONNECTOR": "N",
        "SILENT_CONNECTOR": "N",
        "COMMAND_CONTEXT": "TEXTAREA",
        "MENTIONED_LIST": [],
        "PLATFORM_CONTEXT": "web",
        "MESSAGE_ID": str(message.id),
        "LANGUAGE": "en",
    }
    return {"BOT": bot_block(portal, bot), "PARAMS": params, "USER": user_block(author)}


def bot_message_change(
    portal: PortalView,
    bot: Bot,
    chat: Chat,
    message: Message,
    author: User | None,
    *,
    deleted: bool,
) -> dict[str, Any]:
    """ONIMBOTMESSAGEUPDATE / ONIMBOTMESSAGEDELETE `data` (§8.2)."""
    text = "This message was deleted." if deleted else message.text
    params: dict[str, Any] = {
        "ID": str(message.id),
        "CHAT_ID": str(chat.id),
        "AUTHOR_ID": str(message.author_id),
        "MESSAGE": text,
        "MESSAGE_TYPE": chat.type,
        "CHAT_AUTHOR_ID": str(chat.author_id),
        "CHAT_ENTITY_TYPE": chat.entity_type,
        "CHAT_ENTITY_ID": chat.entity_id,
        "CHAT_ENTITY_DATA_1": chat.entity_data_1,
        "CHAT_ENTITY_DATA_2": chat.entity_data_2,
        "CHAT_ENTITY_DATA_3": chat.entity_data_3,
        "FROM_USER_ID": str(message.author_id),
        "TO_USER_ID": "0",
        "DIALOG_ID": chat.dialog_id,
        "MESSAGE_ID": str(message.id),
        "CHAT_TYPE": chat.type,
        "LANGUAGE": "en",
    }
    if not deleted:
        params.update(
            MENTIONED_LIST=[],
            MESSAGE_ORIGINAL=message.text,
            CHAT_USER_COUNT=str(len(chat.members)),
            PLATFORM_CONTEXT="web",
        )
    return {"BOT": bot_block(portal, bot), "PARAMS": params, "USER": user_block(author)}


def bot_join(portal: PortalView, bot: Bot, chat: Chat, user_id: int) -> dict[str, Any]:
    """ONIMBOTJOINCHAT `data` (§8.3): the joining bot, the chat and the context user."""
    params = {
        "CHAT_TYPE": chat.type,
        "MESSAGE_TYPE": chat.type,
        "BOT_ID": str(bot.id),
        "USER_ID": str(user_id),
        "CHAT_ID": str(chat.id),
        "CHAT_AUTHOR_ID": str(chat.author_id),
        "CHAT_ENTITY_TYPE": chat.entity_type,
        "CHAT_ENTITY_ID": chat.entity_id,
        "ACCESS_HISTORY": "1",
        "DIALOG_ID": chat.dialog_id,
        "LANGUAGE": "en",
    }
    return {
        "BOT": bot_block(portal, bot),
        "PARAMS": params,
        "USER": user_block(portal.get_user(user_id), flags=False),
    }


def bot_delete(bot: Bot) -> dict[str, Any]:
    """ONIMBOTDELETE `data` (§8.4)."""
    return {"BOT_ID": str(bot.id), "BOT_CODE": bot.code}


def session_event(portal: PortalView, session: Session) -> dict[str, Any]:
    """OnSessionStart / OnSessionFinish `data`, the code's `prepareEventsParams` shape (§8.6)."""
    line = portal.lines[session.config_id]
    return {
        "DATA": {
            "connector": {
                "connector_id": session.source,
                "line_id": str(session.config_id),
                "chat_id": str(session.chat_id),
                "user_id": str(session.user_id),
            },
            "chat": {"chat_id": str(session.chat_id)},
            "line": {"id": str(line.id), "name": line.name},
        }
    }


def _connector(chat: Chat) -> dict[str, Any]:
    """The connector-layer ids of a chat, taken from its USER_CODE (external chat and user)."""
    connector_id, line_id, external_chat, external_user = chat.entity_id.split("|")
    return {
        "connector_id": connector_id,
        "line_id": line_id,
        "chat_id": external_chat,
        "user_id": external_user,
    }


def _im(chat: Chat, message: Message) -> dict[str, str]:
    """The portal's own ids of a connector message (`im` block of the imconnector docs): `chat`
    and `connector` carry the external channel's ids, which name no portal chat."""
    return {"chat_id": str(chat.id), "message_id": str(message.id)}


def client_message(portal: PortalView, chat: Chat, message: Message) -> dict[str, Any]:
    """OnOpenLineMessageAdd for a message received from the client's connector (§8.6)."""
    connector = _connector(chat)
    return {
        "DATA": {
            "connector": connector,
            "chat": {"id": connector["chat_id"]},
            "im": _im(chat, message),
            "message": {
                "id": str(message.id),
                "date": str(int(message.date)),
                "text": message.text,
                "files": [],
                "attach": [],
                "system": "N",
                "user_id": connector["user_id"],
            },
            "ref": [],
            "extra": {},
        }
    }


def outgoing_message(portal: PortalView, chat: Chat, message: Message) -> dict[str, Any]:
    """OnOpenLineMessageAdd for an operator/bot message going out to the connector (§8.6)."""
    connector = _connector(chat)
    return {
        "CONNECTOR": connector["connector_id"],
        "LINE": connector["line_id"],
        "DATA": {
            "connector": connector,
            "chat": {"id": connector["chat_id"]},
            "im": _im(chat, message),
            "message": {
                "id": str(message.id),
                "date": str(int(message.date)),
                "text": message.text,
                "files": [],
                "attach": [],
                "system": yn(message.system),
                "user_id": str(message.author_id),
            },
        },
    }
