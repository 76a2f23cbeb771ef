"""`orchestrator demo` as `make run` runs it: a bounded run ends by itself with exit code 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.demo.actors import Persona

ROOT = Path(__file__).resolve().parents[2]


def test_demo_with_ten_dialogs_agrees_with_the_portal_and_exits_zero(
    redis_url: str, tmp_path: Path
) -> None:
    """Thirteen simulated dialogs (every persona, the assistant desk's three among them: buttons,
    an edited e-mail, the contact center's answerer) reach a terminal state through the ingress
    and two worker processes; the summary agrees with the emulator's own state; exit code 0."""
    env = {**os.environ, "REDIS_URL": redis_url, "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "demo", "--dialogs", "13", "--timeout", "90"],
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
    report = json.loads((tmp_path / "demo.json").read_text())
    for persona in Persona:  # every persona's dialogs, the new ones' too, ended in a lead
        assert set(report["persona_ends"][persona.value]) == {"lead"}, persona
    assert report["duplicate_messages"] == 0
    assert report["answerer"]["asked"] >= 1
    assert "clients who use the buttons" in done.stdout
