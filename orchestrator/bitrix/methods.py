"""Typed async wrappers, one per REST method, bound to one portal (`client.api(member_id)`).

Keys go in the case each handler reads (docs/bitrix24.md §5–§7): upper-case for `imopenlines.*`
and `imbot.*`, lower-case for `crm.*` and `event.*`; `CLIENT_ID` names a webhook bot's owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from orchestrator.bitrix.batch import BatchResult, Command
from orchestrator.bitrix.bot_v2 import BotV2Api
from orchestrator.bitrix.envelope import Envelope, as_int
from orchestrator.bitrix.line_config import LineConfigApi
from orchestrator.bitrix.models import (
    Dialog,
    EventBinding,
    Lead,
    Page,
    SessionHistory,
    SessionOpenResult,
    User,
    page_of,
)
from orchestrator.bitrix.offline import OfflineApi
from orchestrator.errors import MethodError

YN = Literal["Y", "N"]


def _params(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


def _yn(flag: bool | None) -> YN | None:
    return None if flag is None else ("Y" if flag else "N")


def _int(env: Envelope) -> int:
    value = as_int(env.result)
    if value is None:
        raise MethodError("UNEXPECTED_RESULT", f"expected an id, got {env.result!r}")
    return value


class RestClient(Protocol):
    """What the wrappers need of the REST client (orchestrator/bitrix/client.py's BitrixClient):
    the seam that keeps this module from importing the client back."""

    async def call(
        self, method: str, params: Mapping[str, Any] | None = None, *, member_id: str | None = None
    ) -> Envelope: ...

    async def batch(
        self, commands: Mapping[str, Command], *, halt: bool = False, member_id: str | None = None
    ) -> BatchResult: ...


class PortalApi:
    """The REST methods of one portal, typed."""

    def __init__(
        self, client: RestClient, member_id: str, *, bot_client_id: str | None = None
    ) -> None:
        self.client = client
        self.member_id = member_id
        self.bot_client_id = bot_client_id

    def owned_by(self, token: str | None) -> PortalApi:
        """These methods with `CLIENT_ID` = another bot owner (a v2 bot's token)."""
        return PortalApi(self.client, self.member_id, bot_client_id=token or self.bot_client_id)

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Envelope:
        """Untyped call on this portal."""
        return await self.client.call(method, params, member_id=self.member_id)

    async def _true(self, method: str, params: dict[str, Any]) -> bool:
        return bool((await self.call(method, params)).result)

    def _bot(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.bot_client_id and "CLIENT_ID" not in params:
            params["CLIENT_ID"] = self.bot_client_id
        return params

    async def batch(self, commands: Mapping[str, Command], *, halt: bool = False) -> BatchResult:
        """`batch`: up to 50 commands in one request; `$result[key]` references allowed."""
        return await self.client.batch(commands, halt=halt, member_id=self.member_id)

    # --- the method families with their own modules ----------------------------------------

    def bot_v2(self, bot_token: str | None = None) -> BotV2Api:
        """`imbot.v2.*` as the owner `bot_token` names (None: the OAuth app itself)."""
        return BotV2Api(self, bot_token=bot_token)

    def offline(self, *, auth_connector: str | None = None) -> OfflineApi:
        """`event.offline.*` over the app's offline queue (of that connector)."""
        return OfflineApi(self, auth_connector=auth_connector)

    def lines(self) -> LineConfigApi:
        """`imopenlines.config.*`: line settings and the welcome bot."""
        return LineConfigApi(self)

    async def feature_get(self, code: str) -> str:
        """feature.get: "Y"/"N" (or `<lang>_selfhosted`); only "Y" means available."""
        result = (await self.call("feature.get", {"CODE": code})).result
        return str(result.get("value", "")) if isinstance(result, dict) else ""

    # --- imopenlines.bot.session.* -----------------------------------------------------------

    async def bot_session_finish(self, chat_id: int) -> bool:
        """imopenlines.bot.session.finish: the bot closes the dialog."""
        return await self._true(
            "imopenlines.bot.session.finish", self._bot(_params(CHAT_ID=chat_id))
        )

    async def bot_session_message_send(
        self, chat_id: int, message: str, *, name: str = "DEFAULT"
    ) -> bool:
        """imopenlines.bot.session.message.send: an automatic message (NAME DEFAULT/WELCOME)."""
        return await self._true(
            "imopenlines.bot.session.message.send",
            _params(CHAT_ID=chat_id, MESSAGE=message, NAME=name),
        )

    async def bot_session_operator(self, chat_id: int) -> bool:
        """imopenlines.bot.session.operator: hand the dialog from the bot to the queue."""
        return await self._true("imopenlines.bot.session.operator", _params(CHAT_ID=chat_id))

    async def bot_session_transfer(
        self,
        chat_id: int,
        *,
        user_id: int | None = None,
        queue_id: int | None = None,
        transfer_id: str | None = None,
        leave: bool | None = None,
    ) -> bool:
        """imopenlines.bot.session.transfer: to an operator (user_id) or a line (queue_id)."""
        return await self._true(
            "imopenlines.bot.session.transfer",
            self._bot(
                _params(
                    CHAT_ID=chat_id,
                    USER_ID=user_id,
                    QUEUE_ID=queue_id,
                    TRANSFER_ID=transfer_id,
                    LEAVE=_yn(leave),
                )
            ),
        )

    # --- imopenlines.session.* / dialog -------------------------------------------------------

    async def session_open(self, user_code: str) -> SessionOpenResult:
        """imopenlines.session.open: the chat of a USER_CODE."""
        env = await self.call("imopenlines.session.open", _params(USER_CODE=user_code))
        return SessionOpenResult.model_validate(env.result)

    async def session_start(self, chat_id: int) -> bool:
        """imopenlines.session.start: open a session in the chat (or join the open one)."""
        return await self._true("imopenlines.session.start", _params(CHAT_ID=chat_id))

    async def session_join(self, chat_id: int) -> bool:
        """imopenlines.session.join: the caller joins the chat."""
        return await self._true("imopenlines.session.join", _params(CHAT_ID=chat_id))

    async def session_intercept(self, chat_id: int) -> bool:
        """imopenlines.session.intercept: the caller takes the dialog over."""
        return await self._true("imopenlines.session.intercept", _params(CHAT_ID=chat_id))

    async def session_history_get(
        self, *, session_id: int | None = None, chat_id: int | None = None
    ) -> SessionHistory:
        """imopenlines.session.history.get: the session's messages and users."""
        env = await self.call(
            "imopenlines.session.history.get", _params(SESSION_ID=session_id, CHAT_ID=chat_id)
        )
        return SessionHistory.model_validate(env.result)

    async def session_head_vote(
        self, session_id: int, *, rating: int | None = None, comment: str | None = None
    ) -> bool:
        """imopenlines.session.head.vote: a supervisor's rating and comment."""
        return await self._true(
            "imopenlines.session.head.vote",
            _params(SESSION_ID=session_id, RATING=rating, COMMENT=comment),
        )

    async def message_session_start(self, chat_id: int, message_id: int) -> bool:
        """imopenlines.message.session.start: close the session, start one from a message."""
        return await self._true(
            "imopenlines.message.session.start", _params(CHAT_ID=chat_id, MESSAGE_ID=message_id)
        )

    async def dialog_get(
        self,
        *,
        chat_id: int | None = None,
        dialog_id: str | None = None,
        session_id: int | None = None,
        user_code: str | None = None,
    ) -> Dialog:
        """imopenlines.dialog.get: the chat by one of its four handles."""
        env = await self.call(
            "imopenlines.dialog.get",
            _params(
                CHAT_ID=chat_id, DIALOG_ID=dialog_id, SESSION_ID=session_id, USER_CODE=user_code
            ),
        )
        return Dialog.model_validate(env.result)

    async def session_mode_pin(self, chat_id: int, *, activate: bool = True) -> bool:
        """imopenlines.session.mode.pin: pin (or unpin) the dialog to its operator."""
        return await self._true(
            "imopenlines.session.mode.pin", _params(CHAT_ID=chat_id, ACTIVATE=_yn(activate))
        )

    async def session_mode_pin_all(self) -> list[int]:
        """imopenlines.session.mode.pinAll: the ids of the sessions pinned."""
        return _ids((await self.call("imopenlines.session.mode.pinAll")).result)

    async def session_mode_unpin_all(self) -> list[int]:
        """imopenlines.session.mode.unpinAll: the ids of the sessions unpinned."""
        return _ids((await self.call("imopenlines.session.mode.unpinAll")).result)

    async def session_mode_silent(self, chat_id: int, *, activate: bool = True) -> bool:
        """imopenlines.session.mode.silent: whisper mode on or off."""
        return await self._true(
            "imopenlines.session.mode.silent", _params(CHAT_ID=chat_id, ACTIVATE=_yn(activate))
        )

    async def crm_lead_create(self, chat_id: int) -> bool:
        """imopenlines.crm.lead.create: CRM entities from the chat (no id is returned)."""
        return await self._true("imopenlines.crm.lead.create", _params(CHAT_ID=chat_id))

    # --- imbot.* -------------------------------------------------------------------------------

    async def imbot_register(
        self,
        code: str,
        *,
        name: str,
        event_handler: str,
        type: Literal["B", "O", "H", "S"] = "O",
        openline: bool = True,
        properties: Mapping[str, Any] | None = None,
    ) -> int:
        """imbot.register: the bot's id (the same id again for the same CODE)."""
        return _int(
            await self.call(
                "imbot.register",
                self._bot(
                    _params(
                        CODE=code,
                        TYPE=type,
                        OPENLINE=_yn(openline),
                        EVENT_HANDLER=event_handler,
                        EVENT_MESSAGE_ADD=event_handler,
                        EVENT_WELCOME_MESSAGE=event_handler,
                        EVENT_BOT_DELETE=event_handler,
                        PROPERTIES={"NAME": name, **(properties or {})},
                    )
                ),
            )
        )

    async def imbot_unregister(self, bot_id: int) -> bool:
        """imbot.unregister."""
        return await self._true("imbot.unregister", self._bot(_params(BOT_ID=bot_id)))

    async def imbot_message_add(
        self,
        dialog_id: str,
        message: str,
        *,
        bot_id: int | None = None,
        keyboard: Any = None,
        attach: Any = None,
        system: bool | None = None,
        url_preview: bool | None = None,
        skip_connector: bool | None = None,
    ) -> int:
        """imbot.message.add: the new message's id."""
        return _int(
            await self.call(
                "imbot.message.add",
                self._bot(
                    _params(
                        BOT_ID=bot_id,
                        DIALOG_ID=dialog_id,
                        MESSAGE=message,
                        KEYBOARD=keyboard,
                        ATTACH=attach,
                        SYSTEM=_yn(system),
                        URL_PREVIEW=_yn(url_preview),
                        SKIP_CONNECTOR=_yn(skip_connector),
                    )
                ),
            )
        )

    async def imbot_message_update(
        self,
        message_id: int,
        message: str | None = None,
        *,
        bot_id: int | None = None,
        keyboard: Any = None,
    ) -> bool:
        """imbot.message.update."""
        return await self._true(
            "imbot.message.update",
            self._bot(
                _params(BOT_ID=bot_id, MESSAGE_ID=message_id, MESSAGE=message, KEYBOARD=keyboard)
            ),
        )

    async def imbot_message_delete(
        self, message_id: int, *, bot_id: int | None = None, complete: bool | None = None
    ) -> bool:
        """imbot.message.delete."""
        return await self._true(
            "imbot.message.delete",
            self._bot(_params(BOT_ID=bot_id, MESSAGE_ID=message_id, COMPLETE=_yn(complete))),
        )

    async def imbot_chat_send_typing(self, dialog_id: str, *, bot_id: int | None = None) -> bool:
        """imbot.chat.sendTyping: the typing indicator."""
        return await self._true(
            "imbot.chat.sendTyping", self._bot(_params(BOT_ID=bot_id, DIALOG_ID=dialog_id))
        )

    # --- user.*, crm.lead.*, event.* -------------------------------------------------------------

    async def user_get(
        self, *, filter: Mapping[str, Any] | None = None, start: int | None = None
    ) -> Page[User]:
        """user.get: one page of users."""
        env = await self.call("user.get", _params(FILTER=filter, start=start))
        return page_of(env, User)

    async def user_search(self, *, filter: Mapping[str, Any] | None = None) -> Page[User]:
        """user.search: one page of users (NAME_SEARCH etc. in the filter)."""
        return page_of(await self.call("user.search", _params(FILTER=filter)), User)

    async def crm_lead_add(
        self, fields: Mapping[str, Any], params: Mapping[str, Any] | None = None
    ) -> int:
        """crm.lead.add: the new lead's id."""
        return _int(await self.call("crm.lead.add", _params(fields=fields, params=params)))

    async def crm_lead_get(self, lead_id: int) -> Lead:
        """crm.lead.get."""
        return Lead.model_validate((await self.call("crm.lead.get", {"id": lead_id})).result)

    async def crm_lead_update(self, lead_id: int, fields: Mapping[str, Any]) -> bool:
        """crm.lead.update: the fields given; a multifield value without an ID is added."""
        return await self._true("crm.lead.update", {"id": lead_id, "fields": fields})

    async def crm_lead_list(
        self,
        *,
        filter: Mapping[str, Any] | None = None,
        select: list[str] | None = None,
        start: int | None = None,
    ) -> Page[Lead]:
        """crm.lead.list: one page of leads."""
        env = await self.call("crm.lead.list", _params(filter=filter, select=select, start=start))
        return page_of(env, Lead)

    async def event_bind(
        self,
        event: str,
        handler: str | None = None,
        *,
        event_type: Literal["online", "offline"] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> bool:
        """event.bind (OAuth apps only; offline: also an administrator, and no handler)."""
        return await self._true(
            "event.bind",
            _params(event=event, handler=handler, event_type=event_type, options=options),
        )

    async def event_get(self) -> list[EventBinding]:
        """event.get: this app's bindings."""
        result = (await self.call("event.get")).result or []
        return [EventBinding.model_validate(row) for row in result]

    async def event_unbind(self, event: str, handler: str) -> bool:
        """event.unbind."""
        return await self._true("event.unbind", _params(event=event, handler=handler))


def _ids(result: Any) -> list[int]:
    values = result.values() if isinstance(result, dict) else (result or [])
    return [i for i in (as_int(v) for v in values) if i is not None]
