"""The portal's records: users, bots, open lines, chats, sessions, messages, leads, bindings.

Plain dataclasses with no behaviour beyond derived views; the Portal owns and mutates them.
Field names follow the portal's tables (docs/bitrix24.md §4) so the state dump reads like the DB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Status(IntEnum):
    """Session statuses (§4.4, `Session::STATUS_*`)."""

    NEW = 0
    SKIP = 5
    ANSWER = 10
    CLIENT = 20
    CLIENT_AFTER_OPERATOR = 25
    OPERATOR = 40
    WAIT_CLIENT = 50
    CLOSE = 60
    SPAM = 65
    DUPLICATE = 69
    SILENTLY_CLOSE = 75


VOTE_LIKE = 5
VOTE_DISLIKE = 1

# Roles decide Open Lines permissions in the emulator (the real portal uses role tables).
ROLE_ADMIN = "admin"
ROLE_SUPERVISOR = "supervisor"
ROLE_OPERATOR = "operator"
ROLE_CLIENT = "client"
ROLE_BOT = "bot"


# imbot.register's handler parameters and the v1 event each one receives.
BOT_EVENT_PARAMS = {
    "EVENT_MESSAGE_ADD": "ONIMBOTMESSAGEADD",
    "EVENT_MESSAGE_UPDATE": "ONIMBOTMESSAGEUPDATE",
    "EVENT_MESSAGE_DELETE": "ONIMBOTMESSAGEDELETE",
    "EVENT_WELCOME_MESSAGE": "ONIMBOTJOINCHAT",
    "EVENT_BOT_DELETE": "ONIMBOTDELETE",
    "EVENT_CONTEXT_GET": "ONIMBOTCONTEXTGET",
}


@dataclass
class User:
    id: int
    name: str
    last_name: str = ""
    email: str = ""
    role: str = ROLE_OPERATOR
    active: bool = True
    work_position: str = ""
    gender: str = ""
    is_online: bool = True
    department: list[int] = field(default_factory=lambda: [1])
    date_register: float = 0.0

    @property
    def is_bot(self) -> bool:
        return self.role == ROLE_BOT

    @property
    def is_connector(self) -> bool:
        return self.role == ROLE_CLIENT

    @property
    def full_name(self) -> str:
        return f"{self.name} {self.last_name}".strip()


@dataclass
class BotHandler:
    """One event handler bound by imbot.register: its binding id and URL."""

    binding_id: int
    url: str


@dataclass
class Bot:
    id: int  # the bot's portal user id
    code: str
    app_id: str  # OAuth client_id or 'custom' + CLIENT_ID
    type: str  # B / O / H / S
    openline: bool
    handlers: dict[str, BotHandler]  # upper-case event name -> handler
    client_id: str | None = None  # raw CLIENT_ID of a webhook-registered bot
    # Which API registered it: a bot gets events only in that API's format (v1 ONIMBOT*, v2
    # ONIMBOTV2*); its v2-only settings live in emulator.bots_v2.
    api: str = "v1"


@dataclass
class Line:
    id: int
    name: str
    queue: list[int]
    active: bool = True
    welcome_bot_enable: bool = False
    welcome_bot_id: int = 0
    welcome_bot_time: int = 600  # seconds; 0 = never forward to the queue
    welcome_bot_left: str = "queue"  # queue | close
    welcome_bot_join: str = "always"  # always | first
    welcome_message: str = ""
    vote_message: bool = True
    vote_time_limit: int = 0  # seconds; 0 = wait for the vote without limit
    vote_closing_delay: bool = True  # Y: the client's vote closes the session
    crm: bool = True
    crm_create: str = "lead"  # lead | none
    connector: str = "livechat"
    # Settings imopenlines.config.update stores that no behaviour reads yet (e.g. CLOSE_BOT_ID),
    # as config.get returns them (emulator.methods.imopenlines_config).
    config: dict[str, str] = field(default_factory=dict)


@dataclass
class Chat:
    id: int
    type: str  # "L" open line, "P" private
    title: str
    author_id: int
    members: list[int]
    date_create: float
    entity_type: str = ""
    entity_id: str = ""  # USER_CODE for LINES chats
    line_id: int = 0
    client_id: int = 0
    crm: bool = False
    crm_entity_type: str = "NONE"
    crm_entity_id: int = 0
    crm_bindings: dict[str, int] = field(
        default_factory=lambda: {"LEAD": 0, "COMPANY": 0, "CONTACT": 0, "DEAL": 0}
    )
    pause: bool = False
    wait_action: bool = False
    session_id: int = 0
    silent: bool = False
    fake_relations: list[int] = field(default_factory=list)

    @property
    def entity_data_1(self) -> str:
        """LINES_SESSION: CRM|TYPE|ID|PAUSE|WAIT_ACTION|SESSION_ID|DATE_CREATE|LINE|0|0 (§4.2)."""
        if self.entity_type != "LINES":
            return ""
        yn = {True: "Y", False: "N"}
        return "|".join(
            str(part)
            for part in (
                yn[self.crm],
                self.crm_entity_type,
                self.crm_entity_id,
                yn[self.pause],
                yn[self.wait_action],
                self.session_id,
                int(self.date_create),
                self.line_id,
                0,
                0,
            )
        )

    @property
    def entity_data_2(self) -> str:
        """LINES_CRM: LEAD|id|COMPANY|id|CONTACT|id|DEAL|id."""
        if self.entity_type != "LINES":
            return ""
        return "|".join(f"{kind}|{ident}" for kind, ident in self.crm_bindings.items())

    @property
    def entity_data_3(self) -> str:
        """LINES_SILENT_MODE: 'Y' when whisper mode is on."""
        return "Y" if self.silent else ""

    @property
    def dialog_id(self) -> str:
        return f"chat{self.id}"


@dataclass
class Session:
    id: int
    chat_id: int
    config_id: int
    user_id: int  # the client's portal user id
    user_code: str
    source: str
    mode: str  # input | output
    date_create: float
    status: int = Status.NEW
    operator_id: int = 0
    parent_id: int = 0
    start_id: int = 0
    end_id: int = 0
    message_count: int = 0
    closed: bool = False
    pause: bool = False
    spam: bool = False
    wait_action: bool = False
    wait_vote: bool = False
    wait_answer: bool = False
    vote: int = 0
    vote_head: int = 0
    comment_head: str = ""
    operator_is_bot: bool = False
    queue_deadline: float | None = None  # welcome-bot timer: when the dialog goes to the queue
    date_operator: float | None = None
    date_operator_answer: float | None = None
    date_first_answer: float | None = None
    date_last_message: float | None = None
    date_close: float | None = None
    date_close_vote: float | None = None
    time_bot: int = 0
    time_first_answer: int = 0
    time_answer: int = 0
    time_close: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Message:
    id: int
    chat_id: int
    author_id: int
    text: str
    date: float
    system: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False


@dataclass
class Lead:
    id: int
    fields: dict[str, Any]


@dataclass
class EventBinding:
    """An event.bind row: an app's online handler for one event, or (empty `handler`) an
    offline binding whose events go to the app's offline queue (emulator.offline)."""

    id: int
    event: str  # upper-case
    handler: str  # "" for an offline binding
    app_id: str
    auth_type: int
    connector_id: str = ""  # the auth_connector an offline binding was made with
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {"minTimeout": 5}
