"""`orchestrator demo` as `make run` runs it: a bounded run ends by itself with exit code 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_with_ten_dialogs_agrees_with_the_portal_and_exits_zero(
    redis_url: str, tmp_path: Path
) -> None:
    """Ten simulated dialogs (every persona) reach a terminal state through the ingress and two
    worker processes; the summary agrees with the emulator's own state; exit code 0."""
    env = {**os.environ, "REDIS_URL": redis_url, "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "demo", "--dialogs", "10", "--timeout", "90"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=115,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "agrees with the portal" in done.stdout
    assert "dialogs ended in 'lead'" in done.stdout
    # the report's chart, beside the JSON, as the summary says
    assert "wrote demo.json and demo.png" in done.stdout
    assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
