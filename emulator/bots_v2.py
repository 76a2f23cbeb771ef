"""The portal's chat-bot API v2 tables (docs/bitrix24-bots-v2.md §1-§2): what a v2 bot has beyond
the v1 bot row it shares (emulator.state.Bot: id, code, owner key in `app_id`, OPENLINE), the
owners' `ONIMBOTV2*` webhook subscriptions, registered commands, chat UX state, and the switches
that pick between the docs' (newer, default) and the 2026-05 code's (older) behaviour.

A v2 bot IS a v1 bot row (`api="v2"`), so every v1 code path — the welcome bot joining a line
chat, `imopenlines.bot.session.*` finding "the first bot of the owner" — works for it unchanged;
only the event format differs (emulator.events_v2). Plain data; imports only emulator.state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

# Bot.register rejects tokens over 40 chars from this day on (BOT-BC-0506-1).
TOKEN_LENGTH_GATE = datetime(2026, 8, 6, tzinfo=UTC).timestamp()
TOKEN_MAX_LENGTH = 40

# The eight events a webhook-mode bot is subscribed to, in the docs' order.
V2_EVENTS = (
    "ONIMBOTV2MESSAGEADD",
    "ONIMBOTV2MESSAGEUPDATE",
    "ONIMBOTV2MESSAGEDELETE",
    "ONIMBOTV2JOINCHAT",
    "ONIMBOTV2DELETE",
    "ONIMBOTV2CONTEXTGET",
    "ONIMBOTV2COMMANDADD",
    "ONIMBOTV2REACTIONCHANGE",
)
# v2 type name -> the v1 TYPE letter the shared bot row keeps.
TYPES = {"bot": "B", "network": "N", "openline": "O", "supervisor": "S", "personal": "P"}
BACKGROUNDS = frozenset(
    {"azure", "mint", "steel", "slate", "teal", "cornflower", "sky", "peach", "frost"}
)
EventMode = Literal["fetch", "webhook"]


@dataclass
class V2Settings:
    """Where the sources disagree or a value is not verified, the emulator's choice; defaults
    follow the docs (the newer cloud), the alternatives replay the 2026-05-11 code."""

    # Bot.register enforces the 40-char token limit from this portal-clock time; None: never
    # (the 2026-05 code), 0.0: always.
    token_length_from: float | None = TOKEN_LENGTH_GATE
    # 2026-05 code: `bot.appId` (the owner key) still appears in the owner format.
    emit_app_id: bool = False
    # Bot.update with an invalid webhookUrl: "error" (docs, 400 BOT_INVALID_CALLBACK) or
    # "ignore" (code: 200, no rebinding).
    invalid_callback_on_update: Literal["error", "ignore"] = "error"
    # Bot.list with an unknown filter.type: "empty" (docs) or "ignore" (code drops the filter).
    unknown_type_filter: Literal["empty", "ignore"] = "empty"
    # Chat.Message.update/delete refusals: "docs" (ACCESS_DENIED, own messages only) or "code"
    # (MESSAGE_ACCESS_DENIED; in a LINES chat a bot may edit others' messages, §11).
    message_rules: Literal["docs", "code"] = "docs"
    # `auth[application_token]` of a webhook-token bot's events: "custom" ("custom" + botToken,
    # the code's value) or "raw" (the bare token).
    webhook_token_auth: Literal["custom", "raw"] = "custom"
    # 2026-05 code: a webhook-token bot's event is dropped unless its URL carries ?CLIENT_ID=.
    strict_client_id_url: bool = False
    # BOT_LIMIT_EXCEEDED at this many bots per owner (cloud default 100); None: no limit.
    bot_limit: int | None = 100
    # What imbot.v2.Revision.get answers.
    revision: dict[str, int] = field(
        default_factory=lambda: {"rest": 36, "web": 130, "mobile": 23, "desktop": 6}
    )
    # Event log retention (EventService::cleanAgent, 24 h).
    retention_s: float = 24 * 3600.0


@dataclass
class Subscription:
    """One `ONIMBOTV2*` handler the platform bound for an owner (app or webhook token)."""

    id: int  # event_handler_id
    event: str
    url: str
    owner: str  # the owner key: OAuth client_id or "custom" + botToken


@dataclass
class Command:
    """A slash command registered for a bot (imbot.v2.Command.register)."""

    id: int
    bot_id: int
    command: str  # without the leading "/"
    title: dict[str, str]
    params: dict[str, str]
    common: bool = False
    hidden: bool = False
    extranet_support: bool = False


@dataclass
class V2Bot:
    """A bot's v2-only settings; the bot row itself is emulator.state.Bot."""

    bot_id: int
    type: str  # bot | network | openline | supervisor | personal
    event_mode: EventMode = "fetch"
    webhook_url: str = ""
    is_hidden: bool = False
    is_reactions_enabled: bool = True
    background_id: str | None = None
    color: str = ""


@dataclass
class InputAction:
    """The last typing / "agent is ..." indicator a bot showed in a chat, for assertions."""

    bot_id: int
    chat_id: int
    status_message_code: str
    duration: int | None
    at: float


@dataclass
class BotsV2:
    """One portal's v2 tables."""

    settings: V2Settings = field(default_factory=V2Settings)
    bots: dict[int, V2Bot] = field(default_factory=dict)
    subscriptions: dict[int, Subscription] = field(default_factory=dict)
    commands: dict[int, Command] = field(default_factory=dict)
    input_actions: dict[tuple[int, int], InputAction] = field(default_factory=dict)
    text_field_disabled: set[int] = field(default_factory=set)  # chat ids with the field off

    def subscriptions_of(self, owner: str, event: str | None = None) -> list[Subscription]:
        """An owner's subscriptions (of one event), oldest first."""
        return sorted(
            (
                s
                for s in self.subscriptions.values()
                if s.owner == owner and (event is None or s.event == event)
            ),
            key=lambda s: s.id,
        )

    def unsubscribe(self, owner: str, *, keep_url: str | None = None) -> None:
        """Delete an owner's subscriptions (but those on `keep_url`)."""
        for sub in self.subscriptions_of(owner):
            if keep_url is None or sub.url != keep_url:
                del self.subscriptions[sub.id]

    def commands_of(self, bot_id: int) -> list[Command]:
        return sorted((c for c in self.commands.values() if c.bot_id == bot_id), key=lambda c: c.id)

    def drop_bot(self, bot_id: int) -> None:
        """Forget a deleted bot's v2 rows (its subscriptions are the caller's decision)."""
        self.bots.pop(bot_id, None)
        for command in self.commands_of(bot_id):
            del self.commands[command.id]
        for key in [k for k in self.input_actions if k[0] == bot_id]:
            del self.input_actions[key]
