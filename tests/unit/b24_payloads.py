"""Event payloads as the portal sends them (docs/bitrix24.md §8): nested dicts of strings."""

from __future__ import annotations

from typing import Any

from orchestrator.events.formdata import decode_form, encode_form

MEMBER = "m1"
DOMAIN = "acme.bitrix24.com"
APP_TOKEN = "apptok"
BOT_ID = 77
TS = 1767225601


def auth(**extra: str) -> dict[str, str]:
    """The top-level `auth` block of an event."""
    return {"domain": DOMAIN, "member_id": MEMBER, "application_token": APP_TOKEN, **extra}


def _bot_block() -> dict[str, Any]:
    return {
        str(BOT_ID): {
            "access_token": "tok-bot",
            "expires": "1767229200",
            "expires_in": "3600",
            "scope": "imbot,imopenlines",
            "domain": DOMAIN,
            "member_id": MEMBER,
            "refresh_token": "rt-bot",
            "user_id": str(BOT_ID),
            "client_id": "local.abc",
            "application_token": APP_TOKEN,
            "AUTH": {"access_token": "tok-bot"},
            "BOT_ID": str(BOT_ID),
            "BOT_CODE": "support",
        }
    }


def bot_message(
    text: str = "Need help with my order",
    *,
    event: str = "ONIMBOTMESSAGEADD",
    chat_id: int = 901,
    message_id: int = 70001,
    from_user: int = 4567,
    connector: bool = True,
    session_id: int = 512,
    line_id: int = 3,
) -> dict[str, Any]:
    """An ONIMBOTMESSAGE* payload in an Open Lines chat; `connector=False` = an operator wrote."""
    params = {
        "MESSAGE": text,
        "MESSAGE_TYPE": "L",
        "CHAT_TYPE": "L",
        "FROM_USER_ID": str(from_user),
        "AUTHOR_ID": str(from_user),
        "DIALOG_ID": f"chat{chat_id}",
        "TO_CHAT_ID": str(chat_id),
        "CHAT_ID": str(chat_id),
        "TO_USER_ID": "0",
        "SYSTEM": "N",
        "CHAT_ENTITY_TYPE": "LINES",
        "CHAT_ENTITY_ID": f"telegrambot|{line_id}|123456789|4567",
        "CHAT_ENTITY_DATA_1": f"N|NONE|0|N|N|{session_id}|1767225000|{line_id}|0|0",
        "CHAT_ENTITY_DATA_2": "LEAD|0|COMPANY|0|CONTACT|0|DEAL|0",
        "CHAT_ENTITY_DATA_3": "",
        "MESSAGE_ID": str(message_id),
        "LANGUAGE": "en",
        "PLATFORM_CONTEXT": "web",
    }
    if event != "ONIMBOTMESSAGEADD":
        params["ID"] = str(message_id)
    user = {
        "ID": str(from_user),
        "NAME": "Jane Roe",
        "FIRST_NAME": "Jane",
        "LAST_NAME": "Roe",
        "WORK_POSITION": "",
        "GENDER": "",
        "IS_BOT": "N",
        "IS_CONNECTOR": "Y" if connector else "N",
        "IS_NETWORK": "N",
        "IS_EXTRANET": "N",
    }
    return {
        "event": event,
        "event_handler_id": "41",
        "data": {"BOT": _bot_block(), "PARAMS": params, "USER": user},
        "ts": str(TS),
        "auth": auth(access_token="tok", refresh_token="rt", user_id=str(from_user)),
    }


def bot_join(chat_id: int = 901, line_id: int = 3) -> dict[str, Any]:
    """ONIMBOTJOINCHAT: the bot joined an Open Lines chat as its welcome bot."""
    return {
        "event": "ONIMBOTJOINCHAT",
        "event_handler_id": "42",
        "data": {
            "BOT": _bot_block(),
            "PARAMS": {
                "CHAT_TYPE": "L",
                "MESSAGE_TYPE": "L",
                "BOT_ID": str(BOT_ID),
                "USER_ID": "4567",
                "CHAT_ID": str(chat_id),
                "CHAT_AUTHOR_ID": "0",
                "CHAT_ENTITY_TYPE": "LINES",
                "CHAT_ENTITY_ID": f"telegrambot|{line_id}|123456789|4567",
                "ACCESS_HISTORY": "1",
                "DIALOG_ID": f"chat{chat_id}",
                "LANGUAGE": "en",
            },
            "USER": {
                "ID": "4567",
                "NAME": "Jane Roe",
                "FIRST_NAME": "Jane",
                "LAST_NAME": "Roe",
                "WORK_POSITION": "",
                "GENDER": "",
            },
        },
        "ts": str(TS),
        "auth": auth(access_token="tok"),
    }


def bot_delete() -> dict[str, Any]:
    """ONIMBOTDELETE."""
    return {
        "event": "ONIMBOTDELETE",
        "event_handler_id": "43",
        "data": {"BOT_ID": str(BOT_ID), "BOT_CODE": "support"},
        "ts": str(TS),
        "auth": auth(),
    }


def openline_message_in(chat_id: int = 901, message_id: int = 70001) -> dict[str, Any]:
    """OnOpenLineMessageAdd for a client message received from a connector (inbound shape)."""
    return {
        "event": "ONOPENLINEMESSAGEADD",
        "event_handler_id": "50",
        "data": {
            "DATA": {
                "connector": {
                    "connector_id": "telegrambot",
                    "line_id": "3",
                    "chat_id": "123456789",
                    "user_id": "4567",
                },
                "chat": {"id": "123456789"},
                "im": {"chat_id": str(chat_id), "message_id": str(message_id)},
                "message": {
                    "id": "555",
                    "date": "1767225600",
                    "text": "Need help",
                    "user_id": "4567",
                },
            }
        },
        "ts": str(TS),
        "auth": auth(),
    }


def openline_message_out(chat_id: int = 901, message_id: int = 70002) -> dict[str, Any]:
    """OnOpenLineMessageAdd for an operator message going out to a connector (outbound shape)."""
    return {
        "event": "ONOPENLINEMESSAGEADD",
        "event_handler_id": "50",
        "data": {
            "CONNECTOR": "telegrambot",
            "LINE": "3",
            "DATA": {
                "connector": {
                    "connector_id": "telegrambot",
                    "line_id": "3",
                    "chat_id": "123456789",
                    "user_id": "4567",
                },
                "message": {
                    "id": str(message_id),
                    "chat_id": str(chat_id),
                    "user_id": "12",
                    "text": "Hello, I am Olga",
                    "system": "N",
                },
            },
        },
        "ts": str(TS),
        "auth": auth(),
    }


def session_event(name: str = "ONSESSIONSTART", chat_id: int = 901) -> dict[str, Any]:
    """OnSessionStart/Finish as the code builds it (prepareEventsParams): no session id."""
    return {
        "event": name,
        "event_handler_id": "51",
        "data": {
            "DATA": {
                "connector": {
                    "connector_id": "telegrambot",
                    "line_id": "3",
                    "chat_id": str(chat_id),
                    "user_id": "4567",
                },
                "chat": {"chat_id": str(chat_id)},
                "line": {"id": "3", "name": "Support"},
            }
        },
        "ts": str(TS),
        "auth": auth(),
    }


def session_event_docs(
    name: str = "ONSESSIONFINISH", chat_id: int = 901, session_id: int = 512
) -> dict[str, Any]:
    """OnSessionStart/Finish as the docs show it: DATA is a one-element array with a session."""
    return {
        "event": name,
        "eventId": "1",
        "data": {
            "DATA": [
                {
                    "connector": {
                        "connector_id": "livechat",
                        "line_id": "3",
                        "chat_id": str(chat_id),
                        "user_id": "4567",
                    },
                    "session": {
                        "id": str(session_id),
                        "closed": "Y",
                        "parent_id": "0",
                        "close_term": "0",
                    },
                    "chat": {"id": str(chat_id)},
                    "user": {"id": "4567"},
                }
            ]
        },
        "ts": str(TS),
        "auth": auth(),
    }


def app_install() -> dict[str, Any]:
    """ONAPPINSTALL with the portal's token pair."""
    return {
        "event": "ONAPPINSTALL",
        "event_handler_id": "1",
        "data": {"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "en"},
        "ts": str(TS),
        "auth": auth(
            access_token="at",
            refresh_token="rt",
            expires_in="3600",
            scope="imbot",
            client_endpoint=f"https://{DOMAIN}/rest/",
            user_id="1",
        ),
    }


def app_uninstall() -> dict[str, Any]:
    """ONAPPUNINSTALL."""
    return {
        "event": "ONAPPUNINSTALL",
        "event_handler_id": "2",
        "data": {"LANGUAGE_ID": "en", "CLEAN": "0"},
        "ts": str(TS),
        "auth": auth(),
    }


def over_the_wire(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as the ingress sees it: form-encoded by the portal, decoded by us."""
    return decode_form(encode_form(payload), "application/x-www-form-urlencoded")
