"""One judgment for every proof (demo, bench e2e, chaos): the counts harness/truth.py reads off
the portals' journals, for the dialogs the simulated clients opened, plus what the clients
themselves saw (a client that gave up waiting). Each count must be 0 for a run to pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.bench.play import PortalPlay
from harness.truth import PortalTruth, necessary_calls, read_truth

__all__ = ["Judgment", "judge_portals"]

_EXAMPLES = 10  # problems kept in a report, per kind


@dataclass
class Judgment:
    """The portal-side counts of a run, and examples of what broke."""

    acknowledged: int = 0
    handled: int = 0
    lost: int = 0
    refused: int = 0
    stuck: int = 0
    duplicate_leads: int = 0
    duplicate_messages: int = 0
    clients_gave_up: int = 0
    faults_after_write: int = 0
    necessary: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    journals: dict[str, list[str]] = field(default_factory=dict)  # chat -> its journal, compact

    def note(self, kind: str, items: Sequence[str]) -> None:
        """Keep a few examples of one kind of problem."""
        kept = self.examples.setdefault(kind, [])
        kept += list(items)[: _EXAMPLES - len(kept)]

    def report(self) -> dict[str, Any]:
        """The report's fields (`source: portal`: every count is read off the portals)."""
        return {
            "source": "portal",
            "acknowledged": self.acknowledged,
            "handled": self.handled,
            "lost": self.lost,
            "refused": self.refused,
            "stuck": self.stuck,
            "duplicate_leads": self.duplicate_leads,
            "duplicate_messages": self.duplicate_messages,
            "clients_gave_up": self.clients_gave_up,
            "faults_after_write": self.faults_after_write,
            "necessary_calls": self.necessary,
            "problem_examples": self.examples,
            "problem_journals": self.journals,
        }


def _compact(entry: dict[str, Any]) -> str:
    kind = entry["kind"]
    text = str(entry.get("text", ""))[:40]
    if kind == "message":
        return f"{entry['seq']} msg {entry.get('author')}/{entry.get('via')}: {text!r}"
    if kind == "session":
        return (
            f"{entry['seq']} session {entry.get('session_id')} {entry.get('previous')}->"
            f"{entry.get('status')} {entry.get('reason')} op={entry.get('operator_id')}"
        )
    if kind == "event_posted":
        return f"{entry['seq']} event {entry.get('name')} {entry.get('status')}"
    rest = {k: v for k, v in entry.items() if k not in ("seq", "at", "kind")}
    return f"{entry['seq']} {kind} {rest}"


async def judge_portals(plays: Sequence[PortalPlay]) -> Judgment:
    """The portal-side judgment of a run over these portals' plays."""
    j = Judgment()
    for play in plays:
        truth: PortalTruth = await read_truth(play.control)
        counters = await play.control.counters()
        chats = [run.chat_id for run in play.runs if run.chat_id]
        acknowledged = truth.acknowledged()
        lost = truth.lost()
        stuck = truth.stuck(chats)
        doubles = truth.duplicate_messages()
        j.acknowledged += len(acknowledged)
        j.lost += len(lost)
        j.handled += len(acknowledged) - len(lost)
        j.refused += truth.refused()
        j.stuck += len(stuck)
        j.duplicate_leads += truth.duplicate_leads()
        j.duplicate_messages += len(doubles)
        j.clients_gave_up += sum(1 for run in play.runs if run.error)
        j.faults_after_write += int(counters.get("faults_after_write", 0))
        for name, count in necessary_calls(truth).items():
            j.necessary[name] = j.necessary.get(name, 0) + count
        j.note(
            "lost", [f"{play.member_id[:8]} chat {e.get('chat_id')}: {e.get('name')}" for e in lost]
        )
        j.note("stuck", [f"{play.member_id[:8]} {p}" for p in stuck])
        j.note("duplicate_messages", [f"{play.member_id[:8]} {d}" for d in doubles])
        bad = {int(e.get("chat_id") or 0) for e in lost} | {
            int(p.split()[1].rstrip(":")) for p in stuck if p.startswith("chat ")
        }
        for chat_id in sorted(bad)[:3]:
            if chat_id in truth.chats and len(j.journals) < _EXAMPLES:
                j.journals[f"{play.member_id[:8]}/{chat_id}"] = [
                    _compact(e) for e in truth.chats[chat_id].entries
                ]
    return j
