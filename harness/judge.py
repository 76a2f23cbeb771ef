"""One judgment for every proof (demo, bench e2e, chaos): the counts harness/truth.py reads off
the portals' journals, for the dialogs the simulated clients opened, plus what the clients
themselves saw (a client that gave up waiting). Each count must be 0 for a run to pass: the
strict verdict (INVARIANTS), the same for every tool, which names each invariant a run broke."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.bench.play import PortalPlay
from harness.truth import PortalTruth, necessary_calls, read_truth

__all__ = [
    "INVARIANTS",
    "Judgment",
    "Tamper",
    "broken",
    "judge_portals",
    "seal",
    "why_stopped",
]

_EXAMPLES = 10  # problems kept in a report, per kind

# The strict verdict: each count must be 0, or the run fails and says which broke.
INVARIANTS = (
    ("lost", "acknowledged events whose effect the portal does not show"),
    ("duplicate_leads", "leads beyond one per session"),
    ("contact_data_missing", "e-mails and phones clients gave that their session's lead lacks"),
    ("duplicate_messages", "messages of ours the portal shows twice"),
    ("stuck", "sessions not closed, or closed without their rating or lead"),
    ("disagreements", "portal-side disagreements with our records (lead, rating, state)"),
    ("clients_gave_up", "clients left without an answer"),
    ("dialogs_not_started", "dialogs that never started within the bound"),
)

# A test seam of every tool: awaited after the run drained and before the portals are read, so
# a test can plant a record through the control API and prove the verdict catches it.
Tamper = Callable[[Sequence[PortalPlay]], Awaitable[None]]


def broken(report: dict[str, Any], invariants: Sequence[tuple[str, str]] = INVARIANTS) -> list[str]:
    """Every invariant the run broke, as `name = n: what it means` (none: it passed). A count
    the report lacks is broken too: what was not measured is not proven."""
    return [
        f"{name} = {report.get(name)}: {meaning}"
        for name, meaning in invariants
        if report.get(name) != 0
    ]


def seal(
    report: dict[str, Any], invariants: Sequence[tuple[str, str]] = INVARIANTS
) -> dict[str, Any]:
    """The report with its `verdict` (pass / fail) and `reasons`, unless it already has them
    (a run that did not finish carries its own reason)."""
    if "verdict" not in report:
        reasons = broken(report, invariants)
        report |= {"verdict": "fail" if reasons else "pass", "reasons": reasons}
    return report


@dataclass
class Judgment:
    """The portal-side counts of a run, and examples of what broke."""

    acknowledged: int = 0
    handled: int = 0
    lost: int = 0
    refused: int = 0
    stuck: int = 0
    duplicate_leads: int = 0
    contact_data_missing: int = 0
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
            "contact_data_missing": self.contact_data_missing,
            "duplicate_messages": self.duplicate_messages,
            "clients_gave_up": self.clients_gave_up,
            "faults_after_write": self.faults_after_write,
            "necessary_calls": self.necessary,
            "problem_examples": self.examples,
            "problem_journals": self.journals,
        }


def why_stopped(exc: BaseException, timeout_s: float) -> str:
    """Why a run ended before its verdict, in words for the report."""
    if isinstance(exc, TimeoutError):
        return f"gave up after --timeout {timeout_s:.0f} s"
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        return "stopped by a signal"
    return f"{type(exc).__name__}: {exc}"


def _compact(entry: dict[str, Any]) -> str:
    """One journal entry as a line: seq, the portal's clock (UTC, to the millisecond, to set it
    beside the run's logs), and what changed."""
    kind = entry["kind"]
    at = float(entry.get("at") or 0.0)
    head = f"{entry['seq']} {time.strftime('%H:%M:%S', time.gmtime(at))}.{int(at % 1 * 1000):03d}"
    text = str(entry.get("text", ""))[:40]
    if kind == "message":
        return f"{head} msg {entry.get('author')}/{entry.get('via')}: {text!r}"
    if kind == "session":
        return (
            f"{head} session {entry.get('session_id')} {entry.get('previous')}->"
            f"{entry.get('status')} {entry.get('reason')} op={entry.get('operator_id')}"
        )
    if kind == "event_posted":
        return f"{head} event {entry.get('name')} {entry.get('status')}"
    rest = {k: v for k, v in entry.items() if k not in ("seq", "at", "kind")}
    return f"{head} {kind} {rest}"


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
        no_contact = truth.contact_data_missing(chats)
        j.acknowledged += len(acknowledged)
        j.lost += len(lost)
        j.handled += len(acknowledged) - len(lost)
        j.refused += truth.refused()
        j.stuck += len(stuck)
        j.duplicate_leads += truth.duplicate_leads()
        j.duplicate_messages += len(doubles)
        j.contact_data_missing += len(no_contact)
        j.clients_gave_up += sum(1 for run in play.runs if run.error)
        j.faults_after_write += int(counters.get("faults_after_write", 0))
        for name, count in necessary_calls(truth).items():
            j.necessary[name] = j.necessary.get(name, 0) + count
        j.note(
            "lost", [f"{play.member_id[:8]} chat {e.get('chat_id')}: {e.get('name')}" for e in lost]
        )
        j.note("stuck", [f"{play.member_id[:8]} {p}" for p in stuck])
        j.note("duplicate_messages", [f"{play.member_id[:8]} {d}" for d in doubles])
        j.note("contact_data_missing", [f"{play.member_id[:8]} {p}" for p in no_contact])
        problems = [*stuck, *doubles, *no_contact]  # each `chat <id>: ...`
        bad = {int(e.get("chat_id") or 0) for e in lost} | {
            int(p.split()[1].rstrip(":")) for p in problems if p.startswith("chat ")
        }
        for chat_id in sorted(bad)[:3]:
            if chat_id in truth.chats and len(j.journals) < _EXAMPLES:
                j.journals[f"{play.member_id[:8]}/{chat_id}"] = [
                    _compact(e) for e in truth.chats[chat_id].entries
                ]
    return j
