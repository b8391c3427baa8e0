"""The Runtime API speaks the protocol awslambdaric expects; worker environments are built in order."""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path

from localcloud.lambdaruntime import FunctionSpec, build_process_environment
from localcloud.lambdaruntime.runtime_api import NextInvocation, RuntimeApiServer


class RecordingBackend:
    """A pool stand-in that hands out one invocation and records what the runtime posts."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str, bytes, str | None]] = []
        self.handed_out = threading.Event()

    def next_invocation(self, worker_id: int) -> NextInvocation | None:
        if self.handed_out.is_set():
            return None
        self.handed_out.set()
        return NextInvocation(
            request_id="req-1",
            payload=b'{"endpoint": "cvpn-endpoint-1"}',
            deadline_epoch_ms=1_900_000_000_000,
            invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
            trace_id="Root=1-00000000-000000000000000000000000;Sampled=0",
            client_context='{"custom": {}}',
        )

    def invocation_response(self, worker_id: int, request_id: str, payload: bytes) -> bool:
        self.posted.append(("response", request_id, payload, None))
        return request_id == "req-1"

    def invocation_error(
        self, worker_id: int, request_id: str, payload: bytes, error_type: str | None
    ) -> bool:
        self.posted.append(("error", request_id, payload, error_type))
        return request_id == "req-1"

    def init_error(self, worker_id: int, payload: bytes, error_type: str | None) -> None:
        self.posted.append(("init", "", payload, error_type))


def _status(connection: http.client.HTTPConnection) -> int:
    response = connection.getresponse()
    response.read()
    return response.status


def test_runtime_api_round_trip_over_one_keep_alive_connection() -> None:
    """/next carries the event and the Lambda-Runtime-* headers; /response, /error and /init/error
    answer 202; an unknown request id answers 400; all on one HTTP/1.1 connection."""
    backend = RecordingBackend()
    server = RuntimeApiServer(backend, worker_id=0)
    host, port = server.address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", "/2018-06-01/runtime/invocation/next")
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200
        assert response.version == 11
        assert response.getheader("Content-Type") == "application/json"
        assert response.getheader("Lambda-Runtime-Aws-Request-Id") == "req-1"
        assert response.getheader("Lambda-Runtime-Deadline-Ms") == "1900000000000"
        assert (response.getheader("Lambda-Runtime-Invoked-Function-Arn") or "").endswith(":function:f")
        assert (response.getheader("Lambda-Runtime-Trace-Id") or "").startswith("Root=1-")
        assert response.getheader("Lambda-Runtime-Client-Context") == '{"custom": {}}'
        assert json.loads(body) == {"endpoint": "cvpn-endpoint-1"}

        connection.request("POST", "/2018-06-01/runtime/invocation/req-1/response", body=b'"ok"')
        assert _status(connection) == 202
        error = json.dumps({"errorType": "AssociationFailed", "errorMessage": "busy"}).encode()
        connection.request(
            "POST",
            "/2018-06-01/runtime/invocation/req-1/error",
            body=error,
            headers={"Lambda-Runtime-Function-Error-Type": "AssociationFailed"},
        )
        assert _status(connection) == 202
        connection.request("POST", "/2018-06-01/runtime/invocation/other/response", body=b"{}")
        rejected = connection.getresponse()
        assert rejected.status == 400
        assert json.loads(rejected.read())["errorType"] == "InvalidRequestID"
        connection.request(
            "POST",
            "/2018-06-01/runtime/init/error",
            body=b'{"errorType": "Runtime.ImportModuleError"}',
            headers={"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"},
        )
        assert _status(connection) == 202
    finally:
        connection.close()
        server.close()

    assert backend.posted == [
        ("response", "req-1", b'"ok"', None),
        ("error", "req-1", error, "AssociationFailed"),
        ("response", "other", b"{}", None),
        ("init", "", b'{"errorType": "Runtime.ImportModuleError"}', "Runtime.ImportModuleError"),
    ]


def test_python_path_puts_task_root_then_layers_in_order_then_the_runtime(tmp_path: Path) -> None:
    """Task root first, each layer's python/ in layer order, then the runtime's own packages."""
    layers = []
    for name in ("first", "second"):
        (tmp_path / name / "python").mkdir(parents=True)
        layers.append(tmp_path / name)
    spec = FunctionSpec(
        function_name="f",
        function_arn="arn:aws:lambda:ap-southeast-2:123456789012:function:f",
        handler="app.handler",
        code_dir=tmp_path / "code",
        layer_dirs=layers,
        environment={"AWS_LAMBDA_RUNTIME_API": "evil:1", "_HANDLER": "other.handler", "STAGE": "dev"},
    )

    environment = build_process_environment(
        spec,
        base_environment={"STAGE": "base", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
        runtime_api_address="127.0.0.1:9001",
        tmp_dir=tmp_path / "tmp",
        log_stream_name="2026/01/01/[$LATEST]abc",
    )

    python_path = environment["PYTHONPATH"].split(":")
    assert python_path[:3] == [str(tmp_path / "code"), str(layers[0] / "python"), str(layers[1] / "python")]
    assert any(Path(entry, "awslambdaric").is_dir() for entry in python_path[3:])
    assert environment["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert environment["_HANDLER"] == "app.handler"
    assert environment["STAGE"] == "dev"
    assert environment["AWS_REGION"] == "ap-southeast-2"
    assert environment["AWS_LAMBDA_LOG_STREAM_NAME"] == "2026/01/01/[$LATEST]abc"


def test_the_execution_roles_credentials_win_over_the_base_and_the_functions_environment(
    tmp_path: Path,
) -> None:
    """Lambda sets the role's credentials itself: neither the local cloud's fake ones nor a function's
    own variables replace them."""
    role = {"AWS_ACCESS_KEY_ID": "ASIAROLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token"}
    spec = FunctionSpec(
        function_name="f",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        handler="app.handler",
        code_dir=tmp_path / "code",
        environment={"AWS_ACCESS_KEY_ID": "from-the-function"},
        credentials=role,
    )

    environment = build_process_environment(
        spec,
        base_environment={"AWS_ACCESS_KEY_ID": "testing", "AWS_SESSION_TOKEN": "testing"},
        runtime_api_address="127.0.0.1:9001",
        tmp_dir=tmp_path / "tmp",
        log_stream_name="s",
    )

    assert {name: environment[name] for name in role} == role
