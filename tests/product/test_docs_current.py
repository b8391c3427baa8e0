"""The diagrams in docs/ are what tools/render_diagrams.py draws from template.yaml and the state
machine definitions today: a change to either without `make docs` fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.fixtures import REPO_ROOT

ROOT = REPO_ROOT


def _renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_diagrams", ROOT / "tools" / "render_diagrams.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RENDERER = _renderer()
EXPECTED = RENDERER.expected_files()


@pytest.mark.parametrize("path", sorted(EXPECTED), ids=lambda p: p.name)
def test_diagram_is_current(path: Path) -> None:
    """Given the template and definitions, when the diagram is redrawn, then it equals the file."""
    assert path.exists(), f"{path.relative_to(ROOT)} missing: run make docs"
    assert path.read_text() == EXPECTED[path], f"{path.relative_to(ROOT)} is out of date: run make docs"


def test_every_state_machine_has_a_diagram() -> None:
    definitions = sorted((ROOT / "statemachines").rglob("*.asl.json"))
    drawn = [p for p in EXPECTED if p.name.startswith("statemachine-")]
    assert len(drawn) == len(definitions) >= 3


def test_every_state_appears_in_its_diagram() -> None:
    """Each state of each definition (nested Map/Parallel bodies included) is a node of its diagram."""
    import json

    def names(states: dict) -> set[str]:
        found = set(states)
        for state in states.values():
            body_of_map = state.get("ItemProcessor") or state.get("Iterator") or {}
            for body in [*state.get("Branches", []), body_of_map]:
                found |= names(body.get("States", {}))
        return found

    for path in sorted((ROOT / "statemachines").rglob("*.asl.json")):
        text = RENDERER.render_state_machine(path)
        for name in names(json.loads(path.read_text())["States"]):
            assert f'"{name}' in text, f"{name} of {path.name} not drawn"
