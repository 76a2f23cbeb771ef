"""One emulated Bitrix24 portal's tables and the primitive changes to them: ids and lookups,
records (users, lines, bots, messages, leads), outbound events and the default seed. Plain rows
live in emulator.state; event shapes in emulator.payloads; the state dump in emulator.snapshot.
The behaviour on top (session lifecycle, messaging, the control API's actions) is
emulator.portal.Portal, a subclass, so everything here is a rung below it and imports none of
it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from emulator import payloads
from emulator.payloads import TokenIssuer
from emulator.primitives import Clock, EventSink, PortalIdentity
from emulator.state import (
    ROLE_ADMIN,
    ROLE_BOT,
    ROLE_CLIENT,
    ROLE_SUPERVISOR,
    Bot,
    BotHandler,
    Chat,
    EventBinding,
    Lead,
    Line,
    Message,
    Session,
    User,
)


def iso_date(ts: float) -> str:
    """A portal date as the REST API prints it (ISO-8601 with offset)."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


BOT_EVENT_PARAMS = {
    "EVENT_MESSAGE_ADD": "ONIMBOTMESSAGEADD",
    "EVENT_MESSAGE_UPDATE": "ONIMBOTMESSAGEUPDATE",
    "EVENT_MESSAGE_DELETE": "ONIMBOTMESSAGEDELETE",
    "EVENT_WELCOME_MESSAGE": "ONIMBOTJOINCHAT",
    "EVENT_BOT_DELETE": "ONIMBOTDELETE",
    "EVENT_CONTEXT_GET": "ONIMBOTCONTEXTGET",
}


class PortalStore:
    """All state of one portal and the primitive changes to it; the dialog behaviour built on
    these (emulator.lifecycle, emulator.messaging) and the control API's actions are in
    emulator.portal.Portal."""

    def __init__(self, identity: PortalIdentity, clock: Clock, sink: EventSink) -> None:
        self.identity = identity
        self.clock = clock
        self.sink = sink
        # The OAuth app installed on this portal; the platform may overwrite it before seeding.
        self.app_client_id = f"local.{identity.member_id[:14]}"
        self.client_endpoint = f"https://{identity.domain}/rest/"
        self.token_issuer: TokenIssuer | None = None
        self.admin_user_id = 0
        self.users: dict[int, User] = {}
        self.bots: dict[int, Bot] = {}
        self.lines: dict[int, Line] = {}
        self.chats: dict[int, Chat] = {}
        self.sessions: dict[int, Session] = {}
        self.messages: dict[int, Message] = {}
        self.leads: dict[int, Lead] = {}
        self.bindings: dict[int, EventBinding] = {}
        self.client_codes: dict[str, int] = {}  # USER_CODE -> client user id
        self.event_counts: Counter[str] = Counter()
        self._ids: Counter[str] = Counter()

    # ---- ids and lookups -------------------------------------------------------------------

    def next_id(self, kind: str) -> int:
        """The next id of a table; users and bots share one sequence, as on the portal."""
        self._ids[kind] += 1
        return self._ids[kind]

    def now(self) -> float:
        return self.clock.now()

    def get_user(self, user_id: int) -> User | None:
        return self.users.get(user_id)

    def get_chat(self, chat_id: int) -> Chat | None:
        return self.chats.get(chat_id)

    def chat_by_user_code(self, user_code: str) -> Chat | None:
        return next(
            (
                c
                for c in self.chats.values()
                if c.entity_type == "LINES" and c.entity_id == user_code
            ),
            None,
        )

    def open_session(self, chat: Chat) -> Session | None:
        """The chat's current, not yet closed session."""
        found = self.sessions.get(chat.session_id)
        return found if found is not None and not found.closed else None

    def latest_session(self, chat: Chat) -> Session | None:
        return max(
            (s for s in self.sessions.values() if s.chat_id == chat.id),
            key=lambda s: s.id,
            default=None,
        )

    def bots_of_app(self, app_id: str) -> list[Bot]:
        return sorted((b for b in self.bots.values() if b.app_id == app_id), key=lambda b: b.id)

    def last_message_id(self, chat_id: int) -> int:
        return max((m.id for m in self.messages.values() if m.chat_id == chat_id), default=0)

    # ---- records ---------------------------------------------------------------------------

    def add_user(self, name: str, last_name: str = "", *, role: str, email: str = "") -> User:
        user = User(self.next_id("user"), name, last_name, email, role, date_register=self.now())
        if role in (ROLE_BOT, ROLE_CLIENT):
            user.department = []
        self.users[user.id] = user
        return user

    def add_line(self, name: str, queue: list[int], **config: Any) -> Line:
        line = Line(self.next_id("line"), name, list(queue), **config)
        self.lines[line.id] = line
        return line

    def add_bot(
        self,
        code: str,
        name: str,
        *,
        app_id: str,
        bot_type: str,
        openline: bool,
        urls: dict[str, str],
        client_id: str | None = None,
    ) -> Bot:
        """Create a bot user and bind its handlers (`urls`: EVENT_* param -> URL)."""
        user = self.add_user(name, role=ROLE_BOT)
        bot = Bot(user.id, code, app_id, bot_type, openline, {}, client_id)
        self.bind_bot_handlers(bot, urls)
        self.bots[bot.id] = bot
        return bot

    def bind_bot_handlers(self, bot: Bot, urls: dict[str, str]) -> None:
        """(Re)bind a bot's handlers; rebinding replaces the previous set."""
        bot.handlers = {
            BOT_EVENT_PARAMS[param]: BotHandler(self.next_id("binding"), url)
            for param, url in urls.items()
            if url
        }

    def post_message(
        self,
        chat: Chat,
        author_id: int,
        text: str,
        *,
        system: bool = False,
        params: dict[str, Any] | None = None,
    ) -> Message:
        """Store a message and account it to the chat's open session."""
        message = Message(
            self.next_id("message"),
            chat.id,
            author_id,
            text,
            self.now(),
            system,
            dict(params or {}),
        )
        self.messages[message.id] = message
        session = self.open_session(chat)
        if session is not None:
            if not session.start_id:
                session.start_id = message.id
            session.message_count += 1
            session.date_last_message = message.date
        return message

    def add_lead(self, fields: dict[str, Any], created_by: int) -> Lead:
        """Store a CRM lead; PHONE/EMAIL multifields get ids and TYPE_ID like crm.lead.get shows."""
        lead_id = self.next_id("lead")
        stamp = iso_date(self.now())
        row: dict[str, Any] = {
            "TITLE": f"Lead #{lead_id}",
            "STATUS_ID": "NEW",
            "OPENED": "Y",
            "ASSIGNED_BY_ID": str(created_by),
            "CREATED_BY_ID": str(created_by),
            "DATE_CREATE": stamp,
            "DATE_MODIFY": stamp,
        }
        for key, value in fields.items():
            key = str(key).upper()
            if key in ("PHONE", "EMAIL", "WEB", "IM"):
                row[key] = self._multifield(key, value)
            elif key not in ("ID", "DATE_CREATE", "DATE_MODIFY", "CREATED_BY_ID"):
                row[key] = value if isinstance(value, list | dict) else str(value)
        lead = Lead(lead_id, row)
        self.leads[lead_id] = lead
        return lead

    def _multifield(self, type_id: str, value: Any) -> list[dict[str, Any]]:
        items = list(value.values()) if isinstance(value, dict) else list(value or [])
        return [
            {
                "ID": str(self.next_id("multifield")),
                "TYPE_ID": type_id,
                "VALUE": str(item.get("VALUE", "")),
                "VALUE_TYPE": str(item.get("VALUE_TYPE", "WORK")),
            }
            for item in items
            if isinstance(item, dict) and item.get("VALUE")
        ]

    # ---- events ----------------------------------------------------------------------------

    def emit_app_event(self, event: str, data: dict[str, Any]) -> None:
        """Deliver an app event (event.bind) once to every handler bound to it."""
        for binding in sorted(self.bindings.values(), key=lambda b: b.id):
            if binding.event != event:
                continue
            auth = payloads.event_auth(self, self.identity.application_token)
            self._send(
                binding.handler, payloads.envelope(event, binding.id, data, self.now(), auth)
            )

    def emit_bot_event(self, bot: Bot, event: str, data: dict[str, Any]) -> None:
        """Deliver a bot event to the handler the bot registered for it, if any."""
        handler = bot.handlers.get(event)
        if handler is None:
            return
        token = bot.client_id if bot.client_id is not None else self.identity.application_token
        self._send(
            handler.url,
            payloads.envelope(
                event, handler.binding_id, data, self.now(), payloads.event_auth(self, token)
            ),
        )

    def _send(self, url: str, payload: dict[str, Any]) -> None:
        self.event_counts[str(payload["event"])] += 1
        self.sink.post(url, payload)

    # ---- seeding ---------------------------------------------------------------------------

    def seed_default(self, event_url: str | None) -> None:
        """One line with a welcome bot, three operators, a supervisor and the admin (user 1)."""
        admin = self.add_user("Admin", "Portal", role=ROLE_ADMIN, email="admin@example.com")
        self.admin_user_id = admin.id
        operators = [
            self.add_user(first, last, email=f"{first.lower()}@example.com", role="operator")
            for first, last in (("Olga", "Petrova"), ("Ivan", "Smirnov"), ("Anna", "Kuznetsova"))
        ]
        for operator in operators:
            operator.work_position = "Support operator"
        self.add_user("Sergey", "Volkov", role=ROLE_SUPERVISOR, email="sergey@example.com")
        line = self.add_line(
            "Support",
            [u.id for u in operators],
            welcome_bot_enable=True,
            welcome_message="Hello! How can we help you?",
        )
        if event_url is None:
            return
        urls = dict.fromkeys(BOT_EVENT_PARAMS, event_url)
        bot = self.add_bot(
            "support_bot",
            "Support Bot",
            app_id=self.app_client_id,
            bot_type="O",
            openline=True,
            urls=urls,
        )
        line.welcome_bot_id = bot.id
        for event in ("ONOPENLINEMESSAGEADD", "ONSESSIONSTART", "ONSESSIONFINISH"):
            binding = EventBinding(
                self.next_id("binding"), event, event_url, self.app_client_id, admin.id
            )
            self.bindings[binding.id] = binding
