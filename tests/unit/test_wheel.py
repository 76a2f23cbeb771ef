"""The product wheel carries the product (orchestrator, worker, and the emulator its
`orchestrator emulator` command runs) with its data files, and no proving tool: the harness and
the tests stay in the source tree. Without them the CLI still runs and says why a tool cannot."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orchestrator.cli.lazy import tool

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The files of the wheel built from a copy of the tracked tree (no build isolation)."""
    tree = tmp_path_factory.mktemp("tree")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in tracked:
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            ".",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        cwd=tree,
        check=True,
        capture_output=True,
    )
    [wheel] = out.glob("*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_the_wheel_carries_the_product_and_no_proving_tool(wheel_names: list[str]) -> None:
    """Top-level packages are orchestrator, worker and emulator; no harness, no tests."""
    tops = {name.split("/")[0] for name in wheel_names if not name.endswith(".dist-info/")}
    assert {t for t in tops if not t.endswith(".dist-info")} == {
        "orchestrator",
        "worker",
        "emulator",
    }
    assert not [n for n in wheel_names if n.startswith(("harness/", "tests/"))]


def test_the_wheel_carries_the_data_files(wheel_names: list[str]) -> None:
    """The shipped scenario and every Lua script (the pipeline's and the rate limiter's)."""
    assert "orchestrator/dialog/scenarios/default.yaml" in wheel_names
    for lua in (ROOT / "orchestrator").rglob("*.lua"):
        assert str(lua.relative_to(ROOT)) in wheel_names


def test_a_tool_that_is_not_installed_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """`orchestrator demo` without the harness: the command exists, exits 2 and says why."""
    parser = argparse.ArgumentParser(prog="orchestrator")
    sub = parser.add_subparsers(dest="command", required=True)
    tool(sub, "demo", "the demo", "harness_not_here.demo:add_arguments", "x.y:cli_main")
    args = parser.parse_args(["demo", "--dialogs", "10"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "orchestrator demo" in err
    assert "harness_not_here.demo" in err
    assert "pip install -e" in err
