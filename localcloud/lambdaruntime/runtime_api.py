"""The Lambda Runtime API (``/2018-06-01/runtime/...``) that awslambdaric polls, served on loopback.

Each worker process gets its own listener, so the server knows which process asked for the next
invocation or posted a result, without relying on anything the runtime client sends. The scheduling
(queues, deadlines, which worker gets what) lives behind :class:`RuntimeApiBackend`.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

__all__ = ["NextInvocation", "RuntimeApiBackend", "RuntimeApiServer"]

_PREFIX = "/2018-06-01/runtime"
_ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"


@dataclass(frozen=True)
class NextInvocation:
    """What ``GET /runtime/invocation/next`` hands to the runtime client."""

    request_id: str
    payload: bytes
    deadline_epoch_ms: int
    invoked_function_arn: str
    trace_id: str
    client_context: str | None = None
    cognito_identity: str | None = None


class RuntimeApiBackend(Protocol):
    """What the server asks of the pool that owns the worker (each call names the worker's id)."""

    def next_invocation(self, worker_id: int) -> NextInvocation | None:
        """Block until the worker has an invocation; None tells the worker to stop."""

    def invocation_response(self, worker_id: int, request_id: str, payload: bytes) -> bool:
        """The handler returned; False if the request id is not the worker's current invocation."""

    def invocation_error(
        self, worker_id: int, request_id: str, payload: bytes, error_type: str | None
    ) -> bool:
        """The handler raised; ``payload`` is the runtime's errorType/errorMessage/stackTrace JSON."""

    def init_error(self, worker_id: int, payload: bytes, error_type: str | None) -> None:
        """The runtime could not initialise (import error, missing handler); it exits next."""


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _WorkerHttpServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle plus delayed ACKs add 40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the Runtime API's access log out of the test output."""

    def do_GET(self) -> None:
        if self.path.split("?")[0] != f"{_PREFIX}/invocation/next":
            self._reply(HTTPStatus.NOT_FOUND, {"errorType": "InvalidRequest", "errorMessage": self.path})
            return
        invocation = self.server.backend.next_invocation(self.server.worker_id)
        if invocation is None:
            self._reply(HTTPStatus.GONE, {"errorType": "Runtime.Stopped", "errorMessage": "worker retired"})
            self.close_connection = True
            return
        headers = {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_epoch_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.invoked_function_arn,
            "Lambda-Runtime-Trace-Id": invocation.trace_id,
        }
        if invocation.client_context:
            headers["Lambda-Runtime-Client-Context"] = invocation.client_context
        if invocation.cognito_identity:
            headers["Lambda-Runtime-Cognito-Identity"] = invocation.cognito_identity
        self._send(HTTPStatus.OK, invocation.payload, headers)

    def do_POST(self) -> None:
        body = self._read_body()
        path = self.path.split("?")[0]
        error_type = self.headers.get(_ERROR_TYPE_HEADER)
        backend, worker_id = self.server.backend, self.server.worker_id
        if path == f"{_PREFIX}/init/error":
            backend.init_error(worker_id, body, error_type)
            self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
            return
        parts = path.removeprefix(f"{_PREFIX}/invocation/").split("/")
        if not path.startswith(f"{_PREFIX}/invocation/") or len(parts) != 2:
            self._reply(HTTPStatus.NOT_FOUND, {"errorType": "InvalidRequest", "errorMessage": self.path})
            return
        request_id, verb = parts
        if verb == "response":
            accepted = backend.invocation_response(worker_id, request_id, body)
        elif verb == "error":
            accepted = backend.invocation_error(worker_id, request_id, body, error_type)
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"errorType": "InvalidRequest", "errorMessage": self.path})
            return
        if accepted:
            self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
        else:
            self._reply(
                HTTPStatus.BAD_REQUEST,
                {"errorType": "InvalidRequestID", "errorMessage": f"Invalid request ID: {request_id}"},
            )

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: HTTPStatus, body: dict[str, str]) -> None:
        self._send(status, json.dumps(body).encode(), {})

    def _send(self, status: HTTPStatus, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _WorkerHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, backend: RuntimeApiBackend, worker_id: int) -> None:
        self.backend = backend
        self.worker_id = worker_id
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A killed worker drops its connection mid-request; that is expected, not worth a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class RuntimeApiServer:
    """One worker's Runtime API endpoint on ``127.0.0.1:<ephemeral port>``, served by a daemon thread."""

    def __init__(self, backend: RuntimeApiBackend, worker_id: int) -> None:
        self._server = _WorkerHttpServer(backend, worker_id)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name=f"lambda-runtime-api-{worker_id}",
            daemon=True,
        )
        self._thread.start()

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def close(self) -> None:
        """Stop accepting requests and release the port (in-flight handler threads are daemons)."""
        self._server.shutdown()
        self._server.server_close()
