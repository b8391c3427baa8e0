"""The local cloud's Lambda runtime: real ``awslambdaric`` processes behind a loopback Runtime API.

Each registered function gets a pool of warm worker processes (``python -m awslambdaric <handler>``,
the runtime interface client of AWS's own Python images), each polling its own Runtime API listener on
127.0.0.1. :class:`LambdaRuntime` registers and invokes functions; :func:`install` routes moto's Lambda
Invoke (non-Docker backend) into it.

Typical wiring::

    runtime = LambdaRuntime(base_environment={"AWS_ENDPOINT_URL": moto_url, ...})
    install(runtime, cloudwatch_logs=True)  # function logs into /aws/lambda/<name>
    # plus mock_aws(config={"lambda": {"use_docker": False}}) or select_simple_lambda_backend()
    # for an in-process moto server
    ...
    uninstall(); runtime.shutdown()
"""

from .cloudwatch_logs import CloudWatchLogsWriter
from .code import extract_cached, extract_zip, spec_from_moto_function
from .manager import InvocationType, LambdaRuntime
from .moto_hook import (
    install,
    installed_log_writer,
    installed_runtime,
    select_simple_lambda_backend,
    uninstall,
)
from .pool import PoolSettings
from .spec import (
    FunctionNotRegistered,
    FunctionSpec,
    InvocationThrottled,
    InvokeResult,
    LambdaRuntimeError,
    LogEvent,
    build_process_environment,
)

__all__ = [
    "CloudWatchLogsWriter",
    "FunctionNotRegistered",
    "FunctionSpec",
    "InvocationThrottled",
    "InvocationType",
    "InvokeResult",
    "LambdaRuntime",
    "LambdaRuntimeError",
    "LogEvent",
    "PoolSettings",
    "build_process_environment",
    "extract_cached",
    "extract_zip",
    "install",
    "installed_log_writer",
    "installed_runtime",
    "select_simple_lambda_backend",
    "spec_from_moto_function",
    "uninstall",
]
