"""The local Lambda runtime runs handlers in real awslambdaric processes, as Lambda does."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localcloud.lambdaruntime import FunctionNotRegistered, FunctionSpec, InvokeResult, LambdaRuntime

from .conftest import FIXTURES

MakeFunction = Callable[..., FunctionSpec]


def _body(result: InvokeResult) -> Any:
    return json.loads(result.payload)


def test_functions_see_only_their_own_environment(
    runtime: LambdaRuntime, make_function: MakeFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given two functions with different variables and a parent process with its own AWS settings,
    each worker sees its template variables, the base environment and Lambda's standard variables,
    and nothing from the other function or the parent."""
    monkeypatch.setenv("AWS_PROFILE", "parent-profile")
    monkeypatch.setenv("PARENT_ONLY", "leak")
    alpha = make_function(
        "app.describe_worker",
        environment={"ONLY_ALPHA": "a", "POWERTOOLS_SERVICE_NAME": "alpha", "AWS_LAMBDA_FUNCTION_NAME": "x"},
        memory_mb=256,
    )
    beta = make_function("app.describe_worker", environment={"ONLY_BETA": "b"})

    alpha_env = _body(runtime.invoke(alpha.function_name, b"{}"))["environment"]
    beta_env = _body(runtime.invoke(beta.function_name, b"{}"))["environment"]

    assert alpha_env["ONLY_ALPHA"] == "a" and "ONLY_BETA" not in alpha_env
    assert beta_env["ONLY_BETA"] == "b" and "ONLY_ALPHA" not in beta_env
    for leaked in ("AWS_PROFILE", "PARENT_ONLY"):
        assert leaked not in alpha_env and leaked not in beta_env
    assert alpha_env["POWERTOOLS_SERVICE_NAME"] == "alpha"  # the template wins over the base
    assert beta_env["POWERTOOLS_SERVICE_NAME"] == "from-base"
    assert alpha_env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5999"
    assert alpha_env["AWS_LAMBDA_FUNCTION_NAME"] == alpha.function_name  # reserved names win
    assert alpha_env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert alpha_env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert alpha_env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{alpha.function_name}"
    assert alpha_env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert alpha_env["AWS_REGION"] == alpha_env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert alpha_env["LAMBDA_TASK_ROOT"] == str(FIXTURES / "functions")
    assert alpha_env["_HANDLER"] == "app.describe_worker"
    assert alpha_env["TZ"] == ":UTC"
    assert alpha_env["PYTHONPATH"].split(":")[0] == str(FIXTURES / "functions")
    assert alpha_env["TMPDIR"] != beta_env["TMPDIR"]


def test_layer_python_folder_is_importable(make_function: MakeFunction, runtime: LambdaRuntime) -> None:
    """Given a layer with python/vpn_naming.py, the handler imports it as it would from /opt/python."""
    spec = make_function("app.name_endpoint", layer_dirs=(FIXTURES / "layer",))

    result = runtime.invoke(spec.function_name, b'{"team": "payments"}')

    assert result.function_error is None
    assert _body(result) == "cvpn-payments-endpoint"


def test_warm_worker_is_reused(make_function: MakeFunction, runtime: LambdaRuntime) -> None:
    """Two invocations in a row run in the same process; only the first pays the cold start."""
    spec = make_function("app.describe_worker")

    first = runtime.invoke(spec.function_name, b'{"n": 1}')
    second = runtime.invoke(spec.function_arn, b'{"n": 2}')

    assert _body(first)["pid"] == _body(second)["pid"]
    assert first.init_duration_ms is not None and second.init_duration_ms is None
    assert _body(second)["event"] == {"n": 2}
    assert _body(second)["request_id"] == second.request_id
    assert _body(second)["function_arn"] == spec.function_arn
    assert runtime.stats()["functions"][spec.function_name]["cold_starts"] == 1


def test_parallel_invocations_run_in_separate_processes(
    make_function: MakeFunction, runtime: LambdaRuntime
) -> None:
    """Two slow invocations at once start a second worker instead of waiting for the first."""
    spec = make_function("app.sleep_then_describe")
    results: list[InvokeResult] = []

    def invoke() -> None:
        results.append(runtime.invoke(spec.function_name, b'{"seconds": 1.0}'))

    threads = [threading.Thread(target=invoke) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(results) == 2
    assert len({_body(result)["pid"] for result in results}) == 2
    assert runtime.stats()["workers"][spec.function_name] == 2


def test_reserved_concurrency_queues_instead_of_spawning(
    make_function: MakeFunction, runtime: LambdaRuntime
) -> None:
    """With reserved concurrency 1, simultaneous invocations share one worker, one after the other."""
    spec = make_function("app.sleep_then_describe", reserved_concurrency=1)
    results: list[InvokeResult] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(runtime.invoke(spec.function_name, b'{"seconds": 0.2}'))
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len({_body(result)["pid"] for result in results}) == 1
    assert runtime.stats()["functions"][spec.function_name]["cold_starts"] == 1


def test_timeout_kills_the_worker_and_reports_sandbox_timedout(
    make_function: MakeFunction, runtime: LambdaRuntime
) -> None:
    """A handler that outlives timeout_seconds fails as on AWS, and the next invoke gets a fresh worker."""
    spec = make_function("app.sleep_then_describe", timeout_seconds=1)
    warm_pid = _body(runtime.invoke(spec.function_name, b'{"seconds": 0}'))["pid"]

    timed_out = runtime.invoke(spec.function_name, b'{"seconds": 5}')

    assert timed_out.function_error == "Unhandled"
    assert _body(timed_out) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {timed_out.request_id} Error: Task timed out after 1.00 seconds",
    }
    assert "Task timed out after 1.00 seconds" in timed_out.log_tail
    after = runtime.invoke(spec.function_name, b'{"seconds": 0}')
    assert after.function_error is None
    assert _body(after)["pid"] != warm_pid


def test_handler_exception_is_reported_by_class_name(
    make_function: MakeFunction, runtime: LambdaRuntime
) -> None:
    """A custom exception surfaces as FunctionError Unhandled with errorType = its class name."""
    spec = make_function("app.fail_association")

    result = runtime.invoke(spec.function_name, b'{"subnet_id": "subnet-42"}')

    body = _body(result)
    assert result.function_error == "Unhandled"
    assert result.error_type == body["errorType"] == "AssociationFailed"
    assert body["errorMessage"] == "subnet subnet-42 is already associated"
    assert body["stackTrace"]
    assert "[ERROR] AssociationFailed" in result.log_tail


def test_import_error_at_init_is_runtime_import_module_error(
    make_function: MakeFunction, runtime: LambdaRuntime
) -> None:
    """A handler module that cannot import fails every invocation with Runtime.ImportModuleError."""
    spec = make_function("app.lambda_handler", code="broken")

    for _ in range(2):
        result = runtime.invoke(spec.function_name, b"{}")
        assert result.function_error == "Unhandled"
        assert result.error_type == "Runtime.ImportModuleError"
        assert "module_that_is_not_deployed" in _body(result)["errorMessage"]


def test_worker_crash_is_runtime_exit_error(make_function: MakeFunction, runtime: LambdaRuntime) -> None:
    """A runtime process that exits mid-invocation yields Runtime.ExitError; the function recovers."""
    crashing = make_function("app.crash_worker")

    result = runtime.invoke(crashing.function_name, b"{}")

    assert result.function_error == "Unhandled"
    assert _body(result) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3",
    }


def test_event_invocation_returns_202_and_runs_in_background(
    make_function: MakeFunction, runtime: LambdaRuntime, tmp_path: Path
) -> None:
    """An Event invocation is accepted at once (202, empty payload) and the handler still runs."""
    spec = make_function("app.record_event")
    marker_file = tmp_path / "marker.txt"

    accepted = runtime.invoke(
        spec.function_name,
        json.dumps({"path": str(marker_file), "marker": "ran"}).encode(),
        invocation_type="Event",
    )

    assert (accepted.status_code, accepted.payload) == (202, b"")
    assert runtime.wait_for_events(timeout=30)
    assert marker_file.read_text() == "ran"


def test_dry_run_and_unknown_function(make_function: MakeFunction, runtime: LambdaRuntime) -> None:
    """DryRun only checks the function (204, nothing runs); an unknown name raises."""
    spec = make_function("app.describe_worker")

    assert runtime.invoke(spec.function_name, b"{}", invocation_type="DryRun").status_code == 204
    assert runtime.stats()["workers"][spec.function_name] == 0
    with pytest.raises(FunctionNotRegistered):
        runtime.invoke("no-such-function", b"{}")


def test_log_tail_and_client_context(make_function: MakeFunction, runtime: LambdaRuntime) -> None:
    """The log tail carries the handler's output between START and REPORT; client context arrives."""
    spec = make_function("app.describe_worker")

    result = runtime.invoke(spec.function_name, b"{}", client_context=json.dumps({"custom": {"team": "ops"}}))

    assert _body(result)["custom"] == {"team": "ops"}
    assert result.log_tail.startswith(f"START RequestId: {result.request_id}")
    assert f"describing worker {_body(result)['pid']}" in result.log_tail
    assert f"REPORT RequestId: {result.request_id}" in result.log_tail
    assert "describing worker" in runtime.logs(spec.function_name)


def test_reregistering_a_changed_function_retires_old_workers(
    make_function: MakeFunction, runtime: LambdaRuntime
) -> None:
    """Registering the same spec keeps the warm worker; a changed spec starts a new one."""
    spec = make_function("app.describe_worker", environment={"RELEASE": "1"})
    first = _body(runtime.invoke(spec.function_name, b"{}"))

    runtime.register(spec)
    same = _body(runtime.invoke(spec.function_name, b"{}"))
    runtime.register(FunctionSpec(**{**spec.__dict__, "environment": {"RELEASE": "2"}}))
    changed = _body(runtime.invoke(spec.function_name, b"{}"))

    assert same["pid"] == first["pid"]
    assert changed["pid"] != first["pid"]
    assert changed["environment"]["RELEASE"] == "2"


def test_idle_workers_are_reaped_after_the_idle_timeout(tmp_path: Path) -> None:
    """A worker idle longer than idle_timeout_seconds is stopped; the next invoke cold-starts again."""
    spec = FunctionSpec(
        function_name="reaped",
        function_arn="arn:aws:lambda:eu-west-1:123456789012:function:reaped",
        handler="app.describe_worker",
        code_dir=FIXTURES / "functions",
    )
    with LambdaRuntime(work_dir=tmp_path, idle_timeout_seconds=0.2) as short_lived:
        short_lived.register(spec)
        first = _body(short_lived.invoke("reaped", b"{}"))["pid"]
        for _ in range(100):
            if short_lived.stats()["workers"]["reaped"] == 0:
                break
            time.sleep(0.05)
        second = short_lived.invoke("reaped", b"{}")

        assert _body(second)["pid"] != first
        assert second.init_duration_ms is not None
        assert short_lived.stats()["cold_starts"] == 2


def test_shutdown_fails_in_flight_invocations_and_kills_workers(tmp_path: Path) -> None:
    """Shutdown does not wait for a slow handler: its invocation fails with Runtime.Stopped at once."""
    spec = FunctionSpec(
        function_name="stopped",
        function_arn="arn:aws:lambda:eu-west-1:123456789012:function:stopped",
        handler="app.sleep_then_describe",
        code_dir=FIXTURES / "functions",
        timeout_seconds=30,
    )
    lambda_runtime = LambdaRuntime(work_dir=tmp_path)
    lambda_runtime.register(spec)
    lambda_runtime.invoke("stopped", b'{"seconds": 0}')
    pids = lambda_runtime.pool("stopped").worker_pids()
    results: list[InvokeResult] = []
    slow = threading.Thread(
        target=lambda: results.append(lambda_runtime.invoke("stopped", b'{"seconds": 20}'))
    )
    slow.start()
    time.sleep(0.3)

    lambda_runtime.shutdown()
    slow.join(timeout=5)

    assert results and results[0].error_type == "Runtime.Stopped"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(RuntimeError):
        lambda_runtime.invoke("stopped", b"{}")
