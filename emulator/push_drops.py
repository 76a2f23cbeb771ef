"""Lost pushes: a plan that makes a portal's queue server drop an outbound event instead of
POSTing it — as when the queue lost it or the handler could not be reached. Bitrix24 never
retries a push, so a dropped event is simply gone for that handler (docs
api-reference/events/index.md); what a client must survive is exactly this.

Per portal, per upper-case event name (or "*" for every event): `next` drops the next N pushes
of that event, `rate` drops each with a probability, drawn from a seeded generator so a run can
be replayed. A dropped push is journaled as `event_dropped` — never `event_posted`, which the
proofs count as delivered. Offline-queue rows are not pushes and are never dropped.

Imports nothing of the emulator but the journal."""

from __future__ import annotations

import random
from typing import Any

from emulator.journal import Journal

ANY = "*"


def _names(raw: Any, kind: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f"{kind} must be an object of event name -> number")
    return {str(name).upper(): value for name, value in raw.items()}


class PushDrops:
    """One portal's drop plan and the generator that applies it."""

    def __init__(self, seed: int = 0) -> None:
        self.rate: dict[str, float] = {}
        self.next: dict[str, int] = {}
        self._rng = random.Random(seed)

    def configure(self, body: dict[str, Any]) -> None:
        """Replace the plan: `rate` (name -> probability), `next` (name -> count), `seed`."""
        unknown = set(body) - {"rate", "next", "seed", "member_id"}
        if unknown:
            raise ValueError(f"unknown push-drop settings: {sorted(unknown)}")
        rate = _names(body.get("rate", {}), "rate")
        for name, value in rate.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"rate[{name}] must be a probability between 0 and 1")
        counts = _names(body.get("next", {}), "next")
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"next[{name}] must be a non-negative integer")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        self.rate = {k: float(v) for k, v in rate.items()}
        self.next = dict(counts)
        if seed is not None:
            self._rng = random.Random(seed)

    def clear(self) -> None:
        self.rate, self.next = {}, {}

    def describe(self) -> dict[str, Any]:
        return {"rate": dict(self.rate), "next": dict(self.next)}

    def decide(self, event: str) -> str | None:
        """Whether the push of `event` is lost: "next" (a counted drop), "rate" (a drawn one)
        or None (deliver it). A counted drop of the event itself is used before one of "*"."""
        name = event.upper()
        for key in (name, ANY):
            if self.next.get(key, 0) > 0:
                self.next[key] -= 1
                return "next"
        rate = self.rate.get(name, self.rate.get(ANY, 0.0))
        # Draw only when a rate is set, so other events do not shift the sequence.
        if rate > 0 and self._rng.random() < rate:
            return "rate"
        return None


def journal_drop(
    journal: Journal | None, url: str, payload: dict[str, Any], note: dict[str, Any], reason: str
) -> None:
    """Record a lost push: what it was, about which chat, for which handler, and why."""
    if journal is None:
        return
    fields: dict[str, Any] = {
        "name": str(payload.get("event") or "").upper(),
        "dedup": note.get("dedup"),
        "url": url,
        "reason": reason,
    }
    if note.get("chat_id"):
        fields["chat_id"] = note["chat_id"]
    journal.append("event_dropped", **fields)
