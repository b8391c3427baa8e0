"""Deployment packages are extracted safely, once per content hash."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from localcloud.lambdaruntime import extract_cached, extract_zip


def _zip(entries: dict[str, tuple[str, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, (text, mode) in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, text)
    return buffer.getvalue()


def test_extract_zip_keeps_files_and_executable_bits(tmp_path: Path) -> None:
    """Files land under the destination with their stored permissions."""
    archive = _zip({"app.py": ("x = 1\n", 0o644), "bin/tool": ("#!/bin/sh\n", 0o755)})

    root = extract_zip(archive, tmp_path / "code")

    assert (root / "app.py").read_text() == "x = 1\n"
    assert os.access(root / "bin" / "tool", os.X_OK)


def test_extract_zip_refuses_entries_outside_the_destination(tmp_path: Path) -> None:
    """A zip-slip entry (../) is rejected instead of written outside the code directory."""
    archive = _zip({"../escaped.py": ("boom\n", 0o644)})

    with pytest.raises(ValueError, match="escapes"):
        extract_zip(archive, tmp_path / "code")
    assert not (tmp_path / "escaped.py").exists()


def test_extract_cached_extracts_each_package_once(tmp_path: Path) -> None:
    """The same bytes map to the same directory; different bytes to another one."""
    first = extract_cached(_zip({"app.py": ("v = 1\n", 0o644)}), tmp_path)
    again = extract_cached(_zip({"app.py": ("v = 1\n", 0o644)}), tmp_path)
    other = extract_cached(_zip({"app.py": ("v = 2\n", 0o644)}), tmp_path)

    assert first == again != other
    assert (other / "app.py").read_text() == "v = 2\n"
