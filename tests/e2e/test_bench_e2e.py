"""`orchestrator bench e2e` as a command: a small run writes its JSON report and its chart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REQUIRED = (
    "dialogs",
    "dialogs_per_s",
    "calls_per_dialog",
    "necessary_calls_per_dialog",
    "true_ceiling_dialogs_per_s",
    "dialogs_vs_true_ceiling",
    "request_ratio",
    "status_503",
    "p99_ms",
    "polling_busy",
    "polling_idle",
    "verdict",
    "source",
)


def test_bench_e2e_writes_the_report_keys_and_the_chart(redis_url: str, tmp_path: Path) -> None:
    """Thirty dialogs through the ingress and a worker process: bench-e2e.json holds the keys
    the issue names (with the ceiling's formula and the calls per dialog) and bench-e2e.png is a
    PNG; no timing is asserted."""
    env = {**os.environ, "REDIS_URL": redis_url, "COLUMNS": "140"}
    done = _run_bounded(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "bench",
            "e2e",
            "--dialogs",
            "30",
            "--workers",
            "1",
            "--arrivals",
            "10",
            "--timeout",
            "90",
            "--idle",
            "5",
            "--light",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        timeout_s=110,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "bench-e2e.json").read_text())
    assert all(key in report for key in REQUIRED), sorted(report)
    assert report["dialogs"] == 30
    assert report["bot"] == "v2"  # the default: our fetch-mode bot
    busy = report["polling_busy"]
    assert busy["polling_requests"] + busy["polls_in_batches"] >= 1  # it polled, and says so
    assert 0 <= report["polling_idle"]["budget_share_polling"] <= 1
    assert (report["verdict"], report["reasons"], report["source"]) == ("pass", [], "portal")
    counts = ("lost", "duplicate_leads", "duplicate_messages", "stuck", "disagreements")
    assert [report[k] for k in counts] == [0, 0, 0, 0, 0]
    # what the dialogs needed, read off the portal's journal, never exceeds what we called
    assert 0 < report["necessary_calls_per_dialog"] <= report["calls_per_dialog"]
    assert "necessary_calls_per_dialog" in report["ceiling_formula"]
    ceiling = report["drain_per_s"] * 50 / report["necessary_calls_per_dialog"]
    assert report["true_ceiling_dialogs_per_s"] == pytest.approx(ceiling, rel=0.01)
    assert report["necessary_reads"] == [
        "read: imopenlines.session.history.get (the client's vote)"
    ]
    assert set(report["steps"]) == {
        "client_message_to_bot_reply",
        "handoff_to_accepted",
        "finish_to_vote_saved",
        "finish_to_lead_created",
    }
    light = report["light"]  # one dialog after the warm-up, on a stack of its own
    assert (light["dialogs"], light["failed"]) == (1, 0)
    assert 0 < report["light_reply_p50_ms"] <= report["light_reply_p99_ms"]
    assert (tmp_path / "bench-e2e.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_e2e_with_a_contact_centers_answerer(redis_url: str, tmp_path: Path) -> None:
    """`--answerer http`: the demo's answerer service decides on every line; the report says
    what it was asked, and the run still loses nothing and ends every dialog in a lead."""
    env = {**os.environ, "REDIS_URL": redis_url, "COLUMNS": "140"}
    argv = [sys.executable, "-m", "orchestrator.cli", "bench", "e2e", "--answerer", "http"]
    argv += ["--dialogs", "10", "--workers", "1", "--timeout", "90", "--idle", "1", "--light", "0"]
    done = _run_bounded(argv, cwd=tmp_path, env=env, timeout_s=110)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "bench-e2e.json").read_text())
    assert report["answerer"]["kind"] == "http"
    assert report["answerer"]["asked"] >= 5  # the first message of every talking client
    assert sum(report["answerer"]["by_action"].values()) == report["answerer"]["asked"]
    assert (report["verdict"], report["lost"], report["duplicate_messages"]) == ("pass", 0, 0)
    assert "answerer service (every line)" in done.stdout


def _run_bounded(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout_s: float
) -> subprocess.CompletedProcess[str]:
    """Run the command in a session of its own; past the bound, kill the whole session (the
    bench's ingress and workers too, which a plain timeout would leave running) and fail."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"bench e2e ran past {timeout_s} s:\n{out[-3000:]}{err[-3000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)
