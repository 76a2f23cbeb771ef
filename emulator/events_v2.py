"""Where a v2 bot's events go (docs/bitrix24-bots-v2.md §1.1, §3.2, §4).

The portal fires both event families from the same code paths (`Bot::fireRestEvents(
'onImBotMessageAdd', 'onImBotV2MessageAdd', ...)`): the v1 paths decide WHO gets an event (the
chat's OPENLINE member bots, never for a bot's own message, the joining bot, the deleted bot), and
each recipient gets it in the format of the API that registered it. So the emulator's v1 paths
stay the only routing logic, and for a v2 recipient `route_v1_event` turns the v1 occurrence into
its `ONIMBOTV2*` twin, then:
* a FETCH-mode bot gets one row in the event log (emulator.fetch_queue), journaled `event_queued`;
* a WEBHOOK-mode bot gets one form-encoded POST per subscription of its owner, through the same
  never-retried delivery queue as v1 events (journaled `event_posted` when attempted).
Events that happen while a bot is in the other mode are not kept for it."""

from __future__ import annotations

from typing import Any

from emulator import payloads, payloads_v2
from emulator.journal import current_via
from emulator.primitives import RestError
from emulator.state import Bot, Chat, Message
from emulator.store import PortalStore

# v1 event -> its v2 twin.
TWINS = {
    "ONIMBOTMESSAGEADD": "ONIMBOTV2MESSAGEADD",
    "ONIMBOTMESSAGEUPDATE": "ONIMBOTV2MESSAGEUPDATE",
    "ONIMBOTMESSAGEDELETE": "ONIMBOTV2MESSAGEDELETE",
    "ONIMBOTJOINCHAT": "ONIMBOTV2JOINCHAT",
    "ONIMBOTDELETE": "ONIMBOTV2DELETE",
}


def route_v1_event(
    store: PortalStore, bot: Bot, event: str, data: dict[str, Any], *, chat_id: int, ref: str
) -> None:
    """A v1 code path raised `event` for `bot`, a v2 bot: deliver the v2 twin instead."""
    twin = TWINS.get(event)
    if twin is None:
        return  # no v2 twin modelled (ONIMBOTCONTEXTGET comes only from a portal UI)
    params = data.get("PARAMS") or {}
    room = store.chats.get(chat_id)
    if twin == "ONIMBOTV2DELETE":
        emit(store, bot, twin, {}, chat_id=0, ref=ref)
        forget(store, bot)
        return
    if room is None:
        return
    if twin == "ONIMBOTV2JOINCHAT":
        who = store.get_user(int(params.get("USER_ID") or 0))
        body = {
            "dialogId": room.dialog_id,
            "chat": payloads_v2.chat(store, room, bot.id),
            "user": payloads_v2.user(store, who),
            "language": payloads_v2.LANGUAGE,
        }
        emit(store, bot, twin, body, chat_id=chat_id, ref=ref)
        return
    message_id = int(params.get("MESSAGE_ID") or params.get("ID") or 0)
    item = store.messages.get(message_id)
    if item is None:
        return
    emit(store, bot, twin, message_event(store, bot, room, item, twin), chat_id=chat_id, ref=ref)


def message_event(
    store: PortalStore, bot: Bot, room: Chat, item: Message, event: str
) -> dict[str, Any]:
    """`data` (without `bot`) of MESSAGEADD/UPDATE (`message`) or MESSAGEDELETE (`messageId`)."""
    head: dict[str, Any] = (
        {"messageId": item.id}
        if event == "ONIMBOTV2MESSAGEDELETE"
        else {"message": payloads_v2.message(item)}
    )
    return {
        **head,
        "chat": payloads_v2.chat(store, room, bot.id),
        "user": payloads_v2.user(store, store.get_user(item.author_id)),
        "language": payloads_v2.LANGUAGE,
    }


def emit(
    store: PortalStore, bot: Bot, event: str, body: dict[str, Any], *, chat_id: int, ref: str
) -> None:
    """Deliver one v2 event to one bot in its mode; `body` is `data` without `bot`."""
    rec = store.bots_v2.bots.get(bot.id)
    if rec is None:
        return
    if rec.event_mode == "fetch":
        # The stored snapshot carries the full owner-format bot object, no auth.
        row = store.fetch_queue.append(
            bot.id, event, {"bot": payloads_v2.bot_owner(store, bot), **body}
        )
        entry: dict[str, Any] = {"event_id": row.id, "name": event, "bot_id": bot.id}
        if chat_id:
            entry["chat_id"] = chat_id
        store.journal.append(
            "event_queued", **entry, dedup=f"{event}:{bot.id}:{ref}", via=current_via()
        )
        return
    settings = store.bots_v2.settings
    for sub in store.bots_v2.subscriptions_of(bot.app_id, event):
        strict = bot.client_id is not None and settings.strict_client_id_url
        if strict and "CLIENT_ID=" not in sub.url:
            continue  # 2026-05 code: "Event is intended for another application"
        data = {"bot": _bot_block(store, bot), **body}
        payload = payloads.envelope(
            event, sub.id, data, store.now(), payloads.event_auth(store, _app_token(store, bot))
        )
        store.event_counts[event] += 1
        note: dict[str, Any] = {"dedup": f"{event}:{sub.id}:{ref}"}
        if chat_id:
            note["chat_id"] = chat_id
        store.sink.post(sub.url, payloads_v2.wire(payload), note)


def _app_token(store: PortalStore, bot: Bot) -> str:
    """`auth[application_token]`: the app's token, or the webhook-token bot's synthetic one."""
    if bot.client_id is None:
        return store.identity.application_token
    if store.bots_v2.settings.webhook_token_auth == "raw":
        return bot.client_id
    return f"custom{bot.client_id}"


def _bot_block(store: PortalStore, bot: Bot) -> dict[str, Any]:
    """`data[bot]` of a webhook event: id, code and the bot user's OAuth block — none for a
    webhook-token bot (no app, so no tokens; absent on the wire)."""
    block: dict[str, Any] = {"id": bot.id, "code": bot.code}
    if bot.client_id is not None:
        return block
    auth: dict[str, Any] = {
        "domain": store.identity.domain,
        "server_endpoint": payloads.SERVER_ENDPOINT,
        "status": "L",
        "client_endpoint": store.client_endpoint,
        "member_id": store.identity.member_id,
        "user_id": bot.id,
        "application_token": store.identity.application_token,
    }
    if store.token_issuer is not None:
        auth.update(store.token_issuer(bot.id, bot.app_id))
    return {**block, "auth": auth}


def forget(store: PortalStore, bot: Bot) -> None:
    """After ONIMBOTV2DELETE went out: the bot's pending fetch rows go (so a fetch bot never
    reads its own DELETE), its v2 rows go, and its owner's subscriptions go with the owner's
    last bot (others sharing an OAuth client id keep them)."""
    store.fetch_queue.purge(bot.id)
    store.bots_v2.drop_bot(bot.id)
    if not any(b.id != bot.id and b.app_id == bot.app_id for b in store.bots.values()):
        store.bots_v2.unsubscribe(bot.app_id)


def keyboard_command(
    store: PortalStore,
    chat_id: int,
    message_id: int,
    command: str,
    user_id: int = 0,
    label: str | None = None,
) -> dict[str, Any]:
    """A client clicks a COMMAND button of a bot message (control API `client-command`): the
    button's bot gets ONIMBOTV2COMMANDADD with `command.context = "keyboard"`; a BLOCK=Y button
    is blocked afterwards. Refused (400) when the message has no such live button or the
    command is not registered for that bot. `label` picks the button when several raise the
    same command (with different COMMAND_PARAMS)."""
    item = store.messages.get(message_id)
    room = store.chats.get(chat_id)
    if item is None or room is None or item.chat_id != chat_id or item.deleted:
        raise RestError("MESSAGE_NOT_FOUND", f"No message {message_id} in chat {chat_id}")
    name = command.lstrip("/")
    button = next(
        (
            b
            for b in item.params.get("KEYBOARD") or []
            if isinstance(b, dict)
            and b.get("COMMAND") == name
            and (label is None or b.get("TEXT") == label)
        ),
        None,
    )
    if button is None or button.get("DISABLED") == "Y":
        raise RestError("BUTTON_NOT_FOUND", f"No active /{name} button on message {message_id}")
    bot = store.bots.get(int(button.get("BOT_ID") or 0))
    if bot is None or bot.id not in store.bots_v2.bots:
        raise RestError("BOT_NOT_FOUND", "The button's bot is not a v2 bot (v1 not modelled)")
    found = next((c for c in store.bots_v2.commands_of(bot.id) if c.command == name), None)
    if found is None:
        raise RestError("COMMAND_NOT_FOUND", f"/{name} is not registered for bot {bot.id}")
    clicker = user_id or room.client_id
    if button.get("BLOCK") == "Y":
        button["DISABLED"] = "Y"
    body = {
        "command": {
            "id": found.id,
            "command": f"/{name}",
            "params": str(button.get("COMMAND_PARAMS") or ""),
            "context": "keyboard",
        },
        "message": payloads_v2.message(item),
        "chat": payloads_v2.chat(store, room, bot.id),
        "user": payloads_v2.user(store, store.get_user(clicker)),
        "language": payloads_v2.LANGUAGE,
    }
    ref = f"command:{message_id}:{name}:{len(store.journal)}"
    emit(store, bot, "ONIMBOTV2COMMANDADD", body, chat_id=chat_id, ref=ref)
    return {"bot_id": bot.id, "command_id": found.id, "blocked": button.get("BLOCK") == "Y"}
