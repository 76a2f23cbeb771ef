"""The repository stands on its own: no file in it points at notes or paths outside it."""

from __future__ import annotations

import re
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


# a Markdown link to a file of ours, and a code span naming a path under a top-level folder
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
_PATH = re.compile(r"`((?:orchestrator|worker|emulator|harness|tests|docs|deploy)/[\w./-]+\.\w+)`")


def test_every_file_the_docs_cite_exists() -> None:
    """A guide that cites a file the repository does not have sends its reader nowhere."""
    tracked = subprocess.run(
        ["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    missing = []
    for name in tracked:
        doc = ROOT / name
        text = doc.read_text()
        for target in _LINK.findall(text):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                missing.append(f"{name}: ({target})")
        for target in _PATH.findall(text):
            if not (ROOT / target).exists() and not (doc.parent / target).exists():
                missing.append(f"{name}: `{target}`")
    assert missing == []
