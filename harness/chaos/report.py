"""The chaos report as a table, and its verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from rich.console import Console
from rich.table import Table

from harness.chaos.ledger import EventLedger
from harness.judge import INVARIANTS, broken, seal
from harness.provenance import write_json

__all__ = [
    "CHAOS_INVARIANTS",
    "Witness",
    "failed_report",
    "render",
    "write_report",
]


class TroubleSeen(Protocol):
    """What the run's trouble makers have done so far (harness/chaos/run.py's Trouble)."""

    redis_kills: int
    ingress_kills: int

    @property
    def worker_kills(self) -> int:
        """Workers SIGKILLed so far."""
        ...


# Chaos's verdict: the invariants of every proof, and the dialogs a kill left behind.
CHAOS_INVARIANTS = (
    *INVARIANTS,
    ("unresumed", "dialogs a killed worker held that no drainer resumed"),
)


def _triple(report: dict[str, Any], name: str) -> str:
    return " / ".join(str(report[f"{name}_{q}_s"]) for q in ("p50", "p99", "max"))


def render(report: dict[str, Any], console: Console) -> None:
    """The table."""
    table = Table(title=f"chaos: {report['dialogs']} dialogs in {report['elapsed_s']} s")
    table.add_column("what")
    table.add_column("value", justify="right")
    ours = report.get("ours", {})
    rows = [
        ("events acknowledged by the ingress (the portal's journal)", report["acknowledged"]),
        ("  of them acknowledged into the spool (Redis down)", report["spooled_on_ack"]),
        ("events handled (the portal shows their effect)", report["handled"]),
        ("events lost", report["lost"]),
        ("deliveries no ingress acknowledged", report["refused"]),
        ("duplicate leads", report["duplicate_leads"]),
        ("e-mails and phones clients gave that their lead lacks", report["contact_data_missing"]),
        ("duplicate messages (ours, shown twice within a turn)", report["duplicate_messages"]),
        ("sessions stuck (not closed, or without rating or lead)", report["stuck"]),
        ("disagreements with our records", report["disagreements"]),
        ("clients who gave up waiting", report["clients_gave_up"]),
        ("dialogs never started (bound hit first)", report["dialogs_not_started"]),
        ("answers lost after the write (faults_after_write)", report["faults_after_write"]),
        (
            "workers SIGKILLed (holding dialogs)",
            f"{report['kills']} ({report['kills_holding_dialogs']})",
        ),
        (
            "dialogs they held with work (+ idle, not timed)",
            f"{report['dialogs_held_at_kills']} (+{report['held_idle_at_kills']})",
        ),
        ("resume: kill -> new lease, p50 / p99 / max s", _triple(report, "recovery")),
        ("progress: kill -> next commit, p50 / p99 / max s", _triple(report, "progress")),
        (
            "held dialogs never resumed / never progressed",
            f"{report['unresumed']} / {report['unprogressed']}",
        ),
        (
            "Redis SIGKILLed / down s",
            f"{report.get('redis_kills', 0)} / {report.get('redis_down_s', 0)}",
        ),
        (
            "ingress SIGKILLed / down s / balancer failovers",
            f"{report.get('ingress_kills', 0)} / {report.get('ingress_down_s', 0)} / "
            f"{report.get('balancer_failovers', 0)}",
        ),
        (
            "token expiry rounds / refreshes",
            f"{report['token_expiry_rounds']} / {report['token_refreshes']}",
        ),
        ("REST requests / 503", f"{report['rest_requests']} / {report['status_503']}"),
        (
            "ours (diagnosis): handled / dead-lettered / queued / spooled / lost",
            " / ".join(
                str(ours.get(k, "-"))
                for k in ("handled", "dead_lettered", "queued", "still_spooled", "lost")
            ),
        ),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    reasons = report.get("reasons", broken(report, CHAOS_INVARIANTS))
    table.add_row(
        "verdict", "[green]pass: every invariant held[/]" if not reasons else "[red]FAIL[/]"
    )
    console.print(table)
    for reason in reasons:
        console.print(f"[red]- broke: {reason}[/]")
    examples = [e for kind in report.get("problem_examples", {}).values() for e in kind]
    for line in examples + report["stuck_details"] + report["problems"]:
        console.print(f"[red]- {line}[/]")


@dataclass
class Witness:
    """What a run has seen so far, for the report written when it cannot finish (an exception,
    the bound, a signal): never a bare traceback in place of chaos.json."""

    ledger: EventLedger | None = None
    trouble: TroubleSeen | None = None
    phase: str = "starting"

    def seen(self) -> dict[str, Any]:
        """The counts known at this point."""
        found: dict[str, Any] = {"phase": self.phase}
        if self.ledger is not None:
            found |= {
                "acknowledged": len(self.ledger.acknowledged),
                "spooled_on_ack": self.ledger.spooled,
                "refused": self.ledger.refused,
                "balancer_failovers": self.ledger.failovers,
            }
        if self.trouble is not None:
            found |= {
                "kills": self.trouble.worker_kills,
                "redis_kills": self.trouble.redis_kills,
                "ingress_kills": self.trouble.ingress_kills,
            }
        return found


def failed_report(setup: dict[str, Any], witness: Witness, reason: str) -> dict[str, Any]:
    """The report of a run that did not finish: its setup, what it saw, and why it fails."""
    return {
        **setup,
        **witness.seen(),
        "verdict": "fail",
        "reasons": [reason],
    }


def write_report(path: str, report: dict[str, Any]) -> None:
    """chaos.json, with the verdict."""
    seal(report, CHAOS_INVARIANTS)
    write_json(path, report)
