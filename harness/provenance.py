"""Where a report came from: the commit it ran on, the machine and the command line, written into
every JSON the tools produce so a figure in the README can be traced to the run behind it.
`write_json` is the one writer of those reports."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["provenance", "write_json"]

_ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=_ROOT, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None  # not a checkout (an installed copy): the report says so
    return done.stdout.strip()


def _cpu_model() -> str | None:
    """The CPU's model name on Linux (platform.processor() there is only the architecture)."""
    try:
        lines = Path("/proc/cpuinfo").read_text("utf-8").splitlines()
    except OSError:
        return None
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), None)


def provenance() -> dict[str, Any]:
    """The commit (and whether the tree had uncommitted changes), cores, CPU, Python, the
    command line and when the report was written."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(status) if status is not None else None,
        "cores": os.cpu_count(),
        "cpu": _cpu_model() or platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "command": "orchestrator " + shlex.join(sys.argv[1:]),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_json(path: str | Path, report: dict[str, Any]) -> None:
    """Write a tool's report with its provenance under "run"."""
    report.setdefault("run", provenance())
    Path(path).write_text(json.dumps(report, indent=2, default=str) + "\n", "utf-8")
