"""The Grafana dashboard against a real Prometheus: a server scrapes the ingress and every worker
of a demo run, and every panel's queries, asked the way Grafana asks them over the run, draw
something. A panel showing "No data" on a healthy run is a broken panel (a renamed metric, a
wrong label, a series that only exists once something goes wrong)."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from rich.console import Console

from harness.demo.main import DemoOptions, play_on
from harness.demo.portal_setup import write_demo_scenario
from harness.demo.stack import Stack, StackOptions, run_stack
from orchestrator.settings import Settings
from tests.e2e.conftest import drop_arq_jobs
from tests.prometheus import (
    PROMETHEUS_ENV,
    Panel,
    PrometheusServer,
    dashboard_panels,
    declared,
    find_binary,
    has_finite_point,
    metric_names,
    run_prometheus,
)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboard.json"
SCRAPE_S = 1.0
WORKERS = 2
# What Grafana puts in for its built-in variables on a panel queried at a step of one scrape
# interval: $__interval is the step, $__rate_interval max(step + scrape, 4 × scrape).
BUILTINS = {"__interval": f"{int(SCRAPE_S)}s", "__rate_interval": f"{int(4 * SCRAPE_S)}s"}


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports (worker i takes base + i)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base: int = sock.getsockname()[1]
        if base + count <= 65536 and all(_port_free(p) for p in range(base, base + count)):
            return base
    raise AssertionError(f"no {count} consecutive free ports")


async def _wait_scraped(
    prometheus: PrometheusServer, http: aiohttp.ClientSession, urls: list[str], within_s: float
) -> None:
    """Until every target was scraped successfully at least once."""
    deadline = time.monotonic() + within_s
    while True:
        health = await prometheus.targets_up(http)
        if set(urls) <= set(health) and all(health[u] == "up" for u in urls):
            return
        assert time.monotonic() < deadline, f"targets not all up within {within_s} s: {health}"
        await asyncio.sleep(0.25)


def test_dashboard_variables_are_all_filled() -> None:
    """Every query of the dashboard becomes concrete PromQL: no `$variable` is left for
    Prometheus to choke on, and the dashboard has panels to check at all."""
    panels = dashboard_panels(json.loads(DASHBOARD.read_text()), BUILTINS)
    assert len(panels) >= 20, [p.title for p in panels]
    assert all("$" not in expr for p in panels for expr in p.exprs)
    with pytest.raises(KeyError, match="__rate_interval"):
        dashboard_panels(json.loads(DASHBOARD.read_text()), {})


def test_a_query_names_only_metrics_prometheus_was_told_of() -> None:
    """A histogram's series count under the histogram's name, a counter's under its own; a
    misspelt name is not declared."""
    known = {"ol_ack_seconds", "ol_events_in_total"}
    names = metric_names(
        "histogram_quantile(0.5, rate(ol_ack_seconds_bucket[4s])) + on() "
        'sum(ol_events_in_total{event="x"}) + ol_events_lost_total'
    )
    assert names == {"ol_ack_seconds_bucket", "ol_events_in_total", "ol_events_lost_total"}
    assert [declared(n, known) for n in sorted(names)] == [True, True, False]
    assert not declared("ol_ack_second_bucket", known)


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_every_dashboard_panel_draws_data_from_a_demo_run(
    redis_url: str, tmp_path: Path
) -> None:
    """Thirty demo dialogs through an ingress and two worker processes, each /metrics scraped
    every second by Prometheus; then every panel's queries over the run (query_range at a 1 s
    step, as Grafana asks): every query is valid PromQL, names only metrics the scraped
    processes declare, and each panel draws at least one finite point."""
    binary = find_binary()
    if binary is None:
        pytest.skip(f"no Prometheus binary: run `make prometheus` or set {PROMETHEUS_ENV}")
    panels = dashboard_panels(json.loads(DASHBOARD.read_text()), BUILTINS)
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        queue_name=f"{prefix}:queue",
        scenario_path=write_demo_scenario(tmp_path / "scenario.yaml"),
        spool_dir=str(tmp_path / "spool"),
        log_level="WARNING",
        worker_metrics_port=_free_ports(WORKERS),
        lease_ms=2000,
        sweep_interval_s=0.5,
        shutdown_grace_s=2.0,
    )
    opts = StackOptions(workers=WORKERS, log_dir=tmp_path / "logs", bot="v2")
    async with run_stack(settings, opts) as stack:
        try:
            undeclared, empty = await _scrape_a_demo(binary, stack, panels, tmp_path)
        finally:
            await drop_arq_jobs(stack.redis, settings.queue_name)
            await _forget(stack.redis, prefix)
    # a query can only chart a metric some process exports (a `... or on() vector(0)` panel
    # would draw its zero line over a misspelt name)
    assert not undeclared, "metrics no scraped process declares:\n" + "\n".join(undeclared)
    assert not empty, "panels without data:\n" + "\n".join(empty)


async def _scrape_a_demo(
    binary: Path, stack: Stack, panels: list[Panel], tmp_path: Path
) -> tuple[list[str], list[str]]:
    """Prometheus scrapes the stack's processes while thirty demo dialogs play; then the
    metric names the panels use that no process declared, and the panels without data."""
    jobs = {
        "ingress": [f"{url}/metrics" for url in stack.ingress_urls],
        "worker": stack.worker_metrics_urls,
    }
    assert len(jobs["worker"]) == WORKERS
    console = Console(file=io.StringIO(), width=120)
    with run_prometheus(binary, jobs, tmp_path / "prometheus", SCRAPE_S) as prometheus:
        await prometheus.wait_ready(stack.http)
        await _wait_scraped(prometheus, stack.http, [*jobs["ingress"], *jobs["worker"]], 30)
        started = time.time()
        verdict = await play_on(stack, DemoOptions(dialogs=30, timeout_s=90.0), console)
        assert verdict.ok, (verdict.reasons, verdict.problems[:5])
        await asyncio.sleep(3 * SCRAPE_S)  # the last counts scraped
        ended = time.time()
        known = await prometheus.declared_names(stack.http)
        undeclared = sorted(
            f"{panel.title!r}: {name}"
            for panel in panels
            for expr in panel.exprs
            for name in metric_names(expr)
            if not declared(name, known)
        )
        empty: list[str] = []
        for panel in panels:
            results = [
                await prometheus.query_range(stack.http, expr, started, ended, SCRAPE_S)
                for expr in panel.exprs
            ]
            if not any(has_finite_point(r) for r in results):
                empty.append(f"{panel.title!r}: " + " | ".join(panel.exprs))
    return undeclared, empty


async def _forget(redis: aioredis.Redis, prefix: str) -> None:
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        await redis.delete(key)
