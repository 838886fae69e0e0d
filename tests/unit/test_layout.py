"""The package's layout says what depends on what: no import circles between osum's modules (counting imports inside
functions too), and the model knows nothing of the task protocol (osum/model/ imports neither osum.tasks nor the
codec that turns tasks into token ids) nor of inference."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "osum"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the osum modules it imports anywhere in its code (``from a.b import c`` counts a.b.c when that is
    a module, else a.b)."""

    def known(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "osum":
                deps |= {known(f"{node.module}.{a.name}") for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {known(a.name) for a in node.names if a.name.split(".")[0] == "osum"}
        graph[name] = deps - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circles():
    graph = _imports(_modules())
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check itself


def test_the_model_does_not_know_the_task_protocol():
    graph = _imports(_modules())
    reached: set[str] = set()
    todo = [m for m in graph if m.startswith("osum.model")]
    while todo:  # everything osum/model/ imports, directly or through other modules
        m = todo.pop()
        if m not in reached:
            reached.add(m)
            todo += graph.get(m, ())
    forbidden = ("osum.tasks", "osum.codec", "osum.inference", "osum.api", "osum.serving", "osum.training")
    assert sorted(m for m in reached if m.startswith(forbidden)) == []
