"""The distribution installs the command line alone: `pip install .` gives `cvpn` for a deployed stack
with boto3 and no AWS emulator; the `local` extra brings the local cloud, and the commands that run it
say which extra to install when it is missing."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cvpn.cli import main
from cvpn.common import LOCAL_CLOUD_INSTALL, LOCAL_CLOUD_MODULES
from localcloud.cloud import free_port
from tests.fixtures import REPO_ROOT

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
FIRST_PARTY = {"cvpn", "cvpn_shared", "localcloud"}
# The command line's modules that run the local cloud in-process; every other one must work without it.
LOCAL_CLOUD_COMMANDS = {"demo.py", "monitoring_demo.py"}


def _requirements(extra: str | None = None) -> list[Requirement]:
    texts = PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


def _third_party_imports(paths: list[Path]) -> set[str]:
    """Modules imported anywhere in ``paths`` (lazy imports too), but the standard library's and the
    project's own."""
    modules: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
    return {
        name
        for name in modules
        if name.split(".")[0] not in sys.stdlib_module_names | FIRST_PARTY and name != "__future__"
    }


def _distribution_closure(requirements: list[Requirement]) -> set[str]:
    """The installed distributions ``requirements`` need, with their own requirements."""
    seen: set[str] = set()
    pending = list(requirements)
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        pending.extend(Requirement(text) for text in importlib.metadata.requires(name) or [])
    return seen


# ----------------------------------------------------------------------- the hint for the local extra
@pytest.mark.parametrize("command", [["local", "up"], ["demo"]])
def test_local_cloud_commands_name_the_extra_when_it_is_missing(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given the base install (none of the local extra's modules importable), `cvpn local up` and
    `cvpn demo` exit with status 2 and the pip command that installs the extra, without a traceback."""
    for module in LOCAL_CLOUD_MODULES:
        monkeypatch.setitem(sys.modules, module, None)
    assert main(command) == 2
    error = capsys.readouterr().err
    assert f"cvpn {' '.join(command)} runs the local cloud, which is not installed" in error
    assert LOCAL_CLOUD_INSTALL in error
    assert "Traceback" not in error


def test_a_partial_install_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)
    monkeypatch.setitem(sys.modules, "samtranslator", None)
    assert main(["local", "up", "--port", str(free_port())]) == 2
    assert "not installed (missing: moto, aws-sam-translator); install it with:" in capsys.readouterr().err


def test_commands_that_only_talk_to_a_running_local_cloud_need_no_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cvpn local clock` (like `--local`) talks HTTP to a local cloud started elsewhere: without the
    extra it still runs, and says no local cloud answers."""
    for module in LOCAL_CLOUD_MODULES:
        monkeypatch.setitem(sys.modules, module, None)
    assert main(["local", "clock", "--url", f"http://127.0.0.1:{free_port()}"]) == 2
    error = capsys.readouterr().err
    assert "no local cloud answers" in error
    assert LOCAL_CLOUD_INSTALL not in error


# ------------------------------------------------------------------------------ what each part needs
def test_the_local_extra_brings_every_module_the_local_cloud_and_the_handlers_import() -> None:
    """Every third-party module of localcloud/ and of the code its Lambda workers run (the shared
    layer, the functions) comes with the base install or the `local` extra, and the hint's list of
    modules is exactly the extra's distributions."""
    code = [
        *sorted((REPO_ROOT / "localcloud").rglob("*.py")),
        *sorted((REPO_ROOT / "layers" / "shared" / "python").rglob("*.py")),
        *sorted((REPO_ROOT / "functions").rglob("*.py")),
    ]
    base = _distribution_closure(_requirements())
    provided_by_base = {
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if any(canonicalize_name(name) in base for name in distributions)
    }
    needed = {name.split(".")[0] for name in _third_party_imports(code)}
    assert needed - provided_by_base <= set(LOCAL_CLOUD_MODULES), needed - provided_by_base
    local = {canonicalize_name(requirement.name) for requirement in _requirements("local")}
    assert {canonicalize_name(name) for name in LOCAL_CLOUD_MODULES.values()} == local
    assert "client-vpn-autopilot[local]" in PROJECT["optional-dependencies"]["dev"]


def test_the_base_install_has_no_emulator() -> None:
    base = _distribution_closure(_requirements())
    assert base.isdisjoint({"moto", "aws-sam-translator", "awslambdaric", "jsonata-python", "cfn-lint"})


# ------------------------------------------------------------------------------- a fresh virtualenv
def _command_line_imports() -> set[str]:
    """The command line's modules for the commands that do not run the local cloud, and what they
    import (lazy imports too)."""
    modules = [path for path in (REPO_ROOT / "cvpn").glob("*.py") if path.name not in LOCAL_CLOUD_COMMANDS]
    imported = {f"cvpn.{path.stem}" for path in modules if path.stem != "__init__"}
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    return {
        name
        for name in imported
        if not name.startswith("localcloud")
        and name not in {"cvpn.demo", "cvpn.monitoring_demo", "__future__"}
    }


def _link_installed_distribution(name: str, site_packages: Path) -> None:
    """Make the installed distribution ``name`` importable in ``site_packages`` (offline: the test
    environment's own copy stands in for the wheel pip would download)."""
    distribution = importlib.metadata.distribution(name)
    tops = {Path(str(file)).parts[0] for file in distribution.files or [] if not str(file).startswith("..")}
    for top in tops - {"__pycache__"}:
        source = Path(str(distribution.locate_file(top)))
        target = site_packages / top
        if source.exists() and not target.exists():
            target.symlink_to(source)


@pytest.mark.slow
def test_a_fresh_virtualenv_with_the_base_install_runs_the_command_line(tmp_path: Path) -> None:
    """Given a virtualenv without system site-packages, the project's wheel and only its base
    dependencies, when a user runs `cvpn --help` and `cvpn provision --help`, then both work, every
    module the non-local commands import loads, moto is not importable, and `cvpn local up` says
    which extra to install."""
    find_spec = importlib.util.find_spec
    if not (find_spec("setuptools.command.bdist_wheel") or find_spec("wheel")):
        pytest.fail("this environment cannot build a wheel offline: `make install` brings the dev extra's")
    source = tmp_path / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for folder in ("cvpn", "localcloud", "layers/shared/python/cvpn_shared"):
        shutil.copytree(REPO_ROOT / folder, source / folder, ignore=ignore)
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "PIP_"))}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]

    def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(part) for part in command],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=180,
        )

    offline = ("--no-deps", "--no-index")
    built = run(*pip, "wheel", *offline, "--no-build-isolation", "-w", tmp_path / "dist", source)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("client_vpn_autopilot-*.whl")
    venv = tmp_path / "venv"
    created = run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    installed = run(*pip, "--python", python, "install", *offline, wheel)
    assert installed.returncode == 0, installed.stderr
    site_packages = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
    )
    for name in _distribution_closure(_requirements()):
        _link_installed_distribution(name, site_packages)

    cvpn = venv / "bin" / "cvpn"
    for command in ([cvpn, "--help"], [cvpn, "provision", "--help"]):
        result = run(*command)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: cvpn")
    imports = run(python, "-c", "; ".join(f"import {name}" for name in sorted(_command_line_imports())))
    assert imports.returncode == 0, imports.stderr
    moto = run(python, "-c", "import moto")
    assert moto.returncode != 0
    assert "No module named 'moto'" in moto.stderr
    local_up = run(cvpn, "local", "up")
    assert local_up.returncode == 2
    assert LOCAL_CLOUD_INSTALL in local_up.stderr
    assert "Traceback" not in local_up.stderr
