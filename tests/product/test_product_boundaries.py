"""The product (functions, layers, state machines, template) knows nothing of the local cloud.

It reaches AWS through boto3 and the standard settings only; no import of the local cloud or of
moto, no loopback addresses, no "if local" switches.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures import REPO_ROOT

ROOT = REPO_ROOT
PRODUCT_FILES = sorted(
    [
        *ROOT.joinpath("functions").rglob("*.py"),
        *ROOT.joinpath("layers").rglob("*.py"),
        *ROOT.joinpath("statemachines").rglob("*.json"),
        ROOT / "template.yaml",
    ]
)
FORBIDDEN = re.compile(
    r"\b(localcloud|moto)\b|127\.0\.0\.1|localhost|LOCAL_?CLOUD|IS_LOCAL|AWS_SAM_LOCAL", re.IGNORECASE
)


def test_there_is_a_product_to_check() -> None:
    assert len(PRODUCT_FILES) > 10


@pytest.mark.parametrize("path", PRODUCT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_product_file_has_no_local_cloud_knowledge(path: Path) -> None:
    offending = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if FORBIDDEN.search(line)
    ]
    assert offending == []
