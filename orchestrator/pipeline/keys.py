"""Every Redis key we own, in one place (like arq's constants.py).

Per-portal keys carry the portal's `member_id` as a hash tag, so a later move to Redis Cluster
keeps a portal's keys in one slot:

    {prefix}:portals                          SET    member ids of registered portals
    {prefix}:{<member>}:portal                HASH   domain, token_sha256, endpoints, source
    {prefix}:{<member>}:creds                 HASH   REST credentials (orchestrator/bitrix/auth.py):
                                                     the one key that holds access/refresh tokens
    {prefix}:{<member>}:bot:<code>            HASH   a v2 bot we registered: bot_token (webhook
                                                     portals only), bot_id, event_mode, webhook_url
                                                     (orchestrator/bitrix/bot_store.py)
    {prefix}:bots                             SET    "<member>|<code>" of those bots (polled)
    {prefix}:offline-wake                     PUBSUB member ids with new offline events
    {prefix}:fetch-wake                       PUBSUB member ids whose timers wait for the bot log
    {prefix}:{<member>}:poll:<name>           HASH   one poller's cursor (e.g. the offset it
                                                     confirmed), written only under its lease
    {prefix}:{<member>}:poll:<name>:lease     STRING "<token>|<holder>" of the live poller (PX)
    {prefix}:{<member>}:poll:<name>:fence     STRING counter the pollers' tokens come from
                                                     (orchestrator/ingress/pull/lease.py)
    {prefix}:{<member>}:watermark             HASH   "bot-<id>" -> ms up to which the bot's log
                                                     is stored (timers wait for it; EX 1 h)
    {prefix}:{<member>}:rate, :op:<method>    GCRA bucket and operating budget (bitrix/limiter.py)
    {prefix}:{<member>}:dedup:<dedup key>     STRING an event already accepted (EX dedup_ttl_s)
    {prefix}:{<member>}:dlg:<chat>:inbox      LIST   "<seq>|<event json>", oldest first
    {prefix}:{<member>}:dlg:<chat>:seq        STRING last sequence number handed out
    {prefix}:{<member>}:dlg:<chat>:sched      STRING id of the drain job that owns the wake-up
    {prefix}:{<member>}:dlg:<chat>:lease      STRING fencing token of the live drainer (PX)
    {prefix}:{<member>}:dlg:<chat>:fence      STRING counter the fencing tokens come from
    {prefix}:{<member>}:dlg:<chat>:state      HASH   data, seq (last applied), version, updated_ms
    {prefix}:{<member>}:dlg:<chat>:attempts   HASH   e:<seq> / f:<effect id> -> tries begun;
                                                     x:<effect id> -> its tries that failed cleanly
    {prefix}:{<member>}:dlg:<chat>:effects    HASH   effect id -> effect record json
    {prefix}:{<member>}:dlg:<chat>:fxstatus   HASH   effect id -> pending | done | dead
    {prefix}:{<member>}:dlg:<chat>:outbox     LIST   effect ids not done yet, in commit order
    {prefix}:{<member>}:dlg:<chat>:history    LIST   transition records (capped)
    (state, attempts, effects, fxstatus, outbox, history, seq and fence: `DialogKeys.retained`,
    their expiry re-armed to Settings.dialog_retention_s by each step of the dialog)
    {prefix}:pending                          ZSET   "<member>/<chat>" -> ms of last liveness
                                                     (present exactly while sched is set)
    {prefix}:dlq                              STREAM dead letters
    {prefix}:epoch                            STRING random id of this Redis's data (epoch.py)
    {prefix}:data-loss                        STRING the last noticed loss, until acknowledged

Portal-level events (ONAPPINSTALL, ONAPPUNINSTALL, ONIMBOTDELETE) queue in the portal's
pseudo-dialog `_portal` (PORTAL_DIALOG). The arq job records live under arq's own fixed
`arq:job:` prefix and the queue under `Settings.queue_name`; like `pending` and `dlq` they are
global (arq does not support Cluster), so today's scripts span slots: standalone Redis only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from arq.constants import job_key_prefix

from orchestrator.errors import InvalidEvent

__all__ = ["PORTAL_DIALOG", "DialogKeys", "Keys", "job_key"]

# Portal-level events (install, uninstall, bot delete) queue in this pseudo-dialog of the portal.
PORTAL_DIALOG = "_portal"
# Ids end up inside key names and the "<member>/<chat>" pending member: keep them boring.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


def _safe(kind: str, value: str) -> str:
    if not _SAFE_ID.match(value):
        raise InvalidEvent(f"{kind} {value[:40]!r} has characters we do not accept", status=400)
    return value


def job_key(job_id: str) -> str:
    """arq's record of one job."""
    return job_key_prefix + job_id


@dataclass(frozen=True, slots=True)
class DialogKeys:
    """The keys of one dialog's mailbox."""

    member_id: str
    chat_id: str
    base: str

    @property
    def pending_member(self) -> str:
        """How the dialog appears in the pending ZSET and the DLQ."""
        return f"{self.member_id}/{self.chat_id}"

    @property
    def retained(self) -> list[str]:
        """The long-lived keys, whose expiry each step of the dialog re-arms (lua/_lib.lua's
        `retain`). Not the inbox (it exists only while it holds accepted events), nor sched and
        lease (the scheduling handshake's own markers; the lease expires by itself)."""
        base = self.base
        return [f"{base}:{part}" for part in _RETAINED_PARTS]

    def __getattr__(self, name: str) -> str:
        # inbox, seq, sched, lease, fence, state, attempts, effects, fxstatus, outbox, history,
        # typing (when the bot last showed it was typing: expires by itself)
        if name in _DIALOG_PARTS:
            return f"{self.base}:{name}"
        raise AttributeError(name)


_DIALOG_PARTS = frozenset(
    {
        "inbox",
        "seq",
        "sched",
        "lease",
        "fence",
        "state",
        "attempts",
        "effects",
        "fxstatus",
        "outbox",
        "history",
        "typing",
    }
)


_RETAINED_PARTS = ("state", "attempts", "effects", "fxstatus", "outbox", "history", "seq", "fence")


@lru_cache(maxsize=65536)  # the ingress builds them per event; the ids repeat a lot
def _dialog_keys(prefix: str, member_id: str, chat_id: str) -> DialogKeys:
    base = f"{prefix}:{{{_safe('member_id', member_id)}}}:dlg:{_safe('dialog id', chat_id)}"
    return DialogKeys(member_id, chat_id, base)


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix."""

    prefix: str

    @property
    def portals(self) -> str:
        """SET of registered member ids."""
        return f"{self.prefix}:portals"

    @property
    def pending(self) -> str:
        """ZSET of dialogs with work or a wake-up outstanding."""
        return f"{self.prefix}:pending"

    @property
    def dlq(self) -> str:
        """STREAM of dead letters."""
        return f"{self.prefix}:dlq"

    @property
    def epoch(self) -> str:
        """STRING: the random id that tells this Redis's data from an emptied one's."""
        return f"{self.prefix}:epoch"

    @property
    def data_loss(self) -> str:
        """STRING (JSON): the last loss of Redis's data, until an operator acknowledges it."""
        return f"{self.prefix}:data-loss"

    def portal(self, member_id: str) -> str:
        """HASH describing one portal."""
        return f"{self.prefix}:{{{_safe('member_id', member_id)}}}:portal"

    def creds(self, member_id: str) -> str:
        """HASH of one portal's REST credentials: the only place a token lives."""
        return f"{self.prefix}:{{{_safe('member_id', member_id)}}}:creds"

    def bot(self, member_id: str, code: str) -> str:
        """HASH of one v2 bot we registered on the portal: its token and what the portal said."""
        return f"{self.prefix}:{{{_safe('member_id', member_id)}}}:bot:{_safe('bot code', code)}"

    @property
    def bots(self) -> str:
        """SET of "<member>|<code>": the v2 bots registered through us, which the fetcher polls."""
        return f"{self.prefix}:bots"

    @property
    def fetch_wake(self) -> str:
        """Pub/sub channel: a member id whose bot logs should be read now (timers wait)."""
        return f"{self.prefix}:fetch-wake"

    @property
    def offline_wake(self) -> str:
        """Pub/sub channel: a member id whose portal signalled new offline events."""
        return f"{self.prefix}:offline-wake"

    def keyboards(self, member_id: str) -> str:
        """Set while a fetch-mode bot's keyboard may be pressed (expires by itself): a press
        reaches us only through the bot's event log, so its poller stays quick meanwhile."""
        return f"{self.prefix}:{{{_safe('member_id', member_id)}}}:keyboards"

    def watermark(self, member_id: str) -> str:
        """HASH "bot-<id>" -> Unix ms up to which that bot's event log is in our inboxes."""
        return f"{self.prefix}:{{{_safe('member_id', member_id)}}}:watermark"

    def poller(self, member_id: str, name: str) -> str:
        """STRING: the fenced lease of the one poller `name` of a portal (acquire/lease.py)."""
        return f"{self.prefix}:{{{_safe('member_id', member_id)}}}:poll:{_safe('poller', name)}"

    def dedup(self, member_id: str, dedup_key: str) -> str:
        """Marker of an accepted event."""
        return f"{self.prefix}:{{{_safe('member_id', member_id)}}}:dedup:{dedup_key}"

    def dialog(self, member_id: str, chat_id: str) -> DialogKeys:
        """The keys of one dialog."""
        return _dialog_keys(self.prefix, member_id, chat_id)

    def dialog_from_pending(self, member: str) -> DialogKeys:
        """The dialog a pending-ZSET member names."""
        member_id, _, chat_id = member.partition("/")
        return self.dialog(member_id, chat_id)

    def state_pattern(self) -> str:
        """SCAN pattern matching every dialog's state key."""
        return f"{self.prefix}:{{*}}:dlg:*:state"
