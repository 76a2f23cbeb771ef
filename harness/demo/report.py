"""The demo's verdict: the strict verdict of every proof (harness/judge.py, read off the portal's
journal), our dialog states checked against the emulated portal's own state, and the summary.

Agreement means, for every dialog: our state is terminal; the portal's session is closed; the
session has exactly one lead (ours by ORIGINATOR_ID/ORIGIN_ID, or the chat's CRM binding) and
it is the one our state names; the portal holds a head vote exactly where we saved one, with our
rating.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.demo.actors import ClientRun
from orchestrator.dialog.evaluation import ORIGINATOR_ID
from orchestrator.dialog.state import TERMINAL, DialogState

__all__ = ["Verdict", "percentile", "render", "verify"]


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class Verdict:
    """Counts from our side and the portal's, and every disagreement found."""

    dialogs: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_persona: Counter[str] = field(default_factory=Counter)
    # persona -> how its dialogs ended (our state, checked against the portal's below)
    persona_ends: dict[str, Counter[str]] = field(default_factory=dict)
    answerer: dict[str, int] = field(default_factory=dict)  # what the demo's service was asked
    leads: int = 0
    votes_saved: int = 0
    portal_head_votes: int = 0
    rest: dict[str, int] = field(default_factory=dict)
    step_p50_s: float | None = None
    step_p99_s: float | None = None
    # the later steps, seen on the portal: name -> (p50, p99) in seconds
    steps: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    elapsed_s: float = 0.0
    # for the chart, not the JSON: seconds into the run at which each session closed, and
    # (seconds into the run, latency in seconds) of each bot reply
    closed_at_s: list[float] = field(default_factory=list)
    replies: list[tuple[float, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # disagreements with our records
    pipeline: list[str] = field(default_factory=list)  # where unfinished dialogs wait (diagnose)
    portal: dict[str, Any] = field(default_factory=dict)  # the judgment (harness/judge.py)
    reasons: list[str] = field(default_factory=list)  # each invariant broken, or why it stopped

    @property
    def ok(self) -> bool:
        """Every invariant held and our records agree with the portal's."""
        return not self.reasons and not self.problems and self.dialogs > 0

    def report(self) -> dict[str, Any]:
        """demo.json: the counts, the portal's judgment and the verdict."""
        return {
            "dialogs": self.dialogs,
            "elapsed_s": round(self.elapsed_s, 1),
            "by_status": dict(self.by_status),
            "by_persona": dict(self.by_persona),
            "persona_ends": {p: dict(c) for p, c in self.persona_ends.items()},
            "answerer": self.answerer,
            "leads": self.leads,
            "votes_saved": self.votes_saved,
            "portal_head_votes": self.portal_head_votes,
            "rest": self.rest,
            **self.portal,
            "disagreements": len(self.problems),
            "problems": self.problems[:20],
            "pipeline": self.pipeline[:20],
            "verdict": "pass" if self.ok else "fail",
            "reasons": self.reasons,
        }


def _leads_by_origin(portal: dict[str, Any]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for lead in portal["leads"]:
        if lead.get("ORIGINATOR_ID") == ORIGINATOR_ID and lead.get("ORIGIN_ID"):
            found.setdefault(str(lead["ORIGIN_ID"]), []).append(int(lead["ID"]))
    return found


def _check_dialog(
    v: Verdict,
    run: ClientRun,
    state: DialogState | None,
    portal: dict[str, Any],
    by_origin: dict[str, list[int]],
) -> None:
    where = f"dialog {run.index} (chat {run.chat_id}, {run.persona.value})"
    if state is None:
        v.problems.append(f"{where}: we have no state")
        v.by_status["none"] += 1
        return
    v.by_status[state.status.value] += 1
    v.persona_ends.setdefault(run.persona.value, Counter())[state.status.value] += 1
    if state.status not in TERMINAL:
        v.problems.append(f"{where}: still {state.status.value}")
    session = next((s for s in portal["sessions"] if s["id"] == state.session_id), None)
    if session is None or not session["closed"]:
        steps = " ".join(f"{h.input}>{h.to}" for h in state.history)
        v.problems.append(
            f"{where}: the portal's session {state.session_id} is not closed (we did: {steps})"
        )
        return
    chat = next(c for c in portal["chats"] if c["id"] == run.chat_id)
    leads = set(by_origin.get(f"{state.member_id}:{run.chat_id}:{session['id']}", []))
    if chat.get("crm_bindings", {}).get("LEAD"):
        leads.add(int(chat["crm_bindings"]["LEAD"]))
    v.leads += len(leads)
    # The demo's scenario owns both steps: every closed session must end with exactly one lead
    # and an evaluation, as the portal itself records them.
    if not leads:
        v.problems.append(f"{where}: the portal has no lead for session {session['id']}")
    if not 1 <= int(session["vote_head"] or 0) <= 5:
        v.problems.append(f"{where}: the portal's session {session['id']} has no evaluation")
    if state.lead_done and leads != {state.lead_id}:
        v.problems.append(f"{where}: we say lead {state.lead_id}, the portal has {sorted(leads)}")
    if state.vote_saved != bool(session["vote_head"]) or (
        state.vote_saved and session["vote_head"] != state.vote
    ):
        v.problems.append(
            f"{where}: our vote {state.vote if state.vote_saved else None}, "
            f"the portal's head vote {session['vote_head']}"
        )
    v.votes_saved += state.vote_saved
    v.portal_head_votes += bool(session["vote_head"])


def verify(
    runs: list[ClientRun],
    states: dict[int, DialogState | None],
    portal: dict[str, Any],
    counters: dict[str, Any],
    step_s: list[float],
) -> Verdict:
    """Compare our states with the portal's snapshot (`GET /_emulator/state`)."""
    v = Verdict(dialogs=len(runs))
    by_origin = _leads_by_origin(portal)
    for run in runs:
        v.by_persona[run.persona.value] += 1
        _check_dialog(v, run, states.get(run.chat_id), portal, by_origin)
    methods = counters.get("methods", {})
    v.rest = {
        "HTTP requests": int(counters.get("requests", 0)),
        "method calls": sum(int(m.get("calls", 0)) for m in methods.values()),
        "503 QUERY_LIMIT_EXCEEDED": sum(int(m.get("503", 0)) for m in methods.values()),
        "429 OPERATION_TIME_LIMIT": sum(int(m.get("429", 0)) for m in methods.values()),
        "method errors (refusals we fall back from)": sum(
            int(m.get("errors", 0)) for m in methods.values()
        ),
    }
    v.step_p50_s, v.step_p99_s = percentile(step_s, 50), percentile(step_s, 99)
    return v


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def render(v: Verdict, console: Console) -> None:
    """The summary: dialogs by final state, the CRM and vote agreement, REST use, timings."""
    table = Table(
        title=f"Open Lines demo: {v.dialogs} dialogs in {v.elapsed_s:.0f} s",
        show_header=True,
        header_style="bold",
    )
    table.add_column("what")
    table.add_column("value", justify="right")
    for status, count in sorted(v.by_status.items()):
        table.add_row(f"dialogs ended in '{status}'", str(count))
    for persona, count in sorted(v.by_persona.items()):
        ends = v.persona_ends.get(persona, Counter())
        table.add_row(f"clients who {persona}", f"{count} ({ends.get('lead', 0)} in 'lead')")
    if v.answerer:
        actions = ", ".join(f"{k} {n}" for k, n in sorted(v.answerer.items()) if k != "asked")
        table.add_row("the assistant desk's answerer: asked", f"{v.answerer['asked']} ({actions})")
    table.add_row("leads on the portal (one per session)", str(v.leads))
    for name, key in (
        ("events acknowledged (the portal's journal)", "acknowledged"),
        ("events lost (the portal shows no effect)", "lost"),
        ("duplicate leads (the portal's journal)", "duplicate_leads"),
        ("e-mails and phones clients gave that their lead lacks", "contact_data_missing"),
        ("duplicate messages (ours, shown twice within a turn)", "duplicate_messages"),
        ("sessions stuck (not closed, or without rating or lead)", "stuck"),
        ("clients who gave up waiting", "clients_gave_up"),
    ):
        table.add_row(name, str(v.portal.get(key, "-")))
    table.add_row(
        "evaluations saved (ours / portal head votes)", f"{v.votes_saved} / {v.portal_head_votes}"
    )
    for name, count in v.rest.items():
        table.add_row(f"REST {name}", str(count))
    table.add_row(
        "p50 / p99: client message -> bot reply",
        f"{_secs(v.step_p50_s)} / {_secs(v.step_p99_s)}",
    )
    for name, (p50, p99) in v.steps.items():
        table.add_row(f"p50 / p99: {name}", f"{_secs(p50)} / {_secs(p99)}")
    verdict = (
        "[green]every invariant held; agrees with the portal[/]"
        if v.ok
        else f"[red]FAIL: {len(v.reasons)} invariants broken, {len(v.problems)} disagreements[/]"
    )
    table.add_row("verdict", verdict)
    console.print(table)
    for reason in v.reasons:
        console.print(f"[red]- broke: {reason}[/]")
    examples = [e for kind in v.portal.get("problem_examples", {}).values() for e in kind]
    for problem in examples + v.problems[:20]:
        console.print(f"[red]- {problem}[/]")
    for note in v.pipeline[:20]:
        console.print(f"[yellow]- our pipeline: {note}[/]")
