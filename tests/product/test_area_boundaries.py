"""The shared layer keeps its shape: a kernel and one package per area, each importing only itself,
the kernel, and the few named interfaces of another area listed here (with the reason).

A handler imports only its own area (and the kernel), and the client-connect handler, which runs on
every VPN login, loads neither detection nor alerting nor any other area's code. boto3 is called only
from data-access modules.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import REPO_ROOT

LAYER = REPO_ROOT / "layers" / "shared" / "python"
PACKAGE = LAYER / "cvpn_shared"
AREAS = ("provisioning", "access", "monitoring")
KERNEL = "core"

# (importing area, imported module): the small interfaces one area offers another.
ALLOWED_ACROSS_AREAS = {
    # A request from a ticket or the form becomes the request document provisioning validates.
    ("access", "cvpn_shared.provisioning.models.request"),
    # The form picks a client CIDR that overlaps none of the account's networks.
    ("access", "cvpn_shared.provisioning.dal.inventory"),
    # The form hands out links to the client configuration provisioning exported.
    ("access", "cvpn_shared.provisioning.dal.configurations"),
    # A grant that expires or is revoked cuts the user's live sessions as a blocked user's are cut.
    ("access", "cvpn_shared.monitoring.dal.client_connections"),
    # The ingest reads the live endpoints' log groups from the audit trail's sparse index.
    ("monitoring", "cvpn_shared.provisioning.monitored_log_groups"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(LAYER).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every cvpn_shared module ``path`` imports, at any level (functions and TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "cvpn_shared" or name.startswith("cvpn_shared.")}


def _area(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


LAYER_MODULES = sorted(PACKAGE.rglob("*.py"))
HANDLERS = sorted((REPO_ROOT / "functions").glob("*/*/app.py"))


def test_the_layer_has_a_kernel_and_the_three_areas() -> None:
    top = {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert top == {KERNEL, *AREAS}
    loose = {path.name for path in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py"}, f"modules outside any area: {sorted(loose - {'__init__.py'})}"


@pytest.mark.parametrize("path", LAYER_MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_layer_module_imports_its_area_the_kernel_or_a_named_interface(path: Path) -> None:
    importer = _module_name(path)
    area = _area(importer)
    wrong = []
    for imported in sorted(_imports(path)):
        target = _area(imported)
        if target in (area, KERNEL):
            continue
        if area == KERNEL:
            wrong.append(f"{imported} (the kernel imports no area)")
        elif (area, imported) not in ALLOWED_ACROSS_AREAS:
            wrong.append(imported)
    assert wrong == [], f"{importer} imports across areas: {wrong}"


@pytest.mark.parametrize("path", HANDLERS, ids=lambda p: str(p.parent.relative_to(REPO_ROOT)))
def test_a_handler_imports_only_its_own_area_and_the_kernel(path: Path) -> None:
    area = path.parent.parent.name
    assert area in AREAS, f"{path.parent} is not under functions/<area>/"
    wrong = [name for name in sorted(_imports(path)) if _area(name) not in (area, KERNEL)]
    assert wrong == []


@pytest.mark.parametrize("path", LAYER_MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_boto3_is_called_only_from_data_access(path: Path) -> None:
    module = _module_name(path)
    in_data_access = ".dal." in f"{module}." or module == "cvpn_shared.core.aws_clients"
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    sdk = names & {"boto3", "botocore.session", "botocore.client"}
    assert in_data_access or not sdk, f"{module} imports {sorted(sdk)} outside data access"


def test_two_modules_of_the_layer_never_share_a_name_for_different_things() -> None:
    """A newcomer finds a module in one guess: no module name repeats across the layer, except the
    few every area has by design (its settings, wiring, data-access package and models)."""
    per_area = {"__init__", "settings", "wiring"}
    seen: dict[str, list[str]] = {}
    for path in LAYER_MODULES:
        if path.stem not in per_area:
            seen.setdefault(path.stem, []).append(str(path.relative_to(PACKAGE)))
    assert {name: places for name, places in seen.items() if len(places) > 1} == {}


CLIENT_CONNECT_PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("client_connect_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(name for name in sys.modules if name.startswith("cvpn_shared"))))
"""


def test_the_client_connect_handler_loads_only_what_a_login_needs() -> None:
    """Given the client-connect handler (run on every VPN login), when its module is imported as
    Lambda does, then it has loaded no other area and none of detection, ingest or alerting."""
    handler = REPO_ROOT / "functions" / "monitoring" / "client_connect" / "app.py"
    answer = subprocess.run(
        [sys.executable, "-c", CLIENT_CONNECT_PROBE, str(handler)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(LAYER), "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    loaded = json.loads(answer.stdout)
    assert "cvpn_shared.monitoring.client_connect" in loaded
    heavy = [
        name
        for name in loaded
        if _area(name) in ("provisioning", "access")
        or name.startswith(
            (
                "cvpn_shared.monitoring.detection",
                "cvpn_shared.monitoring.ingest",
                "cvpn_shared.monitoring.alerting",
                "cvpn_shared.monitoring.attempts",
            )
        )
    ]
    assert heavy == []
