"""The import graph between the project's apps, checked against the declared layering.

    python scripts/app_graph.py [ROOT]

Reads every module of every app under ROOT (default: this repository), migrations left out, and every
import in it: module level, inside functions, under TYPE_CHECKING, and `import_module("...")` /
`import_string("...")` with a literal name. Prints the edges between apps with how many imports make
each, then exits non-zero if the graph has a cycle (naming it) or an edge goes up the layering (naming
the imports that make it). Tests, bench, docs and scripts are not apps and are not read.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Bottom to top: an app may import its own level and the levels below it, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("catalogue",),
    ("accounts",),
    ("usage",),
    ("operations",),
    ("knowledge",),
    ("tools",),
    ("responses",),
    ("gateway",),
    ("conversations",),
    ("api",),
    ("chatsite",),
)

# Top-level packages that are not apps: nothing imports them, and their imports are not the apps' graph.
NOT_APPS = {"tests", "bench", "docs", "scripts"}
SKIPPED_DIRS = {"migrations", "__pycache__"}
DYNAMIC_IMPORTERS = {"import_module", "import_string"}


@dataclass
class Graph:
    """Edges between apps, each with the places (path:line) of the imports that make it."""

    places: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, source: str, target: str, place: str) -> None:
        if source != target:
            self.places[(source, target)].append(place)

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        return Counter({edge: len(found) for edge, found in self.places.items()})


def level_of(layers: Sequence[Sequence[str]]) -> dict[str, int]:
    return {app: index for index, level in enumerate(layers) for app in level}


def _imported_names(node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        yield node.module
    elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in DYNAMIC_IMPORTERS and isinstance(node.args[0].value, str):
            yield node.args[0].value


def app_modules(root: Path, apps: Iterable[str]) -> Iterator[tuple[str, Path]]:
    for app in apps:
        package = root / app
        if not package.is_dir():
            continue
        for path in sorted(package.rglob("*.py")):
            if not SKIPPED_DIRS.intersection(path.relative_to(package).parts):
                yield app, path


def build(root: Path, layers: Sequence[Sequence[str]] = LAYERS) -> Graph:
    apps = level_of(layers)
    graph = Graph()
    for app, path in app_modules(root, apps):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            for name in _imported_names(node):
                target = name.partition(".")[0]
                if target in apps:
                    graph.add(app, target, f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}")
    return graph


def find_cycle(edges: Iterable[tuple[str, str]]) -> list[str] | None:
    """One cycle as a closed path [a, b, ..., a], or None when the graph is acyclic."""
    successors: dict[str, list[str]] = defaultdict(list)
    for source, target in sorted(edges):
        successors[source].append(target)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in successors[node]:
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(successors):
        if start not in state and (found := visit(start)):
            return found
    return None


def tangles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The groups of apps that all reach each other (strongly connected, more than one app)."""
    successors: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        successors[source].add(target)

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in successors[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    reached = {app: reach(app) for app in list(successors)}
    groups = {frozenset(a for a in reached if a in reached[app] and app in reached[a]) for app in reached}
    return sorted(sorted(group) for group in groups if len(group) > 1)


def upward(edges: Iterable[tuple[str, str]], layers: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """The edges from an app to one on a higher level."""
    level = level_of(layers)
    return sorted((source, target) for source, target in edges if level[target] > level[source])


def undeclared(root: Path, layers: Sequence[Sequence[str]] = LAYERS) -> list[str]:
    """Top-level packages under root that are neither in the layering nor known not to be apps."""
    packages = {init.parent.name for init in root.glob("*/__init__.py")}
    return sorted(packages - set(level_of(layers)) - NOT_APPS)


def problems(graph: Graph, layers: Sequence[Sequence[str]] = LAYERS, root: Path | None = None) -> list[str]:
    found = [f"not in the layering: {app} (add it to LAYERS)" for app in (undeclared(root, layers) if root else [])]
    if cycle := find_cycle(graph.places):
        found.append("cycle: " + " -> ".join(cycle))
        found.extend(f"apps that reach each other: {', '.join(group)}" for group in tangles(graph.places))
    for source, target in upward(graph.places, layers):
        where = ", ".join(graph.places[(source, target)])
        found.append(f"upward edge: {source} -> {target} ({where})")
    return found


def describe(graph: Graph, layers: Sequence[Sequence[str]] = LAYERS) -> str:
    level = level_of(layers)
    counts = graph.counts
    ordered = sorted(counts, key=lambda edge: (-level[edge[0]], -level[edge[1]]))
    lines = ["layering, bottom to top: " + " -> ".join("+".join(apps) for apps in layers)]
    lines.append(f"{len(counts)} edges, {sum(counts.values())} imports:")
    lines.extend(f"  {source:>13} -> {target:<13} {counts[(source, target)]:>4}" for source, target in ordered)
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    root = Path(argv[0]).resolve() if argv else Path(__file__).resolve().parent.parent
    graph = build(root)
    print(describe(graph))
    found = problems(graph, root=root)
    for problem in found:
        print(problem, file=sys.stderr)
    if not found:
        print("acyclic, nothing imports upward")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
