"""The chaos report as a table, and its verdict."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["render", "verdict_ok"]


def _triple(report: dict[str, Any], name: str) -> str:
    return " / ".join(str(report[f"{name}_{q}_s"]) for q in ("p50", "p99", "max"))


def verdict_ok(report: dict[str, Any]) -> bool:
    """The invariants: nothing lost, no duplicate lead, nothing stuck."""
    return bool(report["lost"] == 0 and report["duplicate_leads"] == 0 and report["stuck"] == 0)


def render(report: dict[str, Any], console: Console) -> None:
    """The table."""
    table = Table(title=f"chaos: {report['dialogs']} dialogs in {report['elapsed_s']} s")
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("events acknowledged by the ingress", report["acknowledged"]),
        ("  of them acknowledged into the spool (Redis down)", report["spooled_on_ack"]),
        ("events handled (committed by workers)", report["handled"]),
        ("  of them dead-lettered", report["dead_lettered"]),
        ("events still queued", report["queued"]),
        ("events still in the spool", report["still_spooled"]),
        ("events lost", report["lost"]),
        ("deliveries the ingress refused", report["refused"]),
        ("duplicate leads", report["duplicate_leads"]),
        (
            "duplicate bot messages (shown more often than the dialogs posted them)",
            report["duplicate_messages"],
        ),
        ("dialogs not terminal after the drain (stuck)", report["stuck"]),
        ("  by kind (dead_effect: parked in the DLQ)", dict(report["stuck_by_kind"])),
        ("clients who gave up waiting", report["clients_gave_up"]),
        ("dialogs never started (bound hit first)", report["dialogs_not_started"]),
        (
            "workers SIGKILLed (holding dialogs)",
            f"{report['kills']} ({report['kills_holding_dialogs']})",
        ),
        (
            "dialogs they held with work (+ idle, not timed)",
            f"{report['dialogs_held_at_kills']} (+{report['held_idle_at_kills']})",
        ),
        (
            "resume: kill -> new lease, p50 / p99 / max s",
            _triple(report, "recovery"),
        ),
        (
            "progress: kill -> next commit, p50 / p99 / max s",
            _triple(report, "progress"),
        ),
        (
            "held dialogs never resumed / never progressed",
            f"{report['unresumed']} / {report['unprogressed']}",
        ),
        ("Redis down (one restart), s", report["redis_down_s"]),
        (
            "token expiry rounds / refreshes",
            f"{report['token_expiry_rounds']} / {report['token_refreshes']}",
        ),
        ("REST requests / 503", f"{report['rest_requests']} / {report['status_503']}"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    ok = verdict_ok(report)
    table.add_row(
        "verdict", "[green]lost 0, duplicate leads 0, stuck 0[/]" if ok else "[red]FAILED[/]"
    )
    console.print(table)
    for line in report["lost_examples"] + report["stuck_details"] + report["problems"]:
        console.print(f"[red]- {line}[/]")
