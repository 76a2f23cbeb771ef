"""The repository stands on its own: no file in it points at notes or paths outside it."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# built from parts, so this file does not match itself
OUTSIDE = ("../" + "shared", "bitrix24-" + "api.md", "bitrix24-" + "v2.md", "DESIGN" + ".md")


def test_no_tracked_file_points_outside_the_repository() -> None:
    """Platform facts and design live in docs/ (bitrix24.md, design.md), not in notes elsewhere."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if not path.is_file() or path.suffix in (".png", ".ico", ".gz"):
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{name}: {needle}" for needle in OUTSIDE if needle in text]
    assert offenders == []
