"""`orchestrator chaos` as a command: a short run under every kind of trouble keeps the
invariants (nothing acknowledged lost, no duplicate lead, no dialog stuck)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

REQUIRED = (
    "acknowledged",
    "handled",
    "lost",
    "duplicate_leads",
    "duplicate_messages",
    "stuck",
    "recovery_p99_s",
    "verdict",
    "faults_after_write",
    "redis_kills",
    "source",
)


def test_short_chaos_run_loses_nothing_doubles_no_lead_and_leaves_nothing_stuck(
    tmp_path: Path,
) -> None:
    """Forty dialogs on two portals while a worker is SIGKILLed every 2 s, Redis is SIGKILLed
    once (the ingresses spool meanwhile), one of the two ingresses is SIGKILLed while the portals
    post, the portals fail (500s, timeouts, HTML pages, and answers lost after the write) and
    tokens expire: exit code 0 with `verdict: pass`, the counts read off the portals' journals
    (lost, duplicate leads, duplicate messages, stuck all 0), and the trouble really happened."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "chaos",
            "--dialogs",
            "40",
            "--portals",
            "2",
            "--kill-every",
            "2",
            "--expire-every",
            "5",
            "--arrivals",
            "8",
            "--drain",
            "30",
            "--timeout",
            "85",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "chaos.json").read_text())
    assert all(key in report for key in REQUIRED), sorted(report)
    assert (report["verdict"], report["reasons"], report["source"]) == ("pass", [], "portal")
    counts = ("lost", "duplicate_leads", "duplicate_messages", "stuck")
    assert [report[k] for k in counts] == [0, 0, 0, 0]
    assert report["dialogs_not_started"] == 0  # the invariants cover all 40 dialogs
    assert report["acknowledged"] > 40 * 3  # several events per dialog
    assert report["acknowledged"] == report["handled"] + report["lost"]
    assert report["kills"] >= 2
    assert report["redis_kills"] == report["ingress_kills"] == 1
    assert report["faults_after_write"] > 0  # answers lost after the write, and coped with
    assert report["spooled_on_ack"] > 0  # events arrived while Redis was down
    assert report["token_refreshes"] > 0


def test_a_chaos_run_stopped_early_still_writes_its_report_with_a_failing_verdict(
    tmp_path: Path,
) -> None:
    """SIGTERM in the middle of a run: no bare traceback, exit non-zero, and chaos.json says
    what it saw so far, `"verdict": "fail"` and why."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "chaos",
            "--dialogs",
            "200",
            "--portals",
            "2",
            "--arrivals",
            "4",
            "--drain",
            "30",
            "--timeout",
            "120",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    report_path = tmp_path / "chaos.json"
    try:
        time.sleep(15)  # the stack is up and clients play by then (the phase is reported)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert "Traceback" not in err, err[-3000:]
    report = json.loads(report_path.read_text())
    assert report["verdict"] == "fail"
    assert "signal" in report["reasons"][0]
    assert report["phase"] in ("starting", "clients playing")
    assert report["dialogs"] == 200
