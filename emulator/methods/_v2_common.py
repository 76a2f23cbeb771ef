"""What every `imbot.v2.*` controller does before its action (docs/bitrix24-bots-v2.md §1.3, §1.6):
find the caller's owner key, find and own the bot, read v2 booleans. Every business error here is
HTTP 400 (the REST layer gives controller errors no status of their own)."""

from __future__ import annotations

from typing import Any

from emulator.bots_v2 import V2Bot
from emulator.methods._common import php_int
from emulator.primitives import RestError
from emulator.registry import CallContext
from emulator.state import Bot

TOKEN_KEYS = ("botToken", "BOT_TOKEN", "clientId", "CLIENT_ID")


def first(params: dict[str, Any], *keys: str) -> Any:
    """The first of `keys` present and not an empty string (both spellings are read)."""
    for key in keys:
        value = params.get(key)
        if value is not None and value != "":
            return value
    return None


def flag(value: Any) -> bool:
    """BotController::normalizeBooleanVariable: true, "Y", "1", "TRUE" (any case); else false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    return isinstance(value, str) and value.upper() in ("Y", "1", "TRUE")


def fields_of(params: dict[str, Any]) -> dict[str, Any]:
    value = first(params, "fields", "FIELDS")
    return value if isinstance(value, dict) else {}


def token_of(ctx: CallContext, params: dict[str, Any], *, register: bool = False) -> str | None:
    """The raw botToken of a webhook call (None for an OAuth app, whose client id wins)."""
    if ctx.auth_type == "oauth" and ctx.app_client_id:
        return None
    token = first(params, *TOKEN_KEYS)
    if token is None and register:
        token = first(fields_of(params), "botToken", "BOT_TOKEN")
    if token is None:
        raise RestError(
            "BOT_TOKEN_NOT_SPECIFIED",
            "Bot token not specified (botToken is required for webhook auth)",
        )
    return str(token)


def owner_key(ctx: CallContext, params: dict[str, Any], *, register: bool = False) -> str:
    """Who owns what this call touches: the OAuth app's client id, else "custom" + botToken
    (the same key a v1 webhook bot with CLIENT_ID=<token> has)."""
    token = token_of(ctx, params, register=register)
    if token is None:
        assert ctx.app_client_id is not None
        return ctx.app_client_id
    return f"custom{token}"


def owned_bot(ctx: CallContext, params: dict[str, Any]) -> Bot:
    """A bot-scoped call's bot: botId > 0, existing, and the caller's."""
    owner = owner_key(ctx, params)
    bot_id = php_int(first(params, "botId", "BOT_ID"))
    if bot_id <= 0:
        raise RestError("BOT_ID_REQUIRED", "botId is required")
    bot = ctx.portal.bots.get(bot_id)
    if bot is None:
        raise RestError("BOT_NOT_FOUND", "Bot not found")
    if bot.app_id != owner:
        raise RestError("BOT_OWNERSHIP_ERROR", "Bot was installed by another rest application")
    return bot


def v2_row(ctx: CallContext, bot: Bot) -> V2Bot | None:
    """The bot's v2 settings (None: a v1 bot seen through v2)."""
    return ctx.portal.bots_v2.bots.get(bot.id)


def required(params: dict[str, Any], name: str) -> Any:
    """A required scalar argument of the action: the framework's binder fails before the action
    (HTTP 400; the error code is not a stable string on the portal — the emulator says
    ARGUMENT_NULL)."""
    value = params.get(name)
    if value is None or value == "":
        raise RestError("ARGUMENT_NULL", f"Could not find value for parameter {{{name}}}")
    return value
