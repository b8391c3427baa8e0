"""Deployment packages and layers on disk: extraction into a cache keyed by content hash.

``spec_from_moto_function`` turns moto's record of a function (its code zip, handler, environment,
timeout, memory, layers and reserved concurrency) into a :class:`FunctionSpec` the runtime can run.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .spec import FunctionSpec

__all__ = ["extract_cached", "extract_zip", "spec_from_moto_function"]


def extract_zip(zip_bytes: bytes, dest_dir: Path | str) -> Path:
    """Extract a zip archive into ``dest_dir``, refusing entries that would land outside it.

    Unix permission bits stored in the archive are kept (so bundled executables stay executable).
    """
    destination = Path(dest_dir).resolve()
    destination.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        for member in archive.infolist():
            target = (destination / member.filename).resolve()
            if target != destination and destination not in target.parents:
                raise ValueError(f"zip entry {member.filename!r} escapes {destination}")
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
            mode = (member.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target, mode | stat.S_IRUSR)
    return destination


def extract_cached(zip_bytes: bytes, cache_dir: Path | str) -> Path:
    """Extract ``zip_bytes`` once into ``cache_dir/<sha256>``; later calls with the same bytes are free."""
    digest = hashlib.sha256(zip_bytes).hexdigest()
    target = Path(cache_dir) / digest
    if target.is_dir():
        return target
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=cache_dir))
    try:
        extract_zip(zip_bytes, staging)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # another thread won the race if it exists now
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _lambda_backend_of(fn: Any) -> Any:
    from moto.awslambda.utils import get_backend

    return get_backend(fn.account_id, fn.region)


def spec_from_moto_function(
    fn: Any,
    runtime_root: Path | str,
    base_env: Mapping[str, str] | None = None,
    *,
    backend: Any = None,
) -> FunctionSpec:
    """Build a :class:`FunctionSpec` from a moto ``LambdaFunction``.

    The code zip (``fn.code_bytes``) and each layer version's zip (found through the Lambda backend's
    layer store) are extracted under ``runtime_root/code`` and ``runtime_root/layers``, keyed by
    content hash. ``base_env`` is merged under the function's own environment variables.
    """
    root = Path(runtime_root)
    code_bytes: bytes = getattr(fn, "code_bytes", b"") or b""
    if not code_bytes:
        raise ValueError(f"function {fn.function_name} has no zip code (image functions are not supported)")
    code_dir = extract_cached(code_bytes, root / "code")

    layer_dirs: list[Path] = []
    layers = list(getattr(fn, "layers", []) or [])
    if layers:
        lambda_backend = backend if backend is not None else _lambda_backend_of(fn)
        for layer in layers:
            arn = layer["Arn"] if isinstance(layer, Mapping) else str(layer)
            layer_version = lambda_backend.layers_versions_by_arn(arn)
            if layer_version is None:
                raise ValueError(f"layer version {arn} of {fn.function_name} not found")
            layer_bytes: bytes = getattr(layer_version, "code_bytes", b"") or b""
            if layer_bytes:
                layer_dirs.append(extract_cached(layer_bytes, root / "layers"))

    environment = {**(base_env or {}), **{str(k): str(v) for k, v in (fn.environment_vars or {}).items()}}
    reserved = getattr(fn, "reserved_concurrency", None)
    return FunctionSpec(
        function_name=fn.function_name,
        function_arn=fn.function_arn,
        handler=fn.handler or "lambda_function.lambda_handler",
        code_dir=code_dir,
        layer_dirs=tuple(layer_dirs),
        environment=environment,
        timeout_seconds=float(fn.timeout or 3),
        memory_mb=int(fn.memory_size or 128),
        runtime=fn.run_time or "python3.13",
        reserved_concurrency=None if reserved in (None, "") else int(reserved),
    )
