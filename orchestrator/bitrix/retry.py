"""Which failures may be retried, by the method's idempotency, and how long to wait.

Rule: a throttle answer (503/429) or an expired token means the portal did not run the call, so any
call may be replayed. After a timeout, a network error or a 5xx the call may have run: reads and
idempotent writes are retried with jittered exponential backoff; the writes in `NON_IDEMPOTENT`
surface as `OutcomeUnknown` so the caller can reconcile instead of doubling the effect.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from orchestrator.errors import (
    OutcomeUnknown,
    RateLimited,
    ServerError,
    TokenExpired,
    TransportError,
)

# Writes whose replay can have a second effect (docs/bitrix24.md §5–§7). One row per method:
NON_IDEMPOTENT: dict[str, str] = {
    "imbot.message.add": "every call posts a new message",
    "imopenlines.bot.session.message.send": "every DEFAULT call posts a new system message",
    "imopenlines.bot.session.finish": "a replay may finish the dialog's next session",
    "imopenlines.bot.session.transfer": "a replay transfers again and posts another notice",
    "imopenlines.bot.session.operator": "a replay after success fails with WRONG_CHAT",
    "imopenlines.message.session.start": "each call closes the session and starts a new one",
    "imopenlines.crm.lead.create": "creates CRM entities; the existing-binding check races",
    "crm.lead.add": "every call creates a lead",
    "event.bind": "a replay after success fails with ERROR_CORE (already bound)",
    "batch": "an explicit batch may hold any write",
    # v2 chat-bot API and offline events (docs/bitrix24-bots-v2.md, bitrix24-offline-events.md)
    "imbot.v2.Chat.Message.send": "every call posts a new message",
    "imbot.v2.Bot.update": (
        "a token rotation retires the old token at once: its replay fails (BOT_OWNERSHIP_ERROR) "
        "though it took; BotV2Api.rotate_token reconciles by asking with the new token"
    ),
    "event.offline.get": (
        "clear=1 deletes the rows it returns, so a lost answer is a lost batch; clear=0 "
        "reserves them under the process id the lost answer carried, so a replay reserves the "
        "next rows and the first stay reserved, unseen, until retention (named .get, a write)"
    ),
    "event.offline.error": (
        "deletes every other copy of the objects, so a replay also deletes a row the portal "
        "wrote after the first call (its newer data lost; the object stays as an error row)"
    ),
}
# Writes that are safe to replay, and why (kept here so the classification is reviewable):
IDEMPOTENT_WRITES: dict[str, str] = {
    "imbot.register": "the portal returns the existing bot for the same CODE (§6.1)",
    "imbot.unregister": "a replay finds no bot; nothing is removed twice",
    "imbot.message.update": "sets the same content again",
    "imbot.message.delete": "the message stays deleted",
    "imbot.chat.sendTyping": "an indicator, no state",
    "imopenlines.session.start": "opens a session only when none is open",
    "imopenlines.session.join": "membership is a set",
    "imopenlines.session.intercept": "no-op once the caller is the operator",
    "imopenlines.session.head.vote": "sets the rating",
    "imopenlines.session.mode.pin": "sets a flag",
    "imopenlines.session.mode.pinAll": "sets a flag on a set",
    "imopenlines.session.mode.unpinAll": "clears a flag on a set",
    "imopenlines.session.mode.silent": "sets a flag",
    "event.unbind": "the binding stays removed",
    "imbot.v2.Bot.register": "the same code for the same owner returns the stored bot",
    "imbot.v2.Event.get": (
        "an offset deletes only the rows below it, which the caller confirmed by passing it; a "
        "replay with the same offset deletes nothing more and returns the same rows again "
        "(the danger is not the retry but an offset passed before its rows are stored, or a "
        "second reader: there is no consumer group, any reader's offset deletes for all)"
    ),
    "imbot.v2.Chat.InputAction.notify": "an indicator, no state",
    "imbot.v2.Command.register": "idempotent per bot and command",
    "event.offline.clear": "the rows stay deleted; true even when nothing matched",
    "imopenlines.config.update": "sets the keys given to the values given (send the five "
    "welcome-bot keys together: line_config.py)",
}
_READ_SUFFIXES = (".get", ".list", ".search", ".open", ".history.get", ".fields")


# Method names are case-insensitive on the portal; looked up once per call (and per write fence).
_NON_IDEMPOTENT = frozenset(m.lower() for m in NON_IDEMPOTENT)
_IDEMPOTENT_WRITES = frozenset(m.lower() for m in IDEMPOTENT_WRITES)


def is_idempotent(method: str) -> bool:
    """True when replaying `method` after an unknown outcome cannot double its effect."""
    name = method.lower()
    if name in _NON_IDEMPOTENT:
        return False
    if name in _IDEMPOTENT_WRITES:
        return True
    # Unknown methods count as writes unless their name says they read.
    return name.endswith(_READ_SUFFIXES)


class Action(StrEnum):
    """What the client does with a failed attempt."""

    RETRY = "retry"
    REFRESH = "refresh"
    RAISE = "raise"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RetryDecision:
    """The action for one failure and, for RETRY, the reason label."""

    action: Action
    reason: str = ""


def decide(exc: BaseException, method: str, *, idempotent: bool | None = None) -> RetryDecision:
    """The action for `exc` raised by an attempt of `method` (attempt counting is the caller's)."""
    if isinstance(exc, RateLimited):
        return RetryDecision(Action.RETRY, "rate_limited")
    if isinstance(exc, TokenExpired):
        return RetryDecision(Action.REFRESH, "token_expired")
    if isinstance(exc, TransportError | ServerError):
        if is_idempotent(method) if idempotent is None else idempotent:
            return RetryDecision(Action.RETRY, "transient")
        return RetryDecision(Action.UNKNOWN)
    return RetryDecision(Action.RAISE)


def backoff(attempt: int, *, base_s: float = 0.25, cap_s: float = 10.0) -> float:
    """Full-jitter exponential backoff for retry number `attempt` (1-based)."""
    return random.uniform(0, min(cap_s, base_s * 2 ** (attempt - 1)))


def outcome_unknown(method: str, params: dict[str, object], cause: BaseException) -> OutcomeUnknown:
    """The error a caller of a non-idempotent write gets after an ambiguous failure."""
    return OutcomeUnknown(method, dict(params), cause)
