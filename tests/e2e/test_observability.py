"""Observability after a whole small demo: every metric the Grafana dashboard charts is exported by
the ingress or a worker, the logs are JSON with the dialog context bound, and no secret the
emulated portal ever issued appears in any log line of any process the demo started."""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from harness.demo.main import DemoOptions, play_on
from harness.demo.portal_setup import write_demo_scenario
from harness.demo.stack import StackOptions, run_stack
from orchestrator.settings import Settings
from tests.e2e.conftest import drop_arq_jobs

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboard.json"
# a PromQL identifier that names one of our series (ol_*), with the suffixes Prometheus adds
_METRIC = re.compile(r"\b(ol_[a-z0-9_]+)")
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


@dataclass
class DemoRun:
    """What one demo run left behind."""

    ok: bool
    problems: list[str]
    ingress_metrics: str
    worker_metrics: str
    secrets: dict[str, Any]
    logs: dict[str, str]  # file name -> content


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _families(exposition: str) -> dict[str, int]:
    """Metric family name -> number of samples, from a /metrics body."""
    return {f.name: len(f.samples) for f in text_string_to_metric_families(exposition)}


def _dashboard_metrics() -> set[str]:
    """Every ol_* metric family the dashboard's PromQL uses."""
    names: set[str] = set()
    for expr in _dashboard_exprs(json.loads(DASHBOARD.read_text())):
        for name in _METRIC.findall(expr):
            for suffix in _SUFFIXES:
                name = name.removesuffix(suffix)
            names.add(name)
    return names


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


async def _play(settings: Settings, log_dir: Path, worker_port: int) -> DemoRun:
    console = Console(file=io.StringIO(), width=120)
    # the default of a new deployment: our v2 bot in fetch mode, session events offline
    async with run_stack(settings, StackOptions(workers=1, log_dir=log_dir, bot="v2")) as stack:
        verdict = await play_on(stack, DemoOptions(dialogs=10, timeout_s=90.0), console)
        scraped = []
        for url in (f"{stack.ingress_url}/metrics", f"http://127.0.0.1:{worker_port}/metrics"):
            async with stack.http.get(url) as response:
                assert response.status == 200, url
                scraped.append(await response.text())
        async with stack.http.get(f"{stack.emu.url}/_emulator/secrets") as response:
            secrets = await response.json()
        await _forget(stack.redis, settings)
    # read after the stack stopped: the children have flushed and exited
    logs = await asyncio.to_thread(_read_logs, log_dir)
    return DemoRun(verdict.ok, verdict.problems, scraped[0], scraped[1], secrets, logs)


def _read_logs(log_dir: Path) -> dict[str, str]:
    return {p.name: p.read_text(errors="replace") for p in sorted(log_dir.iterdir())}


async def _forget(redis: aioredis.Redis, settings: Settings) -> None:
    await drop_arq_jobs(redis, settings.queue_name)
    async for key in redis.scan_iter(match=f"{settings.key_prefix}*", count=1000):
        await redis.delete(key)


@pytest.fixture(scope="module")
def demo_run(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """Ten demo dialogs through an ingress process and a worker process, with DEBUG JSON logs
    (one run shared by this module's tests)."""
    tmp = tmp_path_factory.mktemp("observability")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    worker_port = _free_port()
    settings = Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        queue_name=f"{prefix}:queue",
        scenario_path=write_demo_scenario(tmp / "scenario.yaml"),
        spool_dir=str(tmp / "spool"),
        log_format="json",
        log_level="DEBUG",
        worker_metrics_port=worker_port,
        lease_ms=2000,
        sweep_interval_s=0.5,
        shutdown_grace_s=2.0,
    )
    log_dir = tmp / "logs"
    log_dir.mkdir()
    return asyncio.run(_play(settings, log_dir, worker_port))


def test_dashboard_loads_with_its_six_rows_and_a_query_in_every_panel() -> None:
    """The dashboard is valid JSON: rows intake, queues & DLQ, dialogs, REST budget, latency,
    trust & durability, pulled events;
    every chart has at least one PromQL target on our metrics, and panel ids are unique."""
    dashboard = json.loads(DASHBOARD.read_text())
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == [
        "Intake",
        "Queues & DLQ",
        "Dialogs",
        "REST budget",
        "Latency",
        "Trust & durability",
        "Pulled events",
    ]
    charts = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert charts
    assert all(p["targets"] for p in charts)
    assert all(_METRIC.search(t["expr"]) for p in charts for t in p["targets"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_metric_the_dashboard_charts_is_on_the_ingress_or_a_worker_metrics(
    demo_run: DemoRun,
) -> None:
    """After ten demo dialogs, each ol_* name in the dashboard's PromQL is a metric family
    exported by the ingress's or the worker's /metrics, and the dialog path's metrics have
    samples (the instrumentation fired where the work happened)."""
    assert demo_run.ok, demo_run.problems
    ingress = _families(demo_run.ingress_metrics)
    worker = _families(demo_run.worker_metrics)
    exported = set(ingress) | set(worker)
    missing = sorted(_dashboard_metrics() - exported)
    assert not missing, f"charted but never exported: {missing}"
    for name in ("ol_events_in", "ol_ack_seconds", "ol_queue_depth"):
        assert ingress[name] > 0, name
    for name in (
        "ol_dialog_transitions",
        "ol_event_lag_seconds",
        "ol_job_seconds",
        "ol_effects",
        "ol_effect_seconds",
        "ol_handoffs",
        "ol_leads",
        "ol_votes",
        "ol_rest_calls",
        "ol_rest_requests",
        "ol_rest_request_seconds",
        "ol_queue_depth",
        "ol_fetch_polls",
        "ol_fetch_events",
        "ol_fetch_confirms",
        "ol_offline_rows",
    ):
        assert worker.get(name, 0) > 0, name


def _json_lines(demo_run: DemoRun) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for name, text in demo_run.logs.items():
        for line in text.splitlines():
            if line.strip():
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    pytest.fail(f"{name}: not a JSON log line: {line[:200]}")
    return lines


def test_worker_and_ingress_logs_are_json_with_the_dialog_context_bound(
    demo_run: DemoRun,
) -> None:
    """Every line the ingress and worker processes wrote is one JSON object, and the worker's
    lines carry member_id, chat_id, event_id (per event) and session_id (per effect)."""
    lines = _json_lines(demo_run)
    assert lines
    assert any({"member_id", "chat_id", "event_id"} <= line.keys() for line in lines)
    assert any(line.get("session_id") and "member_id" in line for line in lines)


def test_no_secret_the_portal_issued_appears_in_any_log_line(demo_run: DemoRun) -> None:
    """Access and refresh tokens (every one ever issued, bots' included), the application token,
    the app's client secret and the webhook codes: none appears in any process's log."""
    secrets = demo_run.secrets
    tokens = [
        *secrets["issued_tokens"],
        secrets["application_token"],
        secrets["client_secret"],
        *secrets["webhook_codes"],
    ]
    assert len(secrets["issued_tokens"]) >= 2  # the install pair at least
    assert all(len(t) >= 16 for t in tokens)  # long enough that a hit is never a coincidence
    for name, text in demo_run.logs.items():
        leaked = [t[:6] + "…" for t in tokens if t in text]
        assert not leaked, f"{name} leaks {leaked}"
