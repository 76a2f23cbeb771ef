"""The table `orchestrator bench e2e` prints: the headline figures, the verdict, what broke."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["render"]


def render(report: dict[str, Any], console: Console) -> None:
    """The summary table, the verdict and what broke."""
    table = Table(title=f"bench e2e: {report['dialogs']} dialogs in {report['elapsed_s']} s")
    table.add_column("what")
    table.add_column("value", justify="right")
    reads = ", ".join(report["necessary_reads"]) or "none"
    rows = [
        ("dialogs/s", report["dialogs_per_s"]),
        ("necessary calls per dialog (the portal's journal)", report["necessary_calls_per_dialog"]),
        (f"  of them reads: {reads}", ""),
        ("method calls per dialog (the portal's counters)", report["calls_per_dialog"]),
        ("true ceiling dialogs/s", report["true_ceiling_dialogs_per_s"]),
        ("  = " + report["ceiling_formula"], ""),
        ("dialogs/s ÷ true ceiling", report["dialogs_vs_true_ceiling"]),
        (
            f"request ratio (req/s ÷ drain, {report['loaded_phase_s']} s loaded)",
            report["request_ratio"],
        ),
        (
            "request budget spent polling, busy / idle",
            f"{report['polling_busy']['budget_share_polling']:.1%} / "
            f"{report['polling_idle']['budget_share_polling']:.1%}",
        ),
        ("503 QUERY_LIMIT_EXCEEDED", report["status_503"]),
        ("429 OPERATION_TIME_LIMIT", report["status_429"]),
    ]
    for name, step in report["steps"].items():
        rows.append(
            (f"{name} p50 / p99 ms (n={step['count']})", f"{step['p50_ms']} / {step['p99_ms']}")
        )
    if "light" in report:
        light = report["light"]
        rows.append(
            (
                f"reply at light load, one dialog at a time, p50 / p99 ms (n={light['replies']})",
                f"{light['light_reply_p50_ms']} / {light['light_reply_p99_ms']}",
            )
        )
    rows += [
        ("events acknowledged / lost (the portal's journal)", "{acknowledged} / {lost}"),
        ("duplicate leads / duplicate messages", "{duplicate_leads} / {duplicate_messages}"),
        ("sessions stuck (not closed, or without rating or lead)", "{stuck}"),
        (
            "disagreements with our records / clients who gave up",
            "{disagreements} / {clients_gave_up}",
        ),
    ]
    if "fairness" in report:
        fair = report["fairness"]
        rows.append(
            ("fairness: worst quiet-portal throughput ratio", fair["worst_throughput_ratio"])
        )
        rows.append(("fairness: worst quiet-portal p99 ratio", fair["worst_p99_ratio"]))
    for name, value in rows:
        table.add_row(name, str(value).format(**report))
    passed = report["verdict"] == "pass"
    table.add_row("verdict", "[green]pass: every invariant held[/]" if passed else "[red]FAIL[/]")
    console.print(table)
    for reason in report["reasons"]:
        console.print(f"[red]- broke: {reason}[/]")
    examples = [e for kind in report.get("problem_examples", {}).values() for e in kind]
    for problem in examples + report["problems"]:
        console.print(f"[red]- {problem}[/]")
