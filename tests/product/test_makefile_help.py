"""`make help` lists every documented target in one aligned column, in colour on a terminal only."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.fixtures import REPO_ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_help_piped_is_plain_and_aligned() -> None:
    listed = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert "\x1b[" not in listed.stdout  # no colour codes into a pipe
    documented = re.findall(
        r"^([a-zA-Z_-]+):.*?## ", (REPO_ROOT / "Makefile").read_text(), flags=re.MULTILINE
    )
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == documented
    width = max(len(name) for name in documented)
    # Every description starts in the same column, after the longest name.
    starts = {line.index(line.split(None, 1)[1], 2 + len(line.split()[0])) for line in lines}
    assert starts == {2 + width + 2}
