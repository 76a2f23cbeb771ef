"""The chat-bot API v2 (`imbot.v2.*`), typed, for one portal and one bot owner.

    bots = client.api(member_id).bot_v2(bot_token)     # bot_token None for an OAuth app
    bot = await bots.get(code="openlines_orchestrator")
    page = await bots.events(bot.id, offset=last_confirmed)

Who owns a bot decides everything here (docs/bitrix24-bots-v2.md "Owner and token"): an OAuth
app owns its bots by its client id and any token it sends is ignored; over an inbound webhook the
owner is `"custom"` + the bot token, which must ride on every call. So `BotV2Api` is bound to a
token and adds `botToken` to each call itself: a caller cannot forget it on one method.

Parameters are camelCase and the controllers read them case-sensitively; every business error
(`BOT_NOT_FOUND`, `BOT_OWNERSHIP_ERROR`, `ACCESS_DENIED`, ...) is HTTP 400 and is classified by
its `error` code alone (orchestrator/bitrix/envelope.py), so `BOT_NOT_FOUND` is a `MethodError`
with that code. Retry safety of each write: orchestrator/bitrix/retry.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from orchestrator.bitrix.envelope import Envelope
from orchestrator.bitrix.models_v2 import BotCommand, BotV2, EventPage, SentMessage
from orchestrator.errors import MethodError, OutcomeUnknown

__all__ = ["TOKEN_MAX_LENGTH", "BotV2Api", "Button", "PortalCaller"]

# A longer token is refused (BOT_TOKEN_INVALID_LENGTH) by rotation always and by register from
# 2026-08-06 on (docs/bitrix24-bots-v2.md "Owner and token").
TOKEN_MAX_LENGTH = 40
BotType = Literal["bot", "network", "openline", "supervisor", "personal"]
EventMode = Literal["fetch", "webhook"]


class PortalCaller(Protocol):
    """What the v2 wrappers need of `PortalApi`: the seam that keeps this module from importing
    orchestrator/bitrix/methods.py back."""

    member_id: str

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Envelope: ...


@dataclass(frozen=True)
class Button:
    """One keyboard button. The server reads button keys exactly as sent and drops a button
    whose keys are not UPPER_CASE (docs/bitrix24-bots-v2.md "Messages", keyboards), so the wire
    form is built here, never by hand. `newline=True` is a line break, not a button."""

    text: str = ""
    command: str | None = None
    command_params: str | None = None
    link: str | None = None
    action: str | None = None
    action_value: str | None = None
    bg_color: str | None = None
    text_color: str | None = None
    display: Literal["LINE", "BLOCK"] | None = None
    block: bool | None = None
    disabled: bool | None = None
    newline: bool = False

    def wire(self) -> dict[str, Any]:
        """The button as the portal reads it."""
        if self.newline:
            return {"TYPE": "NEWLINE"}
        fields: dict[str, Any] = {
            "TEXT": self.text,
            "COMMAND": self.command,
            "COMMAND_PARAMS": self.command_params,
            "LINK": self.link,
            "ACTION": self.action,
            "ACTION_VALUE": self.action_value,
            "BG_COLOR": self.bg_color,
            "TEXT_COLOR": self.text_color,
            "DISPLAY": self.display,
            "BLOCK": None if self.block is None else ("Y" if self.block else "N"),
            "DISABLED": None if self.disabled is None else ("Y" if self.disabled else "N"),
        }
        return {k: v for k, v in fields.items() if v is not None}


def _bot(env: Envelope) -> BotV2:
    result = env.result if isinstance(env.result, dict) else {}
    if not isinstance(result.get("bot"), dict):
        raise MethodError("UNEXPECTED_RESULT", f"expected {{bot, users}}, got {env.result!r}")
    return BotV2.model_validate(result["bot"])


class BotV2Api:
    """`imbot.v2.*` on one portal as one owner (the OAuth app, or the holder of `bot_token`)."""

    def __init__(self, portal: PortalCaller, *, bot_token: str | None = None) -> None:
        self.portal = portal
        self.bot_token = bot_token

    async def _call(self, method: str, params: dict[str, Any]) -> Envelope:
        if self.bot_token:
            params = {**params, "botToken": self.bot_token}
        return await self.portal.call(method, params)

    # --- Bot.* ---------------------------------------------------------------------------------

    async def get(self, *, bot_id: int | None = None, code: str | None = None) -> BotV2:
        """`Bot.get` by id or code; `MethodError("BOT_NOT_FOUND")` when there is none. A bot of
        another owner comes back too, in the brief format (`owned` False)."""
        if bot_id is None and not code:
            raise ValueError("Bot.get needs bot_id or code")
        params: dict[str, Any] = {"botId": bot_id} if bot_id is not None else {"code": code}
        return _bot(await self._call("imbot.v2.Bot.get", params))

    async def register(
        self,
        code: str,
        *,
        name: str,
        type: BotType = "openline",
        event_mode: EventMode = "fetch",
        webhook_url: str | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> BotV2:
        """`Bot.register`: idempotent by code for the same owner (the stored bot comes back
        unchanged — a changed mode or URL needs `update`); another owner's code is
        `BOT_CODE_ALREADY_TAKEN`. `type="openline"` makes it an Open Lines bot."""
        if event_mode == "webhook" and not webhook_url:
            raise ValueError("a webhook-mode bot needs webhook_url")
        fields: dict[str, Any] = {
            "code": code,
            "type": type,
            "eventMode": event_mode,
            "properties": {"name": name, **(properties or {})},
        }
        if webhook_url:
            fields["webhookUrl"] = webhook_url
        return _bot(await self._call("imbot.v2.Bot.register", {"fields": fields}))

    async def update(self, bot_id: int, fields: Mapping[str, Any]) -> BotV2:
        """`Bot.update` with camelCase `fields` (eventMode, webhookUrl, properties, flags)."""
        env = await self._call("imbot.v2.Bot.update", {"botId": bot_id, "fields": dict(fields)})
        return _bot(env)

    async def rotate_token(self, bot_id: int, new_token: str) -> BotV2Api:
        """Replace this owner's bot token; the API bound to the new one.

        The old token stops at once (docs/bitrix24-bots-v2.md "Owner and token"), so a replay
        of a rotation whose answer was lost fails though it took. After an unknown outcome the
        new token is asked whether it owns the bot: yes, the rotation happened; no, it did not
        and `OutcomeUnknown` is raised for the caller to retry with the old token."""
        if not self.bot_token:
            raise ValueError("an OAuth app's bots have no token to rotate")
        if not new_token or len(new_token) > TOKEN_MAX_LENGTH:
            raise ValueError(f"a bot token is 1..{TOKEN_MAX_LENGTH} characters")
        rotated = BotV2Api(self.portal, bot_token=new_token)
        try:
            await self.update(bot_id, {"botToken": new_token})
        except OutcomeUnknown:
            try:
                if (await rotated.get(bot_id=bot_id)).owned:
                    return rotated
            except MethodError:
                pass
            raise
        return rotated

    # --- Event.get -----------------------------------------------------------------------------

    async def events(
        self, bot_id: int, *, offset: int | None = None, limit: int | None = None
    ) -> EventPage:
        """`Event.get`: rows from `offset` up. A positive offset DELETES the bot's rows below it,
        for every reader (there is no consumer group): pass an offset only once what it
        confirms is durably stored, and poll each bot from one place."""
        params: dict[str, Any] = {"botId": bot_id}
        if offset is not None:
            params["offset"] = offset
        if limit is not None:
            params["limit"] = limit
        return EventPage.model_validate((await self._call("imbot.v2.Event.get", params)).result)

    # --- Chat.* and Command.register ----------------------------------------------------------

    async def send(
        self,
        bot_id: int,
        dialog_id: str,
        message: str,
        *,
        keyboard: Sequence[Button] | None = None,
        skip_connector: bool | None = None,
        system: bool | None = None,
        attach: Any = None,
        reply_id: int | None = None,
    ) -> SentMessage:
        """`Chat.Message.send` as the bot. In a LINES chat the message reaches the client unless
        `skip_connector` (docs/bitrix24-bots-v2.md "Messages"). Not idempotent: each call posts."""
        fields: dict[str, Any] = {"message": message}
        if keyboard:
            fields["keyboard"] = {"BUTTONS": [b.wire() for b in keyboard]}
        if skip_connector is not None:
            fields["skipConnector"] = skip_connector
        if system is not None:
            fields["system"] = system
        if attach is not None:
            fields["attach"] = attach
        if reply_id is not None:
            fields["replyId"] = reply_id
        env = await self._call(
            "imbot.v2.Chat.Message.send",
            {"botId": bot_id, "dialogId": dialog_id, "fields": fields},
        )
        return SentMessage.model_validate(env.result)

    async def notify_input(
        self,
        bot_id: int,
        dialog_id: str,
        *,
        status_message_code: str | None = None,
        duration: int | None = None,
    ) -> bool:
        """`Chat.InputAction.notify`: the "typing" indicator (or a status) in the chat."""
        params: dict[str, Any] = {"botId": bot_id, "dialogId": dialog_id}
        if status_message_code:
            params["statusMessageCode"] = status_message_code
        if duration is not None:
            params["duration"] = duration
        return _true(await self._call("imbot.v2.Chat.InputAction.notify", params))

    async def register_command(
        self,
        bot_id: int,
        command: str,
        *,
        title: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        common: bool = False,
        hidden: bool = False,
    ) -> BotCommand:
        """`Command.register`, idempotent per bot and command (the one a keyboard's COMMAND
        button raises `ONIMBOTV2COMMANDADD` for). `title` by language, e.g. {"en": "Help"}."""
        fields: dict[str, Any] = {"command": command.lstrip("/"), "common": common}
        if hidden:
            fields["hidden"] = True
        if title:
            fields["title"] = dict(title)
        if params:
            fields["params"] = dict(params)
        env = await self._call("imbot.v2.Command.register", {"botId": bot_id, "fields": fields})
        result = env.result if isinstance(env.result, dict) else {}
        return BotCommand.model_validate(result.get("command") or {})


def _true(env: Envelope) -> bool:
    """v2 answers `{"result": true}` inside the envelope's result."""
    result = env.result
    return bool(result.get("result")) if isinstance(result, dict) else bool(result)
