"""The tools' charts, drawn from small synthetic runs and read back from the figures: the bench's
ceilings and reply latency, the demo's throughput, latency percentiles and outcome mix; then
each written as a PNG that decodes to the figure's size."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from matplotlib.axes import Axes
from matplotlib.image import imread
from matplotlib.lines import Line2D

from harness.bench.e2e_render import chart, chart_figure
from harness.bench.e2e_watch import Sample
from harness.charts import pyplot, rate_series
from harness.demo.chart import REPLY_STEP, chart_path, demo_figure, write_chart
from harness.demo.report import Verdict

REPORT = {"true_ceiling_dialogs_per_s": 3.2, "ceiling_at_our_calls_dialogs_per_s": 2.5}


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    pyplot().close("all")


def _samples() -> list[Sample]:
    """20 s: 2 requests/s throughout, one dialog closed per second from t=5."""
    return [Sample(float(t), 2 * t, max(0, t - 5), 3, 1, 1) for t in range(21)]


def _replies() -> list[tuple[float, float]]:
    """Second 2: half the replies at 0.1 s, half at 3 s; second 10: ten at 0.5 s."""
    return [(2.2, 0.1)] * 50 + [(2.7, 3.0)] * 50 + [(10.4, 0.5)] * 10


def _line(ax: Axes, label_start: str) -> Line2D:
    [line] = [ln for ln in ax.get_lines() if str(ln.get_label()).startswith(label_start)]
    return line


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG, decoded whole (a truncated or corrupt file fails here)."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(path, format="png")
    return pixels.shape[1], pixels.shape[0]


def test_bench_chart_draws_both_ceilings_across_the_throughput() -> None:
    """A horizontal line at each ceiling's value, in view, beside the measured rates."""
    fig = chart_figure(REPORT, _samples(), _replies(), "bench e2e: 15 dialogs")
    top = fig.axes[0]
    for label, value in (("true ceiling", 3.2), ("ceiling at our calls", 2.5)):
        line = _line(top, label)
        assert list(line.get_ydata()) == [value, value], label
        assert f"{value:g} dialogs/s" in str(line.get_label())
        assert top.get_ylim()[0] <= value <= top.get_ylim()[1]
    closed = _line(top, "dialogs closed / s")
    assert max(closed.get_ydata()) == pytest.approx(1.0)  # one a second, as sampled
    requests = _line(top, "REST HTTP requests / s")
    assert list(requests.get_ydata())[1:] == pytest.approx([2.0] * 20)


def test_bench_chart_without_a_measured_ceiling_draws_none() -> None:
    """No dialog measured (the ceilings are None): no line pretends there is a ceiling."""
    report = dict.fromkeys(REPORT)
    fig = chart_figure(report, _samples(), [], "bench e2e: 0 dialogs")
    labels = [str(ln.get_label()) for ln in fig.axes[0].get_lines()]
    assert not [label for label in labels if "ceiling" in label]


def test_bench_chart_has_a_latency_panel_with_p50_and_p99_per_window() -> None:
    """The middle axes: every reply as a point, and p50/p99 of each 1 s window that had
    replies (the mixed second's p99 is its slow half, its p50 the fast one)."""
    fig = chart_figure(REPORT, _samples(), _replies(), "bench e2e: 15 dialogs")
    latency = fig.axes[1]
    assert "latency" in latency.get_ylabel()
    p50, p99 = _line(latency, "p50"), _line(latency, "p99")
    assert list(p50.get_xdata()) == [2.5, 10.5]
    assert list(p50.get_ydata()) == [0.1, 0.5]
    assert list(p99.get_ydata()) == [3.0, 0.5]
    [points] = latency.collections
    assert len(points.get_offsets()) == len(_replies())
    assert fig.axes[2].get_ylabel() == "queue depth"


def test_bench_chart_is_written_as_a_png_of_the_figure_size(tmp_path: Path) -> None:
    path = tmp_path / "bench-e2e.png"
    chart(REPORT, _samples(), _replies(), path, "bench e2e: 15 dialogs")
    assert _png_size(path) == (1000, 900)


def _verdict() -> Verdict:
    return Verdict(
        dialogs=9,
        by_status=Counter({"lead": 7, "closed": 2}),
        step_p50_s=0.4,
        step_p99_s=1.2,
        steps={"handoff -> accepted": (0.3, 0.9), "finished -> vote": (None, None)},
        elapsed_s=12.0,
        closed_at_s=[1.0, 1.5, 2.2, 3.0, 5.5, 6.1, 8.0, 11.2, 11.9],
        replies=[(0.5, 0.4), (2.0, 1.2)],
    )


def test_demo_chart_shows_throughput_latency_percentiles_and_outcome_mix() -> None:
    v = _verdict()
    fig = demo_figure(v)
    flow, latency, outcome = fig.axes
    assert fig.get_suptitle() == "Open Lines demo: 9 dialogs in 12 s (pass)"
    # throughput: every finished dialog is in some window, over the whole run
    finished = _line(flow, "dialogs finished / s")
    xs, rates = list(finished.get_xdata()), list(finished.get_ydata())
    width = xs[1] - xs[0]
    assert sum(r * width for r in rates) == pytest.approx(len(v.closed_at_s))
    assert xs[-1] + width / 2 >= v.elapsed_s
    # latency percentiles: a p50 and a p99 bar per step, nothing drawn where nothing was seen
    p50_bars, p99_bars = latency.containers
    assert [b.get_height() for b in p50_bars][:2] == [0.4, 0.3]
    assert [b.get_height() for b in p99_bars][:2] == [1.2, 0.9]
    assert math.isnan(p50_bars[2].get_height())
    assert math.isnan(p99_bars[2].get_height())
    ticks = [t.get_text().replace("\n", " ") for t in latency.get_xticklabels()]
    assert ticks == [REPLY_STEP, "handoff -> accepted", "finished -> vote"]
    assert latency.get_xlim()[1] > 2  # the empty slot is in view, not cut off at the edge
    assert latency.get_ylabel() == "latency, s"
    # outcome mix: one bar per final status, its height the count
    [bars] = outcome.containers
    assert [t.get_text() for t in outcome.get_xticklabels()] == ["closed", "lead"]
    assert [b.get_height() for b in bars] == [2, 7]


def test_demo_chart_goes_beside_the_json_and_is_a_png(tmp_path: Path) -> None:
    assert chart_path(tmp_path / "demo.json") == tmp_path / "demo.png"
    assert chart_path("runs/nightly") == Path("runs/nightly.png")
    path = chart_path(tmp_path / "demo.json")
    write_chart(_verdict(), path)
    assert _png_size(path) == (1500, 450)


def test_a_failed_run_still_charts(tmp_path: Path) -> None:
    """The demo stopped before any dialog finished: empty panels, FAIL in the title."""
    v = Verdict(dialogs=5, reasons=["did not finish: timed out"])
    fig = demo_figure(v)
    assert "(FAIL)" in fig.get_suptitle()
    assert sum(_line(fig.axes[0], "dialogs finished").get_ydata()) == 0
    write_chart(v, tmp_path / "demo.png")
    assert _png_size(tmp_path / "demo.png") == (1500, 450)


def test_rate_series_counts_each_event_once_in_its_window() -> None:
    mids, rates = rate_series([0.0, 0.4, 1.0, 2.9, 3.0], width_s=1.0, end_s=3.0)
    assert mids == [0.5, 1.5, 2.5]
    assert rates == [2.0, 1.0, 2.0]  # an event at the very end falls in the last window
