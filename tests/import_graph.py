"""The import graph of the repository's own packages, read with `ast`, and its cycles.

Every `import` / `from ... import` statement counts: at module level, inside functions and
classes, under `if TYPE_CHECKING:` and in `try` blocks. Each one is an edge from the importing
module to the in-repo module it names:

* `import a.b.c` -> `a.b.c` (the longest prefix that is an in-repo module);
* `from a.b import c` -> `a.b.c` when `c` is a module, else `a.b` (a name defined there);
* relative imports are resolved against the importing module's package first.

Importing `a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`; those implicit parent-package
imports are NOT edges, or every package whose `__init__` imports its own submodules would be a
cycle by construction. Imports of anything outside the given top-level packages are ignored.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from itertools import pairwise
from pathlib import Path

# importing module -> imported module -> line of the first statement importing it
ImportGraph = dict[str, dict[str, int]]


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module under the top-level `packages` of `root`, by dotted name (a package is its
    `__init__.py`)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _longest_known(name: str, known: Mapping[str, object]) -> str | None:
    """`name` itself or its longest prefix that is a known module; None when outside."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def _from_base(module: str, is_package: bool, node: ast.ImportFrom) -> str | None:
    """The absolute module a `from X import ...` names; None for a relative import that climbs
    out of the tree."""
    if node.level == 0:
        return node.module
    package = module.split(".") if is_package else module.split(".")[:-1]
    climb = node.level - 1
    if climb >= len(package):
        return None  # "attempted relative import beyond top-level package"
    base = package[: len(package) - climb]
    if node.module:
        base += node.module.split(".")
    return ".".join(base)


def imports_of(module: str, path: Path, known: Mapping[str, object]) -> Iterator[tuple[str, int]]:
    """(imported in-repo module, line) for every import statement anywhere in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _longest_known(alias.name, known)
                if target is not None:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(module, is_package, node)
            if base is None:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in known else _longest_known(base, known)
                if target is not None:
                    yield target, node.lineno


def build_graph(root: Path, packages: Iterable[str]) -> ImportGraph:
    """The import graph of every module under the top-level `packages` of `root`; edges only
    between those modules. Self-imports are kept (a module importing itself is a cycle too)."""
    known = module_files(root, packages)
    graph: ImportGraph = {name: {} for name in known}
    for module, path in known.items():
        for target, line in imports_of(module, path, known):
            graph[module].setdefault(target, line)
    return graph


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return sorted(components)


def _cycle_through(graph: Mapping[str, Iterable[str]], members: set[str], start: str) -> list[str]:
    """A shortest cycle from `start` back to it inside `members` (breadth-first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        next_frontier: list[str] = []
        for node in frontier:
            for succ in sorted(graph.get(node, ())):
                if succ not in members:
                    continue
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if succ not in previous:
                    previous[succ] = node
                    next_frontier.append(succ)
        frontier = next_frontier
    raise ValueError(f"{start} is on no cycle")


def cyclic_components(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components that hold a cycle: two or more modules, or one module
    that imports itself."""
    return [
        component
        for component in strongly_connected(graph)
        if len(component) > 1 or component[0] in graph.get(component[0], ())
    ]


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One shortest example cycle (`[a, b, ..., a]`) per cyclic component; empty when acyclic."""
    return [
        _cycle_through(graph, set(component), component[0])
        for component in cyclic_components(graph)
    ]


def describe_cycle(graph: ImportGraph, cycle: list[str]) -> str:
    """`a -> b (a:12) -> a (b:3)`: each hop with the line of the import that makes it."""
    hops = [cycle[0]]
    for source, target in pairwise(cycle):
        hops.append(f"{target} ({source}:{graph[source][target]})")
    return " -> ".join(hops)


def describe_cycles(graph: ImportGraph) -> str:
    """Each cyclic component: its members, one example cycle and every import inside it; empty
    when acyclic."""
    lines = []
    for component in cyclic_components(graph):
        cycle = _cycle_through(graph, set(component), component[0])
        lines.append(f"{len(component)} modules in a knot: {', '.join(component)}")
        lines.append(f"  e.g. {describe_cycle(graph, cycle)}")
        members = set(component)
        lines.extend(
            f"  {source} -> {target} (line {line})"
            for source in component
            for target, line in sorted(graph[source].items())
            if target in members
        )
    return "\n".join(lines)
