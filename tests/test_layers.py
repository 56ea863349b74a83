"""The layers import downwards only: storage at the bottom, the collector and the query
layer above it (neither importing the other), the CLI on top."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The storage contract: what both the collector and the query layer may build on.
STORAGE = {
    "recorder.athena",
    "recorder.console",
    "recorder.errors",
    "recorder.schemas",
    "recorder.layout",
    "recorder.head",
    "recorder.root",
    "recorder.s3",
    "recorder.store",
    "recorder.lock",
    "recorder.views",
    "recorder.derive",
    "recorder.cache",
    "recorder.reader",
    "recorder.testhooks",
    "recorder.timeparse",
}


def imports(*, top_level_only: bool = False) -> dict[str, set[str]]:
    """Module -> the project modules it imports: anywhere in the file, or only at import
    time (top-level statements, so not a lazy import inside a function nor an
    `if TYPE_CHECKING:` block)."""
    graph: dict[str, set[str]] = {}
    for package in ("recorder", "queries"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found = set()
            tree = ast.parse(path.read_text())
            nodes = tree.body if top_level_only else ast.walk(tree)
            for node in nodes:
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    base = node.module
                    found |= {base} | {f"{base}.{a.name}" for a in node.names}
                elif isinstance(node, ast.Import):
                    found |= {a.name for a in node.names}
            graph[name] = {m for m in found if m.split(".")[0] in ("recorder", "queries")}
    known = set(graph)
    # An import of one's own parent package (`from recorder import layout` names
    # `recorder`, whose __init__ holds only the version) is not an edge.
    return {
        m: {i for i in deps if i in known and i != m and not m.startswith(i + ".")}
        for m, deps in graph.items()
    }


def test_no_module_imports_one_that_imports_it_back():
    graph = imports(top_level_only=True)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start] - seen:
            seen.add(nxt)
            if nxt == goal or reaches(nxt, goal, seen):
                return True
        return False

    cycles = [(a, b) for a in graph for b in graph[a] if reaches(b, a, set())]
    assert cycles == []


def test_recorder_and_queries_do_not_import_each_other():
    graph = imports()
    for module, deps in graph.items():
        if module.startswith("queries"):
            below = {d for d in deps if d.startswith("recorder")}
            assert below <= STORAGE | {"recorder"}, (module, below - STORAGE)
        elif not module.startswith("recorder.cli"):
            assert not {d for d in deps if d.startswith("queries")}, module


def test_the_storage_layer_imports_only_itself():
    graph = imports()
    for module in STORAGE:
        assert graph[module] <= STORAGE, (module, graph[module] - STORAGE)
