"""No import cycles in the command line, the local cloud or the shared layer: a module that needs
another's types takes them from a module both can import (``cvpn.common``, ``localcloud.stack``)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.fixtures import REPO_ROOT

PACKAGES = {
    "cvpn": REPO_ROOT / "cvpn",
    "localcloud": REPO_ROOT / "localcloud",
    "cvpn_shared": REPO_ROOT / "layers" / "shared" / "python" / "cvpn_shared",
}


def _modules() -> dict[str, Path]:
    found = {}
    for directory in PACKAGES.values():
        for path in directory.rglob("*.py"):
            parts = list(path.relative_to(directory.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports anywhere (functions and TYPE_CHECKING blocks too). ``from a
    import b`` names the module a.b when there is one, else a."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    targets.add(submodule if submodule in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_imports() -> None:
    graph = _import_graph()
    assert "cvpn.common" in graph["cvpn.cli"]
    assert "localcloud.stack" in graph["localcloud.gateway"]


def test_a_cycle_is_found_when_there_is_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_there_is_no_import_cycle() -> None:
    assert _cycles(_import_graph()) == []
