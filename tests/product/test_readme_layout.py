"""The README's layout table describes the tree as it is: every path it names exists, and every
top-level folder of the project and every area of the code has a row."""

from __future__ import annotations

import re
import subprocess

from tests.fixtures import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def _layout_rows() -> list[str]:
    section = README.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def _first_column_paths(row: str) -> list[str]:
    return re.findall(r"`([^`]+)`", row.split("|")[1])


def test_the_layout_table_has_rows() -> None:
    assert len(_layout_rows()) >= 10


def test_every_path_the_layout_table_names_exists() -> None:
    named = [path for row in _layout_rows() for path in _first_column_paths(row)]
    missing = [path for path in named if not (REPO_ROOT / path).exists()]
    assert missing == []


def test_every_top_level_folder_and_area_has_a_row() -> None:
    named = {path.rstrip("/") for row in _layout_rows() for path in _first_column_paths(row)}
    tops = {path.split("/")[0] for path in named}
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    folders = {path.split("/")[0] for path in tracked if "/" in path and not path.startswith(".")}
    assert folders - tops == set()
    for area in ("provisioning", "access", "monitoring"):
        assert f"functions/{area}" in named
        assert f"layers/shared/python/cvpn_shared/{area}" in named
        assert f"tests/{area}" in named
    assert "layers/shared/python/cvpn_shared/core" in named
