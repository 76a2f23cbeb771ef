"""The portal's journal: an append-only, in-memory record of every change one portal makes, so a
proof can judge a run by the portal's own records rather than by the client's.

Each entry is a dict with `seq` (1, 2, ... per portal), `at` (the portal clock), `kind` and the
kind's fields (emulator/README.md lists them). Entries are appended where the state changes — the
store, the session lifecycle, the messaging code, event delivery, fault injection — and never
rewritten. Who caused a change (the REST method, the control API's client or operator, or the
portal itself) is carried in a context variable the dispatcher and the control API set around
their work, so the domain code records it without being told.

Imports nothing of the emulator but its primitives, so either side may use it.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from emulator.primitives import Clock

KINDS = frozenset(
    {
        "message",
        "message_updated",
        "message_deleted",
        "session",
        "head_vote",
        "client_vote",
        "lead_created",
        "lead_updated",
        "crm_binding",
        "bot_registered",
        "bot_unregistered",
        "event_posted",
        "event_queued",
        "event_confirmed",
        "event_dropped",
        "offline_queued",
        "offline_reserved",
        "offline_cleared",
        "offline_error",
        "fault",
    }
)
# What a GET returns at most per page; a run of the demo or a bench fits in one.
PAGE_LIMIT = 100_000
# Who acts when nobody told: timers and the portal's own automation.
PORTAL = "portal"

_via: ContextVar[str] = ContextVar("emulator_journal_via", default=PORTAL)


@contextmanager
def acting(via: str) -> Iterator[None]:
    """Attribute every change made inside the block to `via` (a REST method, "client", ...)."""
    token = _via.set(via)
    try:
        yield
    finally:
        _via.reset(token)


def current_via() -> str:
    """Who is acting now: the REST method being served, a control-API actor, or "portal"."""
    return _via.get()


class Journal:
    """One portal's entries, oldest first; `seq` is the 1-based position in the list."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: list[dict[str, Any]] = []
        self._counts: Counter[str] = Counter()

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Record one change (its fields copied, so later changes to them do not leak in); `seq`
        and `at` are the journal's, whatever `fields` says. A shallow copy of the entry."""
        if kind not in KINDS:
            raise ValueError(f"unknown journal kind {kind!r}; known: {sorted(KINDS)}")
        entry = {
            **copy.deepcopy(fields),
            "seq": len(self._entries) + 1,
            "at": self._clock.now(),
            "kind": kind,
        }
        self._entries.append(entry)
        self._counts[kind] += 1
        return dict(entry)

    def __len__(self) -> int:
        return len(self._entries)

    def page(self, since: int = 0, limit: int = PAGE_LIMIT) -> dict[str, Any]:
        """Entries with seq > since, at most `limit` (capped at PAGE_LIMIT); `next` is the seq to
        pass as `since` to continue, `total` the journal's length. The entries are the stored
        ones, not copies (a page of a long run is serialised at once): read them, never change."""
        if since < 0 or limit < 0:
            raise ValueError("since and limit must not be negative")
        start = min(since, len(self._entries))
        chunk = self._entries[start : start + min(limit, PAGE_LIMIT)]
        return {
            "entries": chunk,
            "next": chunk[-1]["seq"] if chunk else start,
            "total": len(self._entries),
        }

    def entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every entry (or those of one kind), copied: for tests and in-process harnesses."""
        return [copy.deepcopy(e) for e in self._entries if kind is None or e["kind"] == kind]

    def last(self) -> dict[str, Any]:
        """A copy of the newest entry (IndexError when the journal is empty)."""
        return copy.deepcopy(self._entries[-1])

    def counts(self) -> dict[str, int]:
        """How many entries of each kind."""
        return dict(sorted(self._counts.items()))
