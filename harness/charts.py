"""What the tools' PNG charts share: matplotlib on its file-only backend, the windowed series
they plot (events per second, percentiles per window) and the one writer.

matplotlib comes with the `bench` extra (what `make` installs); it is imported only when a chart
is drawn, so the tools' commands start without it.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.demo.report import percentile

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "available",
    "percentile_series",
    "pyplot",
    "rate_series",
    "save",
    "subplots",
    "window_s",
]

DPI = 100


def available() -> bool:
    """matplotlib is installed (the `bench` extra)."""
    return importlib.util.find_spec("matplotlib") is not None


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend: the tools run in terminals and CI, with no
    display to open a window on, and only ever write files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def subplots(rows: int, cols: int, **kwargs: Any) -> tuple[Figure, list[Axes]]:
    """A figure and its axes, row by row (always a flat list, whatever the grid)."""
    fig, grid = pyplot().subplots(rows, cols, squeeze=False, **kwargs)
    return fig, [ax for row in grid for ax in row]


def window_s(span_s: float, windows: int = 30) -> float:
    """A window width that cuts a run of `span_s` seconds into about `windows` windows, never
    under a second (the samplers' resolution)."""
    return max(1.0, span_s / windows)


def rate_series(
    times: Sequence[float], width_s: float, end_s: float
) -> tuple[list[float], list[float]]:
    """Events per second in consecutive windows of `width_s` from 0 to `end_s`: each window's
    midpoint and rate (a window with no event is a 0, not a gap: nothing happened then)."""
    count = max(1, math.ceil(end_s / width_s))
    per_window = [0] * count
    for t in times:
        per_window[min(count - 1, max(0, int(t // width_s)))] += 1
    mids = [(i + 0.5) * width_s for i in range(count)]
    return mids, [n / width_s for n in per_window]


def percentile_series(
    points: Sequence[tuple[float, float]], width_s: float, quantiles: Sequence[float] = (50, 99)
) -> tuple[list[float], dict[float, list[float]]]:
    """(time, value) points grouped into windows of `width_s`: the midpoint of each window that
    has points, and each quantile of its values (a window without points is left out: a
    percentile of nothing is not a 0)."""
    windows: dict[int, list[float]] = {}
    for t, value in points:
        windows.setdefault(max(0, int(t // width_s)), []).append(value)
    keys = sorted(windows)
    series: dict[float, list[float]] = {q: [] for q in quantiles}
    for key in keys:
        for q in quantiles:
            found = percentile(windows[key], q)
            assert found is not None  # a window exists only with a value in it
            series[q].append(found)
    return [(k + 0.5) * width_s for k in keys], series


def save(fig: Figure, path: str | Path) -> None:
    """Write the figure as a PNG and free it (pyplot keeps every open figure alive)."""
    fig.savefig(path, dpi=DPI, format="png")
    pyplot().close(fig)
