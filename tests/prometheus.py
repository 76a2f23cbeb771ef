"""A real Prometheus server for the tests, and the Grafana dashboard's queries made concrete.

The binary is Debian's `prometheus` package, unpacked under the venv by `make prometheus` (a
dependency of `make test`); PROMETHEUS_BIN points at another one. Each server gets its own port,
configuration and TSDB directory, and is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

__all__ = [
    "PROMETHEUS_ENV",
    "VENV_BINARY",
    "Panel",
    "PrometheusServer",
    "dashboard_panels",
    "declared",
    "find_binary",
    "has_finite_point",
    "metric_names",
    "run_prometheus",
]

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_ENV = "PROMETHEUS_BIN"
VENV_BINARY = ROOT / ".venv" / "prometheus" / "usr" / "bin" / "prometheus"
# a PromQL name of one of our series, and the suffixes a histogram's series add to its name
_METRIC = re.compile(r"\b(ol_[a-z0-9_]+)")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Grafana's $var and ${var} (and ${var:format}) in a query
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def find_binary() -> Path | None:
    """PROMETHEUS_BIN, else the one `make prometheus` unpacked, else one on PATH."""
    if configured := os.environ.get(PROMETHEUS_ENV):
        return Path(configured)
    if VENV_BINARY.is_file():
        return VENV_BINARY
    found = shutil.which("prometheus")
    return Path(found) if found else None


@dataclass
class Panel:
    """One dashboard panel and its queries with the Grafana variables filled in."""

    title: str
    exprs: list[str]


def dashboard_panels(dashboard: dict[str, Any], builtins: dict[str, str]) -> list[Panel]:
    """Every panel with queries (rows included, nested panels too), each `expr` with Grafana's
    variables replaced: `builtins` ($__rate_interval, ...) and the dashboard's own template
    variables at their default (with "All" selected: the variable's allValue). A variable neither
    knows raises, so a new dashboard variable cannot slip through as a literal `$name`."""
    values = dict(builtins)
    for var in dashboard.get("templating", {}).get("list", []):
        current = var.get("current", {}).get("value")
        if current == "$__all" or current == ["$__all"]:
            values[var["name"]] = var["allValue"]
        elif isinstance(current, str) and current:
            values[var["name"]] = current

    def fill(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"dashboard variable ${name} has no value for the test")
        return values[name]

    panels = []
    for panel in _walk(dashboard["panels"]):
        exprs = [_VARIABLE.sub(fill, t["expr"]) for t in panel.get("targets", []) if "expr" in t]
        if exprs:
            panels.append(Panel(str(panel.get("title", "?")), exprs))
    return panels


def _walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _walk(panel.get("panels", []))


def metric_names(expr: str) -> set[str]:
    """The ol_* metric names a query reads."""
    return set(_METRIC.findall(expr))


def declared(name: str, known: set[str]) -> bool:
    """`name` (a series name in a query) is one Prometheus's metadata lists: a counter's as it
    is (ol_x_total), a histogram's series under the histogram's name (ol_x for ol_x_bucket)."""
    return name in known or any(
        name.endswith(suffix) and name.removesuffix(suffix) in known
        for suffix in _HISTOGRAM_SUFFIXES
    )


def has_finite_point(result: list[dict[str, Any]]) -> bool:
    """A range query's matrix holds a number Grafana would draw (histogram_quantile over no
    observations gives NaN points: a series, but an empty chart)."""
    return any(math.isfinite(float(v)) for series in result for _, v in series.get("values", []))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PrometheusServer:
    """A running server: its HTTP API and its process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    async def _get(self, http: aiohttp.ClientSession, path: str, **params: str) -> Any:
        async with http.get(f"{self.url}{path}", params=params) as response:
            body = await response.json(content_type=None)
            if response.status != 200 or body.get("status") != "success":
                raise AssertionError(f"{path} {params}: HTTP {response.status} {body}")
            return body["data"]

    async def wait_ready(self, http: aiohttp.ClientSession, within_s: float = 30.0) -> None:
        """Until /-/ready answers 200 (the TSDB opened, the configuration loaded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                async with http.get(f"{self.url}/-/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if loop.time() > deadline:
                raise AssertionError(f"prometheus not ready within {within_s} s")
            await asyncio.sleep(0.2)

    async def targets_up(self, http: aiohttp.ClientSession) -> dict[str, str]:
        """Scrape URL -> health (up, down, unknown) of every active target."""
        data = await self._get(http, "/api/v1/targets", state="active")
        return {t["scrapeUrl"]: t["health"] for t in data["activeTargets"]}

    async def declared_names(self, http: aiohttp.ClientSession) -> set[str]:
        """Every metric name the scraped targets declared (# HELP / # TYPE), samples or not: a
        labelled counter nothing has incremented yet is known here, though it has no series."""
        data: dict[str, Any] = await self._get(http, "/api/v1/metadata")
        return set(data)

    async def query_range(
        self, http: aiohttp.ClientSession, expr: str, start: float, end: float, step_s: float
    ) -> list[dict[str, Any]]:
        """The matrix of `expr` over [start, end] (Unix seconds), as Grafana asks for a panel."""
        data = await self._get(
            http,
            "/api/v1/query_range",
            query=expr,
            start=f"{start:.3f}",
            end=f"{end:.3f}",
            step=str(step_s),  # the API takes a float of seconds
        )
        result: list[dict[str, Any]] = data["result"]
        return result


def _duration(seconds: float) -> str:
    """Prometheus's duration syntax takes no fractions: whole milliseconds."""
    return f"{round(seconds * 1000)}ms"


def _config(jobs: dict[str, list[str]], scrape_s: float) -> dict[str, Any]:
    """A scrape job per kind of process, each /metrics URL a target scraped every `scrape_s`."""
    configs = []
    for job, urls in jobs.items():
        parts = [urlsplit(url) for url in urls]
        if any(p.path != "/metrics" for p in parts):
            raise ValueError(f"{job}: not all /metrics URLs: {urls}")
        configs.append(
            {"job_name": job, "static_configs": [{"targets": [p.netloc for p in parts]}]}
        )
    return {
        "global": {"scrape_interval": _duration(scrape_s), "evaluation_interval": "1m"},
        "scrape_configs": configs,
    }


@contextmanager
def run_prometheus(
    binary: Path, jobs: dict[str, list[str]], workdir: Path, scrape_s: float = 1.0
) -> Iterator[PrometheusServer]:
    """A Prometheus scraping each job's /metrics URLs every `scrape_s` seconds, with its TSDB in
    `workdir`; stopped (SIGTERM, then SIGKILL) by its PID on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(json.dumps(_config(jobs, scrape_s), indent=2))  # JSON is valid YAML
    port = _free_port()
    log = workdir / "prometheus.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield PrometheusServer(f"http://127.0.0.1:{port}", process, log)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
