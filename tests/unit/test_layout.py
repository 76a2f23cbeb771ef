"""The layout is the architecture, and it stays that way: the product's packages by concept,
no import cycle, the product importing no tool, modules under 400 lines, package facades with a
sorted and complete `__all__`, and one reader of effect ids."""

from __future__ import annotations

import importlib
import pkgutil
import re
import types
from pathlib import Path

import pytest

from tests.import_graph import build_graph, describe_cycles, find_cycles

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("orchestrator", "worker", "emulator", "harness")
# `ls orchestrator/`: one entry per concept (README, "Map of the code")
PRODUCT = {
    "__init__.py",
    "settings.py",
    "errors.py",
    "observe",
    "dialog",
    "events",
    "pipeline",
    "ingress",
    "handler",
    "bitrix",
    "redis",
    "cli",
}
MAX_LINES = 400


def _isort_key(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_the_product_package_is_one_entry_per_concept() -> None:
    """`ls orchestrator/` shows at most 12 entries, exactly the concepts the README maps."""
    entries = {p.name for p in (ROOT / "orchestrator").iterdir() if p.name != "__pycache__"}
    assert entries == PRODUCT
    assert len(entries) <= 12


def test_no_module_is_longer_than_400_lines() -> None:
    """Past ~400 lines a module splits along a real seam."""
    long = {
        str(path.relative_to(ROOT)): n
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_there_is_no_import_cycle_anywhere() -> None:
    """Counting every import statement (module level, in functions, under TYPE_CHECKING)."""
    graph = build_graph(ROOT, PACKAGES)
    assert not find_cycles(graph), describe_cycles(graph)


def test_the_product_imports_no_tool() -> None:
    """Nothing under orchestrator/ imports worker, emulator or harness (the CLI finds the tools
    by name at run time, see orchestrator/cli/lazy.py)."""
    graph = build_graph(ROOT, PACKAGES)
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.split(".")[0] == "orchestrator"
        for target in targets
        if target.split(".")[0] in ("worker", "emulator", "harness")
    )
    assert wrong == []


def test_the_dialog_knows_no_wire_model() -> None:
    """dialog/ imports nothing of events/ (the conversion lives there, done at the ingress)."""
    graph = build_graph(ROOT, PACKAGES)
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.startswith("orchestrator.dialog")
        for target in targets
        if not target.startswith("orchestrator.dialog") and target != "orchestrator.errors"
    )
    assert wrong == []


def _packages() -> list[str]:
    found = []
    for top in ("orchestrator", "worker", "harness"):
        module = importlib.import_module(top)
        found.append(top)
        found += [
            info.name
            for info in pkgutil.walk_packages(module.__path__, prefix=f"{top}.")
            if info.ispkg
        ]
    return found


@pytest.mark.parametrize("name", _packages())
def test_each_package_exports_a_sorted_and_complete_all(name: str) -> None:
    """`__all__` is sorted (constants, classes, functions), every name in it exists, and every
    public name the package's `__init__` brings in is in it."""
    package = importlib.import_module(name)
    exported = list(getattr(package, "__all__", None) or [])
    assert "__all__" in vars(package), f"{name} has no __all__"
    assert exported == sorted(exported, key=_isort_key)
    assert all(hasattr(package, n) for n in exported)
    public = {
        n
        for n, value in vars(package).items()
        if not n.startswith("_") and not isinstance(value, types.ModuleType) and n != "annotations"
    }
    assert public <= set(exported), sorted(public - set(exported))


def test_effect_ids_are_read_in_one_place() -> None:
    """No string parsing of effect ids outside `EffectId.parse` (dialog/effects.py)."""
    parser = re.compile(r"""rsplit\(\s*["']:["']\s*,\s*4\s*\)""")
    found = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if parser.search(path.read_text())
    ]
    assert found == ["orchestrator/dialog/effects.py"]


def test_the_readme_maps_every_package() -> None:
    """The README's map of the code has one line per package of the tree, and no stale one."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("### Map of the code") :].split("\n## ")[0]
    mapped = set(re.findall(r"^\| `([^`]+)`", table, re.M))
    product = {
        f"orchestrator/{p.name}/" if p.is_dir() else f"orchestrator/{p.name}"
        for p in (ROOT / "orchestrator").iterdir()
        if p.name not in ("__pycache__", "__init__.py")
    }
    tops = {"worker/", "emulator/", "harness/", "tests/", "deploy/", "docs/"}
    assert product | tops <= mapped
    assert all((ROOT / m.rstrip("/")).exists() for m in mapped)
