"""One emulated Bitrix24 portal's tables and the primitive changes to them: ids and lookups,
records (users, lines, bots, messages, leads), outbound events, the default seed, and the journal
entry of each change (emulator.journal). Plain rows live in emulator.state; event shapes in
emulator.payloads; the state dump in emulator.snapshot. The behaviour on top (session lifecycle,
messaging, the control API's actions) is emulator.portal.Portal, a subclass, so everything here is
a rung below it and imports none of it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from emulator import payloads
from emulator.bots_v2 import BotsV2
from emulator.features import Features
from emulator.fetch_queue import FetchQueue
from emulator.journal import Journal, current_via
from emulator.offline import OfflineQueue
from emulator.payloads import TokenIssuer
from emulator.primitives import Clock, EventSink, PortalIdentity
from emulator.state import (
    BOT_EVENT_PARAMS,
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
from emulator.transport import iso_date


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
        # Every change this portal makes, in order (emulator.journal).
        self.journal = Journal(clock)
        # The v2 bots' tables and the event log fetch-mode bots poll; licence features
        # (feature.get) and the apps' offline-event queue.
        self.bots_v2 = BotsV2()
        self.fetch_queue = FetchQueue(clock)
        self.features = Features()
        self.offline = OfflineQueue(self)

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
        api: str = "v1",
    ) -> Bot:
        """Create a bot user and bind its handlers (`urls`: EVENT_* param -> URL)."""
        user = self.add_user(name, role=ROLE_BOT)
        bot = Bot(user.id, code, app_id, bot_type, openline, {}, client_id, api)
        self.bind_bot_handlers(bot, urls)
        self.bots[bot.id] = bot
        self._journal_bot("bot_registered", bot, new=True)
        return bot

    def reregister_bot(self, bot: Bot, urls: dict[str, str]) -> None:
        """imbot.register with a known CODE: the same bot, its handlers rebound."""
        self.bind_bot_handlers(bot, urls)
        self._journal_bot("bot_registered", bot, new=False)

    def remove_bot(self, bot: Bot) -> None:
        """Delete a bot: its user is deactivated and it leaves every chat."""
        del self.bots[bot.id]
        self.users[bot.id].active = False
        for chat in self.chats.values():
            if bot.id in chat.members:
                chat.members.remove(bot.id)
        self._journal_bot("bot_unregistered", bot)

    def _journal_bot(self, kind: str, bot: Bot, **extra: Any) -> None:
        if bot.api != "v1":  # v1 entries keep their old shape; others say which API
            extra["api"] = bot.api
        self.journal.append(
            kind, bot_id=bot.id, code=bot.code, app_id=bot.app_id, via=current_via(), **extra
        )

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
        to_client: bool = False,
        journal: dict[str, Any] | None = None,
    ) -> Message:
        """Store a message and account it to the chat's open session. `to_client`: the client's
        channel receives it; `journal` adds to (or overrides) the fields of its journal entry."""
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
        entry: dict[str, Any] = {
            "chat_id": chat.id,
            "session_id": session.id if session is not None else 0,
            "message_id": message.id,
            "author_id": author_id,
            "author": self.author_kind(author_id, system=system),
            "text": text,
            "via": current_via(),
            "to_client": to_client,
            **(journal or {}),
        }
        if entry["author"] == "bot":
            entry.setdefault("bot_id", author_id)
        self.journal.append("message", **entry)
        return message

    def author_kind(self, author_id: int, *, system: bool) -> str:
        """Who wrote a message, for the journal: the portal's own notices are "system" (whoever
        they are signed by), else the author's kind: "client", "bot" or "operator"."""
        user = self.users.get(author_id)
        if system or user is None:
            return "system"
        if user.is_bot:
            return "bot"
        return "client" if user.is_connector else "operator"

    def message_changed(self, message: Message, *, deleted: bool) -> dict[str, Any]:
        """Journal an edit or a deletion the caller has just applied to `message`; the entry."""
        fields: dict[str, Any] = {"chat_id": message.chat_id, "message_id": message.id}
        if not deleted:
            fields["text"] = message.text
        kind = "message_deleted" if deleted else "message_updated"
        return self.journal.append(kind, **fields, via=current_via())

    def add_lead(
        self, fields: dict[str, Any], created_by: int, *, via: str | None = None, **bound: int
    ) -> Lead:
        """Store a CRM lead; PHONE/EMAIL multifields get ids and TYPE_ID like crm.lead.get shows.
        `via` names who made it when not the acting REST method ("line": the line's CRM_CREATE);
        `bound` (chat_id, session_id) what it is made for."""
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
                row[key] = self.multifield(key, value)
            elif key not in ("ID", "DATE_CREATE", "DATE_MODIFY", "CREATED_BY_ID"):
                row[key] = value if isinstance(value, list | dict) else str(value)
        lead = Lead(lead_id, row)
        self.leads[lead_id] = lead
        self.journal.append(
            "lead_created", lead_id=lead_id, fields=row, via=via or current_via(), **bound
        )
        return lead

    def bind_lead(self, chat: Chat, lead_id: int) -> None:
        """Bind a lead to an open-line chat (ENTITY_DATA_1/2) and its open session."""
        chat.crm, chat.crm_entity_type, chat.crm_entity_id = True, "LEAD", lead_id
        chat.crm_bindings["LEAD"] = lead_id
        session = self.open_session(chat)
        self.journal.append(
            "crm_binding",
            chat_id=chat.id,
            session_id=session.id if session is not None else 0,
            entity="LEAD",
            entity_id=lead_id,
            via=current_via(),
        )

    def record_session(self, session: Session, previous: int | None, reason: str) -> None:
        """Journal a session change (status, operator or closing) the caller has just applied."""
        self.journal.append(
            "session",
            chat_id=session.chat_id,
            session_id=session.id,
            status=session.status,
            previous=previous,
            operator_id=session.operator_id,
            closed=session.closed,
            reason=reason,
            via=current_via(),
        )

    def multifield(self, type_id: str, value: Any) -> list[dict[str, Any]]:
        """Multifield values as stored: each a new ID, TYPE_ID, VALUE, VALUE_TYPE (WORK if none)."""
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

    def emit_app_event(self, event: str, data: dict[str, Any], *, chat_id: int, ref: str) -> None:
        """Deliver an app event (event.bind) once to every handler bound to it, or write it to
        the app's offline queue for an offline binding; `ref` names the occurrence (e.g.
        "message:12"), `chat_id` its chat, for the journal's event_posted."""
        for binding in sorted(self.bindings.values(), key=lambda b: b.id):
            if binding.event != event:
                continue
            if not binding.handler:  # an offline binding: a row in the app's queue, no POST
                self.offline.write(binding, data, chat_id=chat_id)
                continue
            auth = payloads.event_auth(self, self.identity.application_token)
            self._send(
                binding.handler,
                payloads.envelope(event, binding.id, data, self.now(), auth),
                chat_id,
                ref,
            )

    def emit_bot_event(
        self, bot: Bot, event: str, data: dict[str, Any], *, chat_id: int, ref: str
    ) -> None:
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
            chat_id,
            ref,
        )

    def _send(self, url: str, payload: dict[str, Any], chat_id: int, ref: str) -> None:
        name = str(payload["event"])
        self.event_counts[name] += 1
        note = {"dedup": f"{name}:{payload['event_handler_id']}:{ref}"}
        self.sink.post(url, payload, {**note, "chat_id": chat_id} if chat_id else note)

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
