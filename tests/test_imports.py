"""heliport's modules import each other without a cycle.

The graph is read from the source, not from ``sys.modules``: every module under ``shared/heliport`` is
parsed with :mod:`ast`, and every ``import`` statement anywhere in it is an edge, wherever it sits:
at the top, inside a function (the lazy imports that keep Starlette and pydantic off the proxy's hot
path), or under ``if TYPE_CHECKING:`` (a cycle that only the type checker walks is still two modules
that cannot be understood, or moved, one without the other). Relative imports are resolved against the
importing module, and ``from heliport.x import y`` is an edge to ``heliport.x.y`` when ``y`` is a
submodule, else to ``heliport.x``.

As in import-linter's graph, importing ``heliport.a.b`` is an edge to ``heliport.a.b`` only, not to the
packages ``heliport`` and ``heliport.a`` that Python initialises on the way: a package ``__init__``
that imports nothing would otherwise join every one of its modules in a false cycle, while a real one
(``__init__`` importing a submodule that imports a name from ``__init__``) is still seen, since that
name is not a submodule and the edge goes to the package itself.

Strongly connected components (Tarjan) are the cycles: a component of more than one module, or a
module importing itself. A failure names each component and prints one shortest cycle through it,
with the file and line of every import on the way.
"""

from __future__ import annotations

import ast
import itertools
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "heliport"
ROOT = Path(__file__).resolve().parent.parent / "shared" / PACKAGE


@dataclass(frozen=True, slots=True)
class Site:
    """Where an import is written: the file (relative to ``shared/``) and line."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


#: module -> imported module -> the first place the import is written.
Graph = Mapping[str, Mapping[str, Site]]


def module_files(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of ``package`` by its dotted name; a package is named by its ``__init__.py``."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((package, *parts))] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    # The package a relative import starts from: the module's own package, or itself for an __init__.
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 > len(base) - 1:
        raise ValueError(f"relative import beyond the top-level package in {module}")
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _owning_module(name: str, modules: Mapping[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of ``modules`` (``import heliport.a.b`` where only
    ``heliport.a`` exists), or None when ``name`` is not heliport's."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imported(module: str, path: Path, modules: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported heliport module, line) for every import statement anywhere in ``path``'s syntax tree."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):  # every statement: top level, function bodies, TYPE_CHECKING blocks, try
        if isinstance(node, ast.Import):
            for alias in node.names:
                owner = _owning_module(alias.name, modules)
                if owner is not None:
                    yield owner, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                source = _resolve_relative(module, _is_package(path), node.level, node.module)
            elif node.module is not None:
                source = node.module
            else:  # pragma: no cover - ``from import x`` is not Python
                continue
            owner = _owning_module(source, modules)
            if owner is None:
                continue
            for alias in node.names:
                # ``from heliport.api import app``: the submodule app, when there is one; else a name
                # defined in (or re-exported by) the module itself.
                submodule = f"{source}.{alias.name}"
                yield (submodule if alias.name != "*" and submodule in modules else owner), node.lineno


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, dict[str, Site]]:
    """module -> {imported module: first site}; every module is a key, importing anything or not."""
    modules = module_files(root, package)
    shared = root.parent
    graph: dict[str, dict[str, Site]] = {}
    for module, path in modules.items():
        edges: dict[str, Site] = {}
        for target, line in _imported(module, path, modules):
            site = Site(str(path.relative_to(shared)), line)
            if target not in edges or line < edges[target].line:
                edges[target] = site
        graph[module] = edges
    return graph


def strongly_connected_components(graph: Graph) -> list[list[str]]:
    """Tarjan's algorithm, iteratively (no recursion limit to meet); each component sorted, and the
    components in order of their first module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        # Each frame: a node and the iterator over its successors still to visit.
        work: list[tuple[str, Iterator[str]]] = []
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work.append((start, iter(sorted(graph.get(start, {})))))
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, {})))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
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


def cycles(graph: Graph) -> list[list[str]]:
    """The components that are cycles: more than one module, or one module importing itself."""
    return [
        component
        for component in strongly_connected_components(graph)
        if len(component) > 1 or component[0] in graph.get(component[0], {})
    ]


def shortest_cycle(graph: Graph, component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, staying inside the component (breadth
    first); the list starts and ends with that module."""
    start = component[0]
    members = set(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in sorted(graph.get(node, {})):
            if successor not in members:
                continue
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if successor not in came_from:
                came_from[successor] = node
                queue.append(successor)
    raise AssertionError(f"{component} is not a cycle")


def describe(graph: Graph, component: list[str]) -> str:
    cycle = shortest_cycle(graph, component)
    steps = "\n".join(f"    {a} -> {b}  ({graph[a][b]})" for a, b in itertools.pairwise(cycle))
    return f"  {len(component)} modules: {', '.join(component)}\n  shortest cycle:\n{steps}"


def test_heliport_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "heliport.api.app" in graph and "heliport.proxy.forward" in graph, "the package was not found"
    found = cycles(graph)
    report = "\n\n".join(describe(graph, component) for component in found)
    assert not found, f"{len(found)} import cycle(s) in heliport:\n\n{report}"


# --- the checker checks: small graphs with known answers ------------------------------------------


def test_components_and_cycles_of_known_graphs() -> None:
    graph = {
        "a": {"b": Site("a", 1)},
        "b": {"c": Site("b", 1)},
        "c": {"a": Site("c", 1), "d": Site("c", 2)},
        "d": {},
        "e": {"e": Site("e", 1)},
        "f": {"d": Site("f", 1)},
    }
    assert strongly_connected_components(graph) == [["a", "b", "c"], ["d"], ["e"], ["f"]]
    assert cycles(graph) == [["a", "b", "c"], ["e"]]
    assert shortest_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert shortest_cycle(graph, ["e"]) == ["e", "e"]
    assert cycles({"x": {"y": Site("x", 1)}, "y": {}}) == []


def test_every_kind_of_import_is_an_edge(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "import pkg.b\nfrom pkg import c\nfrom pkg.sub import d as dee\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub.d import Thing\n",
        "c.py": "def later() -> None:\n    from . import b\n    import os\n",
        "sub/__init__.py": "from .d import Thing\n",
        "sub/d.py": "from .. import a\nfrom ..c import later\nfrom pkg.sub import Thing\nimport pkg.sub.nothing\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    graph = import_graph(package, "pkg")
    edges = {module: sorted(targets) for module, targets in graph.items()}
    assert edges == {
        "pkg": [],
        "pkg.a": ["pkg.b", "pkg.c", "pkg.sub.d"],
        "pkg.b": ["pkg.sub.d"],  # under TYPE_CHECKING
        "pkg.c": ["pkg.b"],  # inside a function, relative
        "pkg.sub": ["pkg.sub.d"],  # relative, from an __init__
        # ``from pkg.sub import Thing``: a name, so the package; ``pkg.sub.nothing``: its longest module.
        "pkg.sub.d": ["pkg.a", "pkg.c", "pkg.sub"],
    }
    assert graph["pkg.b"]["pkg.sub.d"] == Site("pkg/b.py", 3)
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.sub", "pkg.sub.d"]]
