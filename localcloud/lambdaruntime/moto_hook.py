"""Route moto's Lambda Invoke into the local Lambda runtime.

moto runs its non-Docker Lambda backend (``LambdaSimpleBackend``) when Lambda's ``use_docker`` is off:

* in tests: ``with mock_aws(config={"lambda": {"use_docker": False}}):``
* for a moto server in this process: ``from moto.core.config import default_user_config;
  default_user_config["lambda"]["use_docker"] = False`` before the first Lambda request.

:func:`install` patches ``LambdaSimpleBackend.invoke`` (the Invoke API, EventBridge targets, SQS event
source mappings) and ``LambdaFunction.invoke`` (InvokeAsync, SNS, S3, Kinesis, DynamoDB Streams and
CloudWatch Logs subscriptions call the function object directly), so every path runs the real
handler, and ``LambdaSimpleBackend.delete_function`` so a deleted function's workers stop. Functions
are registered lazily on first invoke, and registered again when their code or configuration changes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from moto.core.exceptions import JsonRESTError

from .cloudwatch_logs import CloudWatchLogsWriter
from .code import spec_from_moto_function
from .manager import InvocationType, LambdaRuntime
from .spec import FunctionSpec, InvocationThrottled, InvokeResult, function_name_from

__all__ = [
    "install",
    "installed_log_writer",
    "installed_runtime",
    "select_simple_lambda_backend",
    "uninstall",
]

_lock = threading.Lock()
_runtime: LambdaRuntime | None = None
_log_writer: CloudWatchLogsWriter | None = None
_code_root: Path | None = None
_fingerprints: dict[str, tuple[Any, ...]] = {}
_originals: dict[str, Callable[..., Any]] = {}


class TooManyRequestsException(JsonRESTError):
    """What Lambda answers when a function's reserved concurrency is 0."""

    code = 429

    def __init__(self) -> None:
        super().__init__("TooManyRequestsException", "Rate Exceeded.")


def select_simple_lambda_backend() -> None:
    """Make a moto server in this process use the non-Docker Lambda backend (which :func:`install`
    patches). ``mock_aws`` users pass ``config={"lambda": {"use_docker": False}}`` instead."""
    from moto.core.config import default_user_config

    default_user_config.setdefault("lambda", {})["use_docker"] = False  # type: ignore[typeddict-item]


def installed_runtime() -> LambdaRuntime | None:
    """The runtime moto currently invokes, if :func:`install` was called."""
    return _runtime


def installed_log_writer() -> CloudWatchLogsWriter | None:
    """What writes function logs to CloudWatch Logs, if :func:`install` was asked to."""
    return _log_writer


def install(
    runtime: LambdaRuntime, *, code_root: Path | str | None = None, cloudwatch_logs: bool = False
) -> None:
    """Send moto's Lambda invocations to ``runtime``.

    ``code_root`` is where code and layer zips are extracted (default: ``<runtime.work_dir>/code``).
    With ``cloudwatch_logs`` the functions' log lines also go to moto's CloudWatch Logs, group
    ``/aws/lambda/<name>``, one stream per worker as on AWS (see :class:`CloudWatchLogsWriter`).
    """
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend

    global _runtime, _code_root, _log_writer
    with _lock:
        if not _originals:
            _originals["simple_invoke"] = LambdaSimpleBackend.invoke
            _originals["function_invoke"] = LambdaFunction.invoke
            # LambdaSimpleBackend inherits delete_function; the patch shadows it on the subclass only.
            if "delete_function" in vars(LambdaSimpleBackend):
                _originals["simple_delete"] = LambdaSimpleBackend.delete_function
            LambdaSimpleBackend.invoke = _simple_backend_invoke  # type: ignore[method-assign,assignment]
            LambdaFunction.invoke = _function_object_invoke  # type: ignore[method-assign,assignment]
            LambdaSimpleBackend.delete_function = _simple_backend_delete_function  # type: ignore[method-assign]
        _runtime = runtime
        _code_root = Path(code_root) if code_root is not None else runtime.work_dir / "code"
        _fingerprints.clear()
        previous_writer, _log_writer = _log_writer, None
        if previous_writer is not None and runtime.log_sink is previous_writer:
            runtime.log_sink = None
        if cloudwatch_logs:
            _log_writer = CloudWatchLogsWriter()
            runtime.log_sink = _log_writer
    if previous_writer is not None:
        previous_writer.close()


def uninstall() -> None:
    """Restore moto's own Lambda invoke (the runtime itself keeps running; shut it down separately)."""
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend

    global _runtime, _log_writer
    with _lock:
        if _originals:
            LambdaSimpleBackend.invoke = _originals.pop("simple_invoke")  # type: ignore[method-assign]
            LambdaFunction.invoke = _originals.pop("function_invoke")  # type: ignore[method-assign]
            if "simple_delete" in _originals:
                LambdaSimpleBackend.delete_function = _originals.pop("simple_delete")  # type: ignore[method-assign]
            else:
                del LambdaSimpleBackend.delete_function  # back to the inherited LambdaBackend method
        runtime, writer = _runtime, _log_writer
        _runtime = _log_writer = None
        _fingerprints.clear()
    if writer is not None:
        if runtime is not None and runtime.log_sink is writer:
            runtime.log_sink = None
        writer.close()


# -- the patched methods -----------------------------------------------------------------------------


def _simple_backend_invoke(
    self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes | None:
    """``LambdaSimpleBackend.invoke`` replacement: run the function in the local runtime."""
    fn = self.get_function(function_name, qualifier)
    invocation_type = _header(headers, "X-Amz-Invocation-Type") or "RequestResponse"
    result = _invoke(fn, body, headers, invocation_type, function_name)
    _set_response_headers(result, headers, response_headers)
    return result.payload


def _simple_backend_delete_function(self: Any, function_name: str, qualifier: str | None = None) -> None:
    """``DeleteFunction`` also stops the function's workers (unless only a version is deleted)."""
    from moto.awslambda.models import LambdaBackend

    name = self.get_function(function_name).function_name if qualifier is None else None
    delete = _originals.get("simple_delete", LambdaBackend.delete_function)
    delete(self, function_name, qualifier)
    runtime = _runtime
    if name is not None and runtime is not None:
        runtime.unregister(name)
        with _lock:
            _fingerprints.pop(name, None)


def _function_object_invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
    """``LambdaFunction.invoke`` replacement (InvokeAsync, SNS, S3, streams): synchronous unless the
    caller's headers ask for an Event invocation."""
    invocation_type = _header(request_headers, "X-Amz-Invocation-Type") or "RequestResponse"
    result = _invoke(self, body, request_headers or {}, invocation_type, self.function_arn)
    _set_response_headers(result, request_headers or {}, response_headers)
    return result.payload


def _invoke(fn: Any, body: Any, headers: Any, invocation_type: str, invoked_as: str) -> InvokeResult:
    runtime = _runtime
    if runtime is None:
        raise RuntimeError("localcloud.lambdaruntime.install() has not been called")
    spec = _ensure_registered(runtime, fn)
    payload = body.encode() if isinstance(body, str) else bytes(body or b"")
    if invocation_type not in ("RequestResponse", "Event", "DryRun"):
        invocation_type = "RequestResponse"
    invoked_arn = invoked_as if invoked_as.startswith("arn:") else fn.function_arn
    try:
        typed: InvocationType = invocation_type  # type: ignore[assignment]
        return runtime.invoke(
            invoked_arn if function_name_from(invoked_arn) == spec.function_name else spec.function_name,
            payload or b"{}",
            typed,
            client_context=_client_context(headers),
        )
    except InvocationThrottled as error:
        raise TooManyRequestsException() from error


def _ensure_registered(runtime: LambdaRuntime, fn: Any) -> FunctionSpec:
    """Register the moto function with the runtime, again whenever its code or configuration changed."""
    fingerprint = (
        fn.function_arn,
        getattr(fn, "code_sha_256", ""),
        fn.handler,
        json.dumps(fn.environment_vars or {}, sort_keys=True),
        fn.timeout,
        fn.memory_size,
        fn.run_time,
        tuple(layer["Arn"] for layer in fn.layers or []),
        fn.reserved_concurrency,
        json.dumps(runtime.base_environment, sort_keys=True),
        getattr(fn, "role", None),
        runtime.credentials_provider is not None,
    )
    with _lock:
        known = _fingerprints.get(fn.function_name) == fingerprint
    spec = runtime.spec(fn.function_name)
    if known and spec is not None:
        return spec
    assert _code_root is not None
    spec = spec_from_moto_function(fn, _code_root)
    provider = runtime.credentials_provider
    role = str(getattr(fn, "role", "") or "")
    if provider is not None and role:
        spec = dataclasses.replace(spec, credentials=dict(provider(fn.function_name, role)))
    runtime.register(spec)
    with _lock:
        _fingerprints[fn.function_name] = fingerprint
    return spec


def _set_response_headers(result: InvokeResult, request_headers: Any, response_headers: Any) -> None:
    if response_headers is None:
        return
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    response_headers["x-amz-executed-version"] = result.executed_version
    response_headers["x-amzn-requestid"] = result.request_id
    if result.status_code == 200 and (_header(request_headers, "X-Amz-Log-Type") or "").lower() == "tail":
        response_headers["x-amz-log-result"] = base64.b64encode(result.log_tail.encode()).decode()
    response_headers["Content-Length"] = str(len(result.payload))


def _header(headers: Any, name: str) -> str | None:
    """Case-insensitive header lookup on a dict, werkzeug headers or botocore headers."""
    if not headers:
        return None
    value = headers.get(name) if hasattr(headers, "get") else None
    if value is not None:
        return str(value)
    lowered = name.lower()
    items = headers.items() if isinstance(headers, Mapping) or hasattr(headers, "items") else []
    for key, candidate in items:
        if str(key).lower() == lowered:
            return str(candidate)
    return None


def _client_context(headers: Any) -> str | None:
    """``X-Amz-Client-Context`` is base64 JSON; the Runtime API passes the JSON on."""
    encoded = _header(headers, "X-Amz-Client-Context")
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
