"""What a Lambda function is made of, what one invocation returns, and the environment it runs in."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "DEFAULT_REGION",
    "RESERVED_ENVIRONMENT_NAMES",
    "FunctionNotRegistered",
    "FunctionSpec",
    "InvocationThrottled",
    "InvokeResult",
    "LambdaRuntimeError",
    "LogEvent",
    "build_process_environment",
    "function_name_from",
    "runtime_python_path",
]

DEFAULT_REGION = "us-east-1"

# Names the Lambda service sets itself; a function's own environment cannot override them (AWS rejects
# them in CreateFunction). Everything else in a function's environment wins over the local cloud's base.
RESERVED_ENVIRONMENT_NAMES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_EXECUTION_ENV",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "TZ",
    }
)


class LambdaRuntimeError(Exception):
    """Base class of the errors the local Lambda runtime raises to its caller."""


class FunctionNotRegistered(LambdaRuntimeError, KeyError):
    """Invoke named a function the runtime does not know."""


class InvocationThrottled(LambdaRuntimeError):
    """The function's reserved concurrency is 0, so Lambda refuses every invocation (HTTP 429)."""


@dataclass(frozen=True)
class FunctionSpec:
    """Everything the runtime needs to start workers of one function.

    ``code_dir`` is the extracted deployment package (it becomes ``LAMBDA_TASK_ROOT`` and the worker's
    working directory); ``layer_dirs`` are extracted layer roots in the function's layer order (Lambda
    mounts them on ``/opt``, so each layer's ``python/`` folder is importable).
    """

    function_name: str
    function_arn: str
    handler: str
    code_dir: Path
    layer_dirs: tuple[Path, ...] | list[Path] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 3.0
    memory_mb: int = 128
    runtime: str = "python3.13"
    reserved_concurrency: int | None = None
    # The execution role's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN),
    # set by the service over the base environment and the function's own, as Lambda does.
    credentials: Mapping[str, str] = field(default_factory=dict)

    @property
    def region(self) -> str:
        """The region in the function's ARN (``arn:aws:lambda:<region>:...``)."""
        parts = self.function_arn.split(":")
        return parts[3] if len(parts) > 3 and parts[3] else DEFAULT_REGION

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"


@dataclass(frozen=True)
class InvokeResult:
    """The outcome of one invocation, shaped like the Lambda Invoke API response.

    ``function_error`` is ``"Unhandled"`` when the function failed (the payload then holds
    ``errorType``/``errorMessage``); ``log_tail`` is the last 4 KB of the invocation's log (plain text;
    the Invoke API base64-encodes it into ``X-Amz-Log-Result``).
    """

    payload: bytes
    function_error: str | None
    status_code: int
    log_tail: str
    duration_ms: float
    init_duration_ms: float | None
    request_id: str
    executed_version: str = "$LATEST"

    @property
    def error_type(self) -> str | None:
        """``errorType`` of a failed invocation's payload (None when it succeeded)."""
        if self.function_error is None:
            return None
        try:
            body = json.loads(self.payload)
        except ValueError:
            return None
        return body.get("errorType") if isinstance(body, dict) else None


class LogEvent(NamedTuple):
    """One line of a function's log: emulated POSIX milliseconds and the text, without its newline."""

    timestamp: int
    message: str


def function_name_from(name_or_arn: str) -> str:
    """Function name from a name, a (qualified) function ARN or a partial ARN (``123:function:name``)."""
    if ":" not in name_or_arn:
        return name_or_arn
    parts = name_or_arn.split(":")
    if "function" in parts:
        index = parts.index("function")
        if index + 1 < len(parts):
            return parts[index + 1]
    return parts[0]


def runtime_python_path() -> list[str]:
    """Directories that make up the Lambda Python runtime (awslambdaric, boto3, the SDK).

    On AWS these live in ``/var/runtime``; here they are the interpreter's site-packages, starting with
    the one that holds awslambdaric.
    """
    import site

    import awslambdaric

    dirs = [str(Path(awslambdaric.__file__).resolve().parent.parent)]
    for directory in site.getsitepackages():
        if directory not in dirs:
            dirs.append(directory)
    return dirs


def _layer_python_dirs(layer_root: Path, runtime: str) -> list[str]:
    version = runtime.removeprefix("python")
    candidates = [
        layer_root / "python",
        layer_root / "python" / "lib" / f"python{version}" / "site-packages",
        layer_root
        / "python"
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages",
    ]
    found: list[str] = []
    for candidate in candidates:
        if candidate.is_dir() and str(candidate) not in found:
            found.append(str(candidate))
    return found


def build_process_environment(
    spec: FunctionSpec,
    *,
    base_environment: Mapping[str, str],
    runtime_api_address: str,
    tmp_dir: Path,
    log_stream_name: str,
) -> dict[str, str]:
    """The environment of one worker process, built from scratch (nothing leaks from the parent).

    Order of precedence, lowest first: the local cloud's base environment (endpoint URL, fake
    credentials), the function's own environment, then the names the Lambda service reserves (the
    execution role's credentials among them, when the spec has them).
    """
    python_path: list[str] = [str(spec.code_dir)]
    for layer_root in spec.layer_dirs:
        python_path.extend(_layer_python_dirs(Path(layer_root), spec.runtime))
    runtime_dirs = runtime_python_path()
    python_path.extend(runtime_dirs)

    environment: dict[str, str] = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "LANG": "en_US.UTF-8",
        "HOME": str(tmp_dir),
        "TMPDIR": str(tmp_dir),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for source in (base_environment, spec.environment):
        environment.update(
            {
                key: str(value)
                for key, value in source.items()
                if key not in RESERVED_ENVIRONMENT_NAMES and not key.startswith("AWS_LAMBDA_")
            }
        )
    environment.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_RUNTIME_API": runtime_api_address,
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "LAMBDA_RUNTIME_DIR": runtime_dirs[0],
            "_HANDLER": spec.handler,
            "TZ": ":UTC",
            "PYTHONPATH": os.pathsep.join(python_path),
        }
    )
    environment.update({key: str(value) for key, value in spec.credentials.items()})
    return environment
