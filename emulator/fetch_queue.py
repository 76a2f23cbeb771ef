"""The messenger's event log that fetch-mode bots poll with `imbot.v2.Event.get`
(docs/bitrix24-bots-v2.md §3; the portal's `b_im_event_log` and EventService).

The semantics a client gets wrong are the point of this module, so they are spelled out:
* ids are ONE auto-increment over the whole log (every bot of the portal), so one bot's ids have
  gaps — a gap is never a loss;
* `offset` is a confirmation that physically DELETES the bot's rows below it — there is no
  cursor, and a second poller of the same bot loses what the first confirmed;
* re-reading with the same offset returns the same rows (at-least-once);
* every row older than the retention (24 h on the portal clock) is deleted, read or not.

Plain data over a clock; imports only emulator.primitives."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from emulator.primitives import Clock

LIMIT_MIN, LIMIT_MAX = 1, 1000


@dataclass
class LoggedEvent:
    """One row: a recipient bot's copy of an event, `data` frozen at the moment it happened."""

    id: int
    bot_id: int
    type: str
    at: float
    data: dict[str, Any]


@dataclass(frozen=True)
class Page:
    """What one Event.get read: rows, the offset to send next and whether to come back at once."""

    events: list[LoggedEvent]
    next_offset: int
    has_more: bool
    confirmed: list[int] = field(default_factory=list)  # ids this call's offset deleted


class FetchQueue:
    """One portal's event log for fetch-mode bots."""

    def __init__(self, clock: Clock, retention_s: float = 24 * 3600.0) -> None:
        self._clock = clock
        self.retention_s = retention_s
        self._rows: dict[int, LoggedEvent] = {}  # id -> row; ids only grow
        self._last_id = 0

    def append(self, bot_id: int, event_type: str, data: dict[str, Any]) -> LoggedEvent:
        """Write one row for one recipient bot; its id is the log's next (global) id."""
        self.expire()
        self._last_id += 1
        row = LoggedEvent(self._last_id, bot_id, event_type, self._clock.now(), copy.deepcopy(data))
        self._rows[row.id] = row
        return row

    def fetch(self, bot_ids: list[int], offset: int, limit: int) -> Page:
        """EventService::fetchEvents: clamp, delete the confirmed (< offset), read >= offset in id
        order. `offset` is the caller's raw value: nextOffset is computed from it unclamped."""
        self.expire()
        size = min(LIMIT_MAX, max(LIMIT_MIN, limit))
        floor = max(0, offset)
        wanted = set(bot_ids)
        confirmed = []
        if floor > 0:
            confirmed = [i for i, r in self._rows.items() if r.bot_id in wanted and i < floor]
            for row_id in confirmed:
                del self._rows[row_id]
        rows = sorted(
            (r for r in self._rows.values() if r.bot_id in wanted and r.id >= floor),
            key=lambda r: r.id,
        )[:size]
        next_offset = max(offset, rows[-1].id + 1) if rows else offset
        return Page([copy.deepcopy(r) for r in rows], next_offset, len(rows) >= size, confirmed)

    def purge(self, bot_id: int) -> int:
        """Delete every pending row of a bot (unregister, FETCH -> WEBHOOK); how many went."""
        gone = [i for i, r in self._rows.items() if r.bot_id == bot_id]
        for row_id in gone:
            del self._rows[row_id]
        return len(gone)

    def expire(self) -> None:
        """The clean-up agent: rows older than the retention go, confirmed or not. Rows are
        kept in id order, which is write order, so the old ones are at the front: this stops at
        the first row still young instead of reading the whole log on every append."""
        cutoff = self._clock.now() - self.retention_s
        while self._rows:
            oldest = next(iter(self._rows.values()))
            if oldest.at >= cutoff:
                return
            del self._rows[oldest.id]

    def pending(self, bot_id: int | None = None) -> list[LoggedEvent]:
        """Rows still stored (of one bot), oldest first: for tests and the state dump."""
        return sorted(
            (r for r in self._rows.values() if bot_id is None or r.bot_id == bot_id),
            key=lambda r: r.id,
        )
