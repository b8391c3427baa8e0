"""Check what `sam build` produced: every function's handler module imports with the built layer.

Run with the functions' runtime (python3.13) from a virtualenv that holds what the Lambda runtime
provides (boto3) and nothing of the product:

    python3.13 tools/check_built_artifacts.py .aws-sam/build

It proves that
- the built layer is laid out as Lambda expects (``python/cvpn_shared`` at /opt/python),
- every module of the layer carries its bytecode for the runtime (unchecked-hash),
- the layer carries the product's runtime dependencies (Powertools, pydantic, ...) built for the
  functions' architecture and runtime (file tags of the compiled modules),
- each function's ``app`` module imports with only its own code, the built layer and the runtime's
  boto3 on sys.path, and exposes the handler the template names.

The functions run on arm64; this check may run on another architecture. A compiled package built
for arm64 cannot be imported here, so for the import alone it is replaced by the same version built
for this machine (installed beside boto3 in the checking virtualenv), and the replacement is printed.
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import importlib.util
import platform
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import yaml

# What the Lambda Python runtime itself provides (boto3 and its dependencies).
_RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}
_ARCH_TAGS = {"arm64": "aarch64", "x86_64": "x86_64"}


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form intrinsics as plain data."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _fail(message: str) -> NoReturn:
    print(f"FAIL: {message}")
    raise SystemExit(1)


_BUILT_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function", "AWS::Serverless::LayerVersion")


def _looped_types(fragment: dict[str, Any]) -> set[str]:
    """Resource types an Fn::ForEach fragment declares, its nested loops included."""
    types: set[str] = set()
    for key, value in fragment.items():
        if key.startswith("Fn::ForEach::"):
            types |= _looped_types(value[2])
        elif isinstance(value, dict):
            types.add(str(value.get("Type")))
    return types


def _resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The template's resources. sam build keeps Fn::ForEach loops as written (CloudFormation expands
    them); a loop may declare other resources, but code in a loop would escape this check."""
    found = {}
    for name, resource in template["Resources"].items():
        if name.startswith("Fn::ForEach::"):
            built = _looped_types(resource[2]) & set(_BUILT_TYPES)
            if built:
                _fail(f"{name} declares {sorted(built)}: this check does not follow Fn::ForEach")
            continue
        found[name] = resource
    return found


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    globals_ = template.get("Globals", {}).get("Function", {})
    found = {}
    for name, resource in _resources(template).items():
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            found[name] = {**globals_, **resource["Properties"]}
    return found


def _foreign_packages(layer_python: Path, arch_tag: str) -> dict[str, str]:
    """Top-level packages of the layer holding compiled modules for the target, not this machine."""
    host_suffixes = tuple(s for s in importlib.machinery.EXTENSION_SUFFIXES if s != ".so")
    foreign: dict[str, str] = {}
    for so in layer_python.rglob("*.so"):
        if so.name.endswith(host_suffixes):
            continue
        if f"cpython-313-{arch_tag}-linux-gnu" not in so.name and "abi3" not in so.name:
            _fail(f"{so.relative_to(layer_python)} is not built for python3.13 on {arch_tag}")
        foreign[so.relative_to(layer_python).parts[0]] = so.name
    return foreign


def _dist_version(layer_python: Path, package: str) -> tuple[str, str]:
    for dist_info in layer_python.glob("*.dist-info"):
        top_level = dist_info / "top_level.txt"
        names = top_level.read_text().split() if top_level.exists() else []
        dist_name, version = dist_info.name[: -len(".dist-info")].rsplit("-", 1)
        if package in names or dist_name.lower().replace("-", "_") == package.lower():
            return dist_name, version
    _fail(f"no dist-info in the layer for {package}")
    raise AssertionError  # unreachable


def _check_bytecode(layer_python: Path) -> None:
    """Every module of the layer has bytecode for this interpreter (the functions' runtime) that
    does not depend on file times: Lambda mounts the layer read-only, so a module without it is
    compiled on every cold start."""
    tag = sys.implementation.cache_tag
    missing = []
    for source in sorted(layer_python.rglob("*.py")):
        cached = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        if not cached.exists():
            missing.append(source)
            continue
        flags = int.from_bytes(cached.read_bytes()[4:8], "little")
        if flags != 0b01:  # hash-based (bit 0), not checked against the source (bit 1 clear)
            _fail(f"{cached.relative_to(layer_python)} is not unchecked-hash bytecode (flags {flags:#b})")
    if missing:
        shown = ", ".join(str(path.relative_to(layer_python)) for path in missing[:5])
        _fail(f"{len(missing)} layer modules have no {tag} bytecode (layers/shared/Makefile), e.g. {shown}")


def main(build_dir: str) -> int:
    build = Path(build_dir)
    template = yaml.load((build / "template.yaml").read_text(), Loader=_CfnLoader)
    functions = _functions(template)
    layers = {
        name: build / resource["Properties"]["ContentUri"]
        for name, resource in _resources(template).items()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
    }
    if set(layers) != {"SharedLayer"}:
        _fail(f"expected the one SharedLayer, found {sorted(layers)}")
    layer_python = layers["SharedLayer"] / "python"
    if not (layer_python / "cvpn_shared" / "__init__.py").exists():
        _fail(f"{layer_python}/cvpn_shared missing: the layer zip would not put cvpn_shared on /opt/python")
    for required in ("aws_lambda_powertools", "pydantic", "pydantic_core"):
        if not (layer_python / required).is_dir():
            _fail(f"the layer lacks {required} (layers/shared/requirements.txt)")

    _check_bytecode(layer_python)

    architectures = {tuple(props.get("Architectures", ["x86_64"])) for props in functions.values()}
    if len(architectures) != 1:
        _fail(f"functions disagree on the architecture: {architectures}")
    (arch,) = next(iter(architectures))
    runtimes = {props.get("Runtime") for props in functions.values()}
    if runtimes != {f"python{sys.version_info.major}.{sys.version_info.minor}"}:
        _fail(f"functions use {runtimes}; run this check with that interpreter (this is {sys.version})")

    with tempfile.TemporaryDirectory(prefix="cvpn-layer-") as tmp:
        opt_python = Path(tmp) / "python"
        shutil.copytree(layer_python, opt_python)
        host_arch = platform.machine()
        replaced: set[str] = set()
        for package, so_name in sorted(_foreign_packages(opt_python, _ARCH_TAGS[arch]).items()):
            dist_name, version = _dist_version(opt_python, package)
            try:
                host_version = importlib.metadata.version(dist_name)
            except importlib.metadata.PackageNotFoundError:
                _fail(f"{dist_name}=={version} for {host_arch} is not installed beside this check")
            if host_version != version:
                _fail(f"{dist_name}: layer has {version}, the {host_arch} copy is {host_version}")
            shutil.rmtree(opt_python / package)
            replaced.add(package)
            print(
                f"  {package}: layer has {so_name} ({arch}); imported {dist_name} {version} for {host_arch}"
            )

        sys.path[:0] = [str(opt_python)]
        site = sysconfig.get_paths()["purelib"]
        for name, props in sorted(functions.items()):
            code = build / props["CodeUri"]
            module_name, handler_name = props["Handler"].rsplit(".", 1)
            spec = importlib.util.spec_from_file_location(f"{name}.{module_name}", code / f"{module_name}.py")
            if spec is None or spec.loader is None:
                _fail(f"{name}: no {module_name}.py in {code}")
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(code))
            try:
                spec.loader.exec_module(module)
            except Exception as error:  # the point of the check: report any import failure
                _fail(f"{name}: importing {code / module_name}.py failed: {error!r}")
            finally:
                sys.path.remove(str(code))
            if not callable(getattr(module, handler_name, None)):
                _fail(f"{name}: {props['Handler']} is not callable")
            print(f"  {name}: {props['Handler']} imports")
        for loaded in sorted({m.__name__.split(".")[0] for m in sys.modules.values() if _from(m, site)}):
            if loaded not in _RUNTIME_PROVIDED | replaced | {"yaml", "_yaml"}:
                _fail(f"{loaded} was imported from {site}: neither the layer nor the runtime has it")
    print(f"OK: {len(functions)} functions import with the built layer (python3.13, {arch} layer)")
    return 0


def _from(module: Any, directory: str) -> bool:
    path = getattr(module, "__file__", None) or ""
    return path.startswith(directory)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build"))
