"""`orchestrator chaos` as a command: a short run under every kind of trouble keeps the
invariants (nothing acknowledged lost, no duplicate lead, no dialog stuck)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REQUIRED = (
    "acknowledged",
    "handled",
    "lost",
    "duplicate_leads",
    "duplicate_messages",
    "stuck",
    "recovery_p99_s",
)


def test_short_chaos_run_loses_nothing_doubles_no_lead_and_leaves_nothing_stuck(
    tmp_path: Path,
) -> None:
    """Forty dialogs on two portals while a worker is SIGKILLed every 2 s, Redis restarts once
    (the ingress spools meanwhile), the portals fail (500s, timeouts, HTML pages) and tokens
    expire: exit code 0, chaos.json accounts for every acknowledged event with lost = 0,
    duplicate leads = 0, stuck = 0, and the trouble really happened."""
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
    assert (report["lost"], report["duplicate_leads"], report["stuck"]) == (0, 0, 0)
    assert report["dialogs_not_started"] == 0  # the invariants cover all 40 dialogs
    assert report["acknowledged"] > 40 * 3  # several events per dialog
    assert report["acknowledged"] == (
        report["handled"] + report["queued"] + report["still_spooled"] + report["lost"]
    )
    assert report["kills"] >= 2
    assert report["redis_down_s"] > 0
    assert report["spooled_on_ack"] > 0  # events arrived while Redis was down
    assert report["token_refreshes"] > 0
