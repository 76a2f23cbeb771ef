"""What the mailbox holds, as the pipeline reads and writes it: an inbox entry (a queued event),
an effect record, a dialog's committed state, and what an ingest did."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

__all__ = [
    "EffectRecord",
    "IngestResult",
    "Peeked",
    "StoredEvent",
    "StoredState",
    "event_json",
]

# one encoder for every event: json.dumps with options builds a new one per call
_compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An accepted event as the drainer sees it: its place in the dialog and the raw payload."""

    seq: int
    event_id: str
    name: str
    member_id: str
    chat_id: str
    ts: int
    received_ms: int
    payload: dict[str, Any] = field(repr=False)

    @classmethod
    def from_entry(cls, member_id: str, chat_id: str, entry: bytes) -> StoredEvent:
        """Parse an inbox entry `<seq>|<json>`."""
        seq, _, body = entry.partition(b"|")
        data = json.loads(body)
        return cls(
            int(seq),
            data["id"],
            data["name"],
            member_id,
            chat_id,
            int(data["ts"]),
            int(data["rcv"]),
            data["payload"],
        )


def event_json(event_id: str, name: str, ts: int, received_ms: int, payload: dict[str, Any]) -> str:
    """The JSON an inbox entry carries after its sequence number."""
    return _compact_json(
        {"id": event_id, "name": name, "ts": ts, "rcv": received_ms, "payload": payload}
    )


@dataclass(frozen=True, slots=True)
class EffectRecord:
    """One effect of a transition: a deterministic id, a kind and JSON-able data."""

    effect_id: str
    kind: str
    payload: dict[str, Any]
    # a patient effect outlives a portal outage: more tries, waits of up to a minute between
    # them, and the dialog is handed back while it waits (see Runner); decided by the domain
    patient: bool = False
    # which try this run is (1 = first); set by the runner, never stored: a try > 1 may follow a
    # crash or an unknown outcome, so an executor may look before it repeats a write
    attempt: int = 1

    def to_json(self) -> str:
        """The stored form."""
        data: dict[str, Any] = {"id": self.effect_id, "kind": self.kind, "payload": self.payload}
        if self.patient:
            data["patient"] = True
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: bytes | str) -> EffectRecord:
        """Parse the stored form."""
        data = json.loads(raw)
        return cls(data["id"], data["kind"], data["payload"], patient=data.get("patient", False))


@dataclass(frozen=True, slots=True)
class StoredState:
    """A dialog's committed state: the handler's bytes, the last applied seq, a version."""

    data: bytes | None
    seq: int
    version: int
    updated_ms: int


@dataclass(frozen=True, slots=True)
class Peeked:
    """The drainer's view before deciding: the head event, its try number, the state."""

    event: StoredEvent
    attempt: int
    state: StoredState


class IngestResult(IntEnum):
    """What an ingest did."""

    DUPLICATE = 0
    APPENDED = 1
    SCHEDULED = 2
    HINT = 3  # verified but not queued: an ONOFFLINEEVENT wake-up (ingress/intake.py)
