"""The demo's PNG report, written beside its JSON (demo.json -> demo.png): how fast dialogs
finished, how long each step took (p50 and p99), and how the dialogs ended.

A picture of the same run the summary table describes, for a reader who wants the shape of it:
whether the dialogs finished steadily, and which step the waiting is in.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.charts import rate_series, save, subplots, window_s
from harness.demo.report import Verdict

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["REPLY_STEP", "chart_path", "demo_figure", "write_chart"]

REPLY_STEP = "client message -> bot reply"  # the first step's name, the others are Verdict.steps


def chart_path(output: str | Path) -> Path:
    """Where the chart of a run whose JSON goes to `output` is written: beside it, as .png."""
    return Path(output).with_suffix(".png")


def _steps(v: Verdict) -> dict[str, tuple[float | None, float | None]]:
    return {REPLY_STEP: (v.step_p50_s, v.step_p99_s), **v.steps}


def demo_figure(v: Verdict) -> Figure:
    """Three panels: dialogs finished per second over the run, each step's p50 and p99, and
    the dialogs by final status."""
    fig, (flow, latency, outcome) = subplots(1, 3, figsize=(15, 4.5))
    verdict = "pass" if v.ok else "FAIL"
    fig.suptitle(f"Open Lines demo: {v.dialogs} dialogs in {v.elapsed_s:.0f} s ({verdict})")

    end = max([v.elapsed_s, *v.closed_at_s])
    width = window_s(end)
    mids, rates = rate_series(v.closed_at_s, width, end)
    flow.plot(mids, rates, marker=".", label=f"dialogs finished / s (per {width:g} s)")
    flow.set_xlabel("seconds")
    flow.set_ylabel("per second")
    flow.set_title("throughput", fontsize="medium")
    flow.legend(loc="upper right", fontsize="small")

    steps = _steps(v)
    names = list(steps)
    at = list(range(len(names)))
    # a step nothing was measured for (None) is drawn as an empty slot, not as 0 s
    p50 = [float("nan") if p is None else p for p, _ in steps.values()]
    p99 = [float("nan") if p is None else p for _, p in steps.values()]
    latency.bar([x - 0.2 for x in at], p50, width=0.4, label="p50")
    latency.bar([x + 0.2 for x in at], p99, width=0.4, label="p99")
    latency.set_xticks(at, [n.replace(" -> ", "\n-> ") for n in names], fontsize="small")
    latency.set_xlim(-0.6, len(names) - 0.4)  # every slot in view, an empty one too
    latency.set_ylabel("latency, s")
    latency.set_title("latency percentiles", fontsize="medium")
    latency.legend(loc="upper left", fontsize="small")

    statuses = sorted(v.by_status)
    bars = outcome.bar(statuses, [v.by_status[s] for s in statuses], width=0.5)
    outcome.bar_label(bars)
    outcome.set_ylabel("dialogs")
    outcome.set_title("how the dialogs ended", fontsize="medium")
    fig.tight_layout()
    return fig


def write_chart(v: Verdict, path: str | Path) -> None:
    """Write the demo's chart (`demo_figure`) as a PNG."""
    save(demo_figure(v), path)
