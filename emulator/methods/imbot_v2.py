"""`imbot.v2.Bot.*` and `imbot.v2.Revision.get` (docs/bitrix24-bots-v2.md §1.7, §2): the v2 bot
registry. A v2 bot is a v1 bot row with `api="v2"` plus its v2 settings (emulator.bots_v2), owned
by the caller's owner key; its webhook subscriptions belong to that owner."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from emulator import payloads, payloads_v2
from emulator.bots_v2 import (
    BACKGROUNDS,
    TOKEN_MAX_LENGTH,
    TYPES,
    V2_EVENTS,
    Subscription,
    V2Bot,
)
from emulator.methods._common import php_int
from emulator.methods._v2_common import (
    fields_of,
    first,
    flag,
    owned_bot,
    owner_key,
    token_of,
    v2_row,
)
from emulator.portal import Portal
from emulator.primitives import RestError
from emulator.registry import CallContext, method
from emulator.state import Bot

MODES = ("fetch", "webhook")
COLORS = {"lightblue": "LIGHT_BLUE"}


def bot_answer(portal: Portal, bot: Bot, *, owner: bool = True) -> dict[str, Any]:
    """`{bot, users}`: the bot (owner or brief format) and its user record."""
    shown = payloads_v2.bot_owner(portal, bot) if owner else payloads_v2.bot_brief(portal, bot)
    return {"bot": shown, "users": [payloads_v2.user(portal, portal.get_user(bot.id))]}


def _check_callback(url: str) -> None:
    """HandlerHelper::checkCallback: http(s) and a host with a dot."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RestError("BOT_INVALID_CALLBACK", "Unsupported handler protocol")
    if "." not in (parts.hostname or ""):
        raise RestError("BOT_INVALID_CALLBACK", "Wrong handler URL")


def _check_token_length(token: str, code: str = "BOT_TOKEN_INVALID_LENGTH") -> None:
    if len(token) > TOKEN_MAX_LENGTH:
        raise RestError(code, f"botToken must not be longer than {TOKEN_MAX_LENGTH} characters")


def _subscribe(portal: Portal, owner: str, url: str) -> None:
    """Bind the eight ONIMBOTV2* events of `owner` to `url` (a pair bound already stays)."""
    bound = {(s.event, s.url) for s in portal.bots_v2.subscriptions_of(owner)}
    for event in V2_EVENTS:
        if (event, url) not in bound:
            sub = Subscription(portal.next_id("binding"), event, url, owner)
            portal.bots_v2.subscriptions[sub.id] = sub


def _shares_app(portal: Portal, bot: Bot) -> bool:
    """An OAuth app's bot with neighbours under the same client id: the automatic clean-up of
    subscriptions is skipped, as it would cut the neighbours off."""
    return bot.client_id is None and any(
        b.id != bot.id and b.app_id == bot.app_id for b in portal.bots.values()
    )


def _apply_properties(portal: Portal, bot: Bot, rec: V2Bot | None, props: Any) -> None:
    if not isinstance(props, dict):
        return
    user = portal.users[bot.id]
    if first(props, "name", "NAME") is not None:
        user.name = str(first(props, "name", "NAME"))
    for attr, keys in (
        ("last_name", ("lastName", "LAST_NAME")),
        ("work_position", ("workPosition", "WORK_POSITION")),
        ("gender", ("gender", "GENDER")),
    ):
        value = first(props, *keys)
        if value is not None:
            setattr(user, attr, str(value))
    color = first(props, "color", "COLOR")
    if color is not None and rec is not None:
        rec.color = COLORS.get(str(color).lower(), str(color).upper())


def _background(value: Any) -> str | None:
    """backgroundId: a known name, anything else null (BOT-FIX-0408-4)."""
    return str(value) if isinstance(value, str) and value in BACKGROUNDS else None


@method("imbot.v2.Bot.register", scope="imbot", keys_normalised=False)
def bot_register(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Register a bot, idempotent by code for its owner (the stored bot comes back unchanged)."""
    portal = ctx.portal
    settings = portal.bots_v2.settings
    token = token_of(ctx, params, register=True)
    owner = f"custom{token}" if token is not None else str(ctx.app_client_id)
    gate = settings.token_length_from
    if token is not None and gate is not None and portal.now() >= gate:
        _check_token_length(token)
    fields = fields_of(params)
    code = str(first(fields, "code", "CODE") or "")
    if not code:
        raise RestError("BOT_CODE_REQUIRED", "Bot code is required")
    props = first(fields, "properties", "PROPERTIES")
    props = props if isinstance(props, dict) else {}
    name = str(first(props, "name", "NAME") or "")
    if not name:
        raise RestError("BOT_PROPERTIES_REQUIRED", "Bot properties with a name are required")
    mode = str(first(fields, "eventMode", "EVENT_MODE") or "fetch").lower()
    if mode not in MODES:
        raise RestError("BOT_INVALID_EVENT_MODE", "eventMode must be fetch or webhook")
    url = str(first(fields, "webhookUrl", "WEBHOOK_URL") or "")
    if mode == "webhook" and not url:
        raise RestError("BOT_WEBHOOK_URL_REQUIRED", "webhookUrl is required for webhook mode")
    existing = next((b for b in portal.bots.values() if b.code == code), None)
    if existing is not None:
        if existing.app_id != owner:
            raise RestError("BOT_CODE_ALREADY_TAKEN", "Bot with this code already exists")
        return bot_answer(portal, existing)
    limit = settings.bot_limit
    if limit is not None and len(portal.bots_of_app(owner)) >= limit:
        raise RestError("BOT_LIMIT_EXCEEDED", f"No more than {limit} bots per application")
    kind = str(first(fields, "type", "TYPE") or "bot").lower()
    if kind not in TYPES:
        raise RestError("BOT_INVALID_TYPE", f"Unknown bot type {kind}")
    if mode == "webhook":
        _check_callback(url)
    openline = kind == "openline" or flag(first(fields, "isSupportOpenline", "IS_SUPPORT_OPENLINE"))
    bot = portal.add_bot(
        code,
        name,
        app_id=owner,
        bot_type=TYPES[kind],
        openline=openline,
        urls={},
        client_id=token,
        api="v2",
    )
    rec = V2Bot(
        bot.id,
        kind,
        event_mode="webhook" if mode == "webhook" else "fetch",
        webhook_url=url,
        is_hidden=flag(first(fields, "isHidden", "IS_HIDDEN")),
        is_reactions_enabled=flag(first(fields, "isReactionsEnabled", "IS_REACTIONS_ENABLED"))
        if first(fields, "isReactionsEnabled", "IS_REACTIONS_ENABLED") is not None
        else True,
        background_id=_background(first(fields, "backgroundId", "BACKGROUND_ID")),
    )
    portal.bots_v2.bots[bot.id] = rec
    _apply_properties(portal, bot, rec, props)
    if mode == "webhook":
        _subscribe(portal, owner, url)
    return bot_answer(portal, bot)


def _rotate(portal: Portal, bot: Bot, new_token: str) -> None:
    """Replace a webhook-token bot's token: the old one stops at once, its subscriptions move
    to the new synthetic application token (copied when another bot still uses the old one)."""
    _check_token_length(new_token)
    old_owner, new_owner = bot.app_id, f"custom{new_token}"
    if new_owner == old_owner:
        return
    if any(b.app_id == new_owner for b in portal.bots.values()):
        raise RestError("BOT_TOKEN_ROTATION_FAILED", "Token rotation failed")
    bot.app_id, bot.client_id = new_owner, new_token
    alone = not portal.bots_of_app(old_owner)
    for sub in portal.bots_v2.subscriptions_of(old_owner):
        if alone:
            sub.owner = new_owner
        else:
            copy = Subscription(portal.next_id("binding"), sub.event, sub.url, new_owner)
            portal.bots_v2.subscriptions[copy.id] = copy


def _switch(portal: Portal, bot: Bot, rec: V2Bot, mode: str, url: str) -> None:
    """The subscription table of bot-update.md for a mode and/or URL change."""
    keep = _shares_app(portal, bot)
    before, target = rec.event_mode, url or rec.webhook_url
    if before == "fetch" and mode == "webhook":
        portal.fetch_queue.purge(bot.id)  # they would be orphaned
        if target:
            if not keep:
                portal.bots_v2.unsubscribe(bot.app_id, keep_url=target)
            _subscribe(portal, bot.app_id, target)
    elif before == "webhook" and mode == "fetch":
        if not keep:
            portal.bots_v2.unsubscribe(bot.app_id)
    elif mode == "webhook" and url and url != rec.webhook_url:
        if not keep:
            portal.bots_v2.unsubscribe(bot.app_id)
        _subscribe(portal, bot.app_id, url)
    rec.event_mode = "webhook" if mode == "webhook" else "fetch"
    if url:
        rec.webhook_url = url


@method("imbot.v2.Bot.update", scope="imbot", keys_normalised=False)
def bot_update(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Change a bot's properties, flags, mode, URL or token (rotation); flags in camelCase."""
    bot = owned_bot(ctx, params)
    portal = ctx.portal
    fields = fields_of(params)
    rec = v2_row(ctx, bot)
    mode = str(fields.get("eventMode") or (rec.event_mode if rec else "webhook")).lower()
    if mode not in MODES:
        raise RestError("BOT_INVALID_EVENT_MODE", "eventMode must be fetch or webhook")
    url = str(fields.get("webhookUrl") or "")
    if url:
        try:
            _check_callback(url)
        except RestError:
            if portal.bots_v2.settings.invalid_callback_on_update == "error":
                raise
            url = ""  # the 2026-05 code: recorded, but the bot comes back (200), not rebound
    new_token = str(fields.get("botToken") or "").strip()
    if new_token and bot.client_id is not None:
        _rotate(portal, bot, new_token)
    props = fields.get("properties", fields.get("PROPERTIES"))
    _apply_properties(portal, bot, rec, props)
    if rec is None:
        return bot_answer(portal, bot)  # a v1 bot: only its user record is v2's to change
    if "isHidden" in fields:
        rec.is_hidden = flag(fields["isHidden"])
    if "isReactionsEnabled" in fields:
        rec.is_reactions_enabled = flag(fields["isReactionsEnabled"])
    if "isSupportOpenline" in fields and rec.type != "openline":
        bot.openline = flag(fields["isSupportOpenline"])
    if "backgroundId" in fields:
        rec.background_id = _background(fields["backgroundId"])
    _switch(portal, bot, rec, mode, url)
    return bot_answer(portal, bot)


@method("imbot.v2.Bot.unregister", scope="imbot", keys_normalised=False)
def bot_unregister(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Delete the bot: ONIMBOTV2DELETE is built and sent first (a fetch bot's row is then purged
    with the rest of its queue), then the bot, its user and its chats' memberships go."""
    bot = owned_bot(ctx, params)
    portal = ctx.portal
    portal.emit_bot_event(
        bot, "ONIMBOTDELETE", payloads.bot_delete(bot), chat_id=0, ref=f"bot:{bot.id}"
    )
    portal.remove_bot(bot)
    return {"result": True}


@method("imbot.v2.Bot.list", scope="imbot", keys_normalised=False)
def bot_list(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """The caller's bots, owner format; `hasNextPage` is "the page is full" (count == limit)."""
    portal = ctx.portal
    owner = owner_key(ctx, params)
    bots = portal.bots_of_app(owner)
    filters = params.get("filter")
    wanted = filters.get("type") if isinstance(filters, dict) else None
    if wanted:
        kind = str(wanted).lower()
        if kind in TYPES:
            bots = [b for b in bots if payloads_v2.v2_record(portal, b).type == kind]
        elif portal.bots_v2.settings.unknown_type_filter == "empty":
            bots = []
    limit = php_int(params.get("limit")) if params.get("limit") is not None else 50
    limit = limit if limit > 0 else 50
    offset = max(0, php_int(params.get("offset")))
    page = bots[offset : offset + limit]
    return {
        "bots": [payloads_v2.bot_owner(portal, b) for b in page],
        "users": [payloads_v2.user(portal, portal.get_user(b.id)) for b in page],
        "hasNextPage": len(page) == limit,
    }


@method("imbot.v2.Bot.get", scope="imbot", keys_normalised=False)
def bot_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Any bot by id or code: owner format for its owner, brief for everyone else."""
    portal = ctx.portal
    owner = owner_key(ctx, params)
    bot_id = php_int(first(params, "botId", "BOT_ID"))
    code = first(params, "code", "CODE")
    if bot_id <= 0 and code is None:
        raise RestError("PARAMS_REQUIRED", "botId or code is required")
    if bot_id > 0:
        bot = portal.bots.get(bot_id)
    else:
        bot = next((b for b in portal.bots.values() if b.code == str(code)), None)
    if bot is None:
        raise RestError("BOT_NOT_FOUND", "Bot not found")
    return bot_answer(portal, bot, owner=bot.app_id == owner)


@method("imbot.v2.Revision.get", scope="imbot", keys_normalised=False)
def revision_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, int]:
    """The messenger's API revisions; no bot, no token needed."""
    return dict(ctx.portal.bots_v2.settings.revision)
