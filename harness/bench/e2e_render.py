"""What `orchestrator bench e2e` shows: the table it prints (the headline figures, the verdict,
what broke) and its chart (bench-e2e.png): throughput against both ceilings, the bot's reply
latency over the run, and the queues."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from harness.charts import percentile_series, save, subplots, window_s

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from harness.bench.e2e_watch import Sample

__all__ = ["CEILINGS", "chart", "chart_figure", "render"]

# The report's two ceilings, drawn across the throughput axes (report key, legend, line style):
# what the portal's budget allows at the calls a dialog needs, and at the calls we made.
CEILINGS = (
    ("true_ceiling_dialogs_per_s", "true ceiling", "--"),
    ("ceiling_at_our_calls_dialogs_per_s", "ceiling at our calls", ":"),
)


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
    answerer = report.get("answerer") or {}
    if answerer.get("kind") == "http":
        actions = ", ".join(f"{k} {n}" for k, n in sorted(answerer.get("by_action", {}).items()))
        rows.append(
            ("answerer service (every line): questions", f"{answerer.get('asked')} ({actions})")
        )
    rows += [
        ("events acknowledged / lost (the portal's journal)", "{acknowledged} / {lost}"),
        ("duplicate leads / duplicate messages", "{duplicate_leads} / {duplicate_messages}"),
        ("e-mails and phones clients gave that their lead lacks", "{contact_data_missing}"),
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
    for note in report.get("pipeline", []):
        console.print(f"[yellow]- our pipeline: {note}[/]")


def _per_second(samples: Sequence[Sample], count: Callable[[Sample], int]) -> list[float]:
    """The per-second rate of a cumulative count between consecutive samples (0 at the start)."""
    return [0.0] + [
        (count(b) - count(a)) / max(b.t - a.t, 1e-9) for a, b in itertools.pairwise(samples)
    ]


def chart_figure(
    report: dict[str, Any],
    samples: Sequence[Sample],
    replies: Sequence[tuple[float, float]],
    title: str,
) -> Figure:
    """The chart as a figure: dialogs closed/s and REST requests/s with the two ceilings drawn
    across; the reply latency (each reply, and p50/p99 per window) over the same seconds; the
    queue depths. `replies` are (seconds since the run started, latency in seconds)."""
    fig, (top, middle, bottom) = subplots(3, 1, sharex=True, figsize=(10, 9))
    t = [s.t for s in samples]
    top.plot(t, _per_second(samples, lambda s: s.closed), label="dialogs closed / s")
    top.plot(t, _per_second(samples, lambda s: s.requests), label="REST HTTP requests / s")
    for key, name, style in CEILINGS:
        if report.get(key):  # None or 0: no dialog measured, nothing to draw
            value = float(report[key])
            top.axhline(value, linestyle=style, color="black", label=f"{name}: {value:g} dialogs/s")
    top.set_ylabel("per second")
    top.legend(loc="upper right", fontsize="small")
    top.set_title(title)
    span = max([s.t for s in samples] + [at for at, _ in replies], default=1.0)
    width = window_s(span)
    middle.scatter(
        [at for at, _ in replies], [s for _, s in replies], s=4, alpha=0.3, label="each reply"
    )
    mids, series = percentile_series(replies, width)
    for q, values in series.items():
        middle.plot(mids, values, marker=".", label=f"p{q:g} per {width:g} s")
    middle.set_ylabel("reply latency, s")
    middle.set_title("client message -> bot reply", fontsize="medium")
    middle.legend(loc="upper right", fontsize="small")
    bottom.plot(t, [s.pending for s in samples], label="dialogs with work pending")
    bottom.plot(t, [s.waiting_jobs for s in samples], label="drain jobs waiting for a worker")
    bottom.plot(t, [s.running_jobs for s in samples], label="drains running")
    bottom.set_xlabel("seconds")
    bottom.set_ylabel("queue depth")
    bottom.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    return fig


def chart(
    report: dict[str, Any],
    samples: Sequence[Sample],
    replies: Sequence[tuple[float, float]],
    path: str | Path,
    title: str,
) -> None:
    """Write the chart (`chart_figure`) as a PNG."""
    save(chart_figure(report, samples, replies, title), path)
