"""Every report names the run behind it: the commit, the machine and the command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from harness.provenance import write_json


def test_a_written_report_carries_the_commit_machine_and_command(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    write_json(path, {"verdict": "pass"})
    report = json.loads(path.read_text("utf-8"))
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    run = report["run"]
    assert report["verdict"] == "pass"
    assert run["commit"] == (head or None)
    assert isinstance(run["uncommitted_changes"], bool) or run["commit"] is None
    assert run["cores"] >= 1
    assert run["python"].count(".") == 2
    assert run["command"].startswith("orchestrator ")
    assert run["written_at"].endswith("Z")


def test_a_report_that_already_names_its_run_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    write_json(path, {"run": {"commit": "recorded"}})
    assert json.loads(path.read_text("utf-8"))["run"] == {"commit": "recorded"}
