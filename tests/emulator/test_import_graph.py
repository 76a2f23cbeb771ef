"""No import cycle in emulator/, counting every import statement: module level, inside
functions, under `if TYPE_CHECKING:`. Plus the graph helper's own reading of each import form."""

from __future__ import annotations

from pathlib import Path

from tests.import_graph import build_graph, describe_cycles, find_cycles

ROOT = Path(__file__).resolve().parents[2]


def test_emulator_has_no_import_cycle() -> None:
    graph = build_graph(ROOT, ["emulator"])
    assert "emulator.portal" in graph  # the tree was found
    cycles = describe_cycles(graph)
    assert not cycles, f"import cycles in emulator/:\n{cycles}"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_graph_counts_every_import_form(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from . import a\n",
            "pkg/a.py": "import pkg.b\nimport os\n",
            "pkg/b.py": "import typing\nif typing.TYPE_CHECKING:\n    from pkg.c import X\n",
            "pkg/c.py": "def f():\n    from .sub import d\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/d.py": "class K:\n    def m(self):\n        from ..a import name\n",
            "pkg/sub/e.py": "from .. import b\nfrom pkg.sub import helper\nimport other.thing\n",
            "pkg/f.py": "from ..pkg import a\n",  # climbs above the top: no such module
            "other/thing.py": "import pkg.a\n",
        },
    )
    graph = build_graph(tmp_path, ["pkg"])
    assert graph == {
        "pkg": {"pkg.a": 1},
        "pkg.a": {"pkg.b": 1},
        "pkg.b": {"pkg.c": 3},
        "pkg.c": {"pkg.sub.d": 2},
        "pkg.sub": {},
        "pkg.sub.d": {"pkg.a": 3},
        "pkg.sub.e": {"pkg.b": 1, "pkg.sub": 2},
        "pkg.f": {},
    }
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.sub.d", "pkg.a"]]
    report = describe_cycles(graph)
    assert "pkg.a -> pkg.b (pkg.a:1) -> pkg.c (pkg.b:3)" in report
    assert "pkg.sub.d -> pkg.a (line 3)" in report


def test_graph_spans_the_packages_it_is_given(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "one/__init__.py": "",
            "one/x.py": "from two.y import f\n",
            "two/__init__.py": "",
            "two/y.py": "import one.x as x\n",
            "two/self.py": "from two import self\n",
        },
    )
    assert find_cycles(build_graph(tmp_path, ["one"])) == []
    both = build_graph(tmp_path, ["one", "two"])
    assert find_cycles(both) == [["one.x", "two.y", "one.x"], ["two.self", "two.self"]]
