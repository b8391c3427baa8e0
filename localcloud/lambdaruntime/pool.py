"""Warm worker processes of one Lambda function, and the invocations queued for them.

A worker is a real ``python -m awslambdaric <handler>`` process with its own Runtime API listener.
An invocation goes to an idle worker if there is one, otherwise to a new worker (up to the function's
concurrency limit), otherwise it waits in the function's queue until a worker asks for the next one.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from localcloud.clock import get_clock

from .runtime_api import NextInvocation, RuntimeApiServer
from .spec import FunctionSpec, InvokeResult, build_process_environment

__all__ = ["FunctionPool", "LogSink", "PoolSettings"]

_log = logging.getLogger(__name__)

LOG_TAIL_BYTES = 4096
LOG_FILE_ROTATE_BYTES = 8 * 1024 * 1024
LogSink = Callable[[FunctionSpec, str, list[str]], None]
"""Receives (function, log stream name, lines) after each invocation, e.g. to fill CloudWatch Logs."""


@dataclass(frozen=True)
class PoolSettings:
    """Knobs shared by every function's pool."""

    max_workers_per_function: int = 8
    idle_timeout_seconds: float = 300.0
    init_timeout_seconds: float = 10.0
    log_ring_bytes: int = 256 * 1024


@dataclass(eq=False)
class _Invocation:
    request_id: str
    payload: bytes
    invoked_function_arn: str
    client_context: str | None
    enqueued_at: float = field(default_factory=time.monotonic)
    trace_id: str = field(default_factory=lambda: _new_trace_id())
    cond: threading.Condition = field(default_factory=threading.Condition)
    worker: _Worker | None = None
    dispatched_at: float | None = None
    deadline: float | None = None
    cold_start_init_ms: float | None = None
    result: InvokeResult | None = None


@dataclass(eq=False)
class _Worker:
    worker_id: int
    log_path: Path
    log_stream_name: str
    spawned_at: float
    server: RuntimeApiServer | None = None
    process: subprocess.Popen[bytes] | None = None
    inbox: queue.SimpleQueue[_Invocation | None] = field(default_factory=queue.SimpleQueue)
    reserved: _Invocation | None = None
    current: _Invocation | None = None
    initialized: bool = False
    idle_since: float | None = None
    init_error: tuple[bytes, str | None] | None = None
    stopping: bool = False
    log_offset: int = 0


def _new_trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class FunctionPool:
    """Workers, queue and logs of one registered function (the Runtime API backend of its workers)."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        base_environment: Mapping[str, str],
        work_dir: Path,
        settings: PoolSettings,
        log_sink: LogSink | None = None,
    ) -> None:
        self.spec = spec
        self._base_environment = dict(base_environment)
        self._settings = settings
        self._log_sink = log_sink
        self._lock = threading.Lock()
        self._workers: dict[int, _Worker] = {}
        self._idle: list[_Worker] = []
        self._pending: collections.deque[_Invocation] = collections.deque()
        self._next_worker_id = 0
        self._retired = False
        self._successor: FunctionPool | None = None
        self._tmp_dir = work_dir / "tmp"
        self._log_dir = work_dir / "logs"
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self._log_ring: collections.deque[str] = collections.deque()
        self._log_ring_size = 0
        self.invocations = 0
        self.cold_starts = 0
        self.errors = 0
        self.timeouts = 0

    # -- the caller's side --------------------------------------------------------------------------

    @property
    def concurrency_limit(self) -> int:
        reserved = self.spec.reserved_concurrency
        cap = self._settings.max_workers_per_function
        return cap if reserved is None else max(0, min(int(reserved), cap))

    def invoke(
        self,
        payload: bytes,
        *,
        client_context: str | None = None,
        request_id: str | None = None,
        invoked_function_arn: str | None = None,
    ) -> InvokeResult:
        """Run one invocation to completion (or to its timeout) and return its result."""
        invocation = _Invocation(
            request_id=request_id or str(uuid.uuid4()),
            payload=payload,
            invoked_function_arn=invoked_function_arn or self.spec.function_arn,
            client_context=client_context,
        )
        with self._lock:
            successor = self._successor
            if not self._retired:
                self.invocations += 1
                self._schedule(invocation)
        if self._retired:
            # Re-registered (or shut down) between the caller's lookup and now.
            if successor is not None:
                return successor.invoke(
                    payload,
                    client_context=client_context,
                    request_id=invocation.request_id,
                    invoked_function_arn=invoked_function_arn,
                )
            message = f"RequestId: {invocation.request_id} Error: the local Lambda runtime stopped"
            self._finish(invocation, _error_payload("Runtime.Stopped", message), function_error=True)
            assert invocation.result is not None
            return invocation.result
        return self._await(invocation)

    def _schedule(self, invocation: _Invocation) -> None:
        """Give the invocation to an idle worker, a new worker, or the queue (caller holds the lock)."""
        while self._idle:
            worker = self._idle.pop()
            if worker.process is not None and worker.process.poll() is None and not worker.stopping:
                self._assign(worker, invocation)
                return
        if len(self._workers) < self.concurrency_limit and not self._retired:
            self._spawn(invocation)
        else:
            self._pending.append(invocation)

    def _await(self, invocation: _Invocation) -> InvokeResult:
        timeout = float(self.spec.timeout_seconds)
        with invocation.cond:
            while invocation.result is None:
                now = time.monotonic()
                if invocation.deadline is not None:
                    if now >= invocation.deadline:
                        break
                    invocation.cond.wait(invocation.deadline - now)
                    continue
                worker = invocation.worker
                if (
                    worker is not None
                    and not worker.initialized
                    and now - worker.spawned_at > self._settings.init_timeout_seconds
                ):
                    break
                invocation.cond.wait(0.5)
            if invocation.result is not None:
                return invocation.result
        # Deadline passed: the worker is killed (as Lambda does) and the invocation fails.
        message = f"RequestId: {invocation.request_id} Error: Task timed out after {timeout:.2f} seconds"
        with self._lock:
            worker = invocation.worker
            if worker is not None:
                self._stop_worker(worker)
        result = self._finish(
            invocation,
            _error_payload("Sandbox.Timedout", message),
            function_error=True,
            extra_log=f"{_utc_stamp()} {invocation.request_id} Task timed out after {timeout:.2f} seconds\n",
        )
        if result is not None:
            with self._lock:
                self.timeouts += 1
        with invocation.cond:
            assert invocation.result is not None
            return invocation.result

    # -- workers --------------------------------------------------------------------------------------

    def _assign(self, worker: _Worker, invocation: _Invocation) -> None:
        worker.reserved = invocation
        worker.idle_since = None
        invocation.worker = worker
        worker.inbox.put(invocation)

    def _spawn(self, first: _Invocation) -> None:
        worker_id = self._next_worker_id
        self._next_worker_id += 1
        now = get_clock().now()  # log stream names and log timestamps follow emulated time
        worker = _Worker(
            worker_id=worker_id,
            log_path=self._log_dir / f"worker-{worker_id}.log",
            log_stream_name=f"{now:%Y/%m/%d}/[$LATEST]{secrets.token_hex(16)}",
            spawned_at=time.monotonic(),
        )
        worker.server = RuntimeApiServer(self, worker_id)
        environment = build_process_environment(
            self.spec,
            base_environment=self._base_environment,
            runtime_api_address=worker.server.address,
            tmp_dir=self._tmp_dir,
            log_stream_name=worker.log_stream_name,
        )
        with open(worker.log_path, "ab") as log_file:
            worker.process = subprocess.Popen(
                [sys.executable, "-m", "awslambdaric", self.spec.handler],
                cwd=str(self.spec.code_dir),
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._workers[worker_id] = worker
        self.cold_starts += 1
        self._assign(worker, first)
        threading.Thread(
            target=self._watch,
            args=(worker,),
            name=f"lambda-worker-{self.spec.function_name}-{worker_id}",
            daemon=True,
        ).start()

    def _stop_worker(self, worker: _Worker) -> None:
        """Kill the worker's process group; its watcher cleans up (caller holds the lock)."""
        worker.stopping = True
        if worker in self._idle:
            self._idle.remove(worker)
        worker.inbox.put(None)
        if worker.process is not None and worker.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.process.pid, signal.SIGKILL)

    def _watch(self, worker: _Worker) -> None:
        """Wait for the worker to exit, then fail what it was doing and keep the queue moving."""
        assert worker.process is not None
        returncode = worker.process.wait()
        with self._lock:
            self._workers.pop(worker.worker_id, None)
            if worker in self._idle:
                self._idle.remove(worker)
            orphan = worker.current or worker.reserved
            if (
                orphan is not None
                and orphan is worker.reserved
                and worker.initialized
                and orphan.result is None
            ):
                # A warm worker died before it picked the invocation up: the function never saw it,
                # so another worker takes it.
                worker.current = worker.reserved = None
                orphan.worker = None
                self._pending.appendleft(orphan)
                orphan = None
            worker.current = worker.reserved = None
            while self._pending and len(self._workers) < self.concurrency_limit and not self._retired:
                self._spawn(self._pending.popleft())
        if worker.server is not None:
            worker.server.close()
        if orphan is not None:
            if worker.init_error is not None:
                body, _ = worker.init_error
                self._finish(orphan, body, function_error=True)
            elif not worker.stopping:
                reason = _exit_reason(returncode)
                message = f"RequestId: {orphan.request_id} Error: Runtime exited with error: {reason}"
                self._finish(
                    orphan,
                    _error_payload("Runtime.ExitError", message),
                    function_error=True,
                    extra_log=f"{message}\n",
                )

    def reap_idle(self, now: float | None = None) -> int:
        """Stop workers idle for longer than the idle timeout; returns how many were stopped."""
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = [
                worker
                for worker in self._idle
                if worker.idle_since is not None
                and now - worker.idle_since >= self._settings.idle_timeout_seconds
            ]
            for worker in stale:
                self._stop_worker(worker)
        return len(stale)

    def retire(self, successor: FunctionPool) -> list[_Invocation]:
        """Stop every worker (busy ones after their invocation) and hand back the queued invocations.

        Invocations that still reach this pool afterwards are forwarded to ``successor``.
        """
        with self._lock:
            self._retired = True
            self._successor = successor
            for worker in list(self._workers.values()):
                if worker.current is None and worker.reserved is None:
                    self._stop_worker(worker)
                # A busy worker finishes its invocation; its next /next then tells it to stop.
            queued = list(self._pending)
            self._pending.clear()
        return queued

    def adopt(self, invocations: list[_Invocation]) -> None:
        """Take over invocations queued on a retired pool of the same function."""
        with self._lock:
            for invocation in invocations:
                invocation.worker = None
                self._schedule(invocation)

    def kill_all(self) -> list[subprocess.Popen[bytes]]:
        """Kill every worker now (runtime shutdown); returns the processes so the caller can reap them."""
        with self._lock:
            self._retired = True
            processes = [w.process for w in self._workers.values() if w.process is not None]
            unfinished = list(self._pending)
            self._pending.clear()
            for worker in list(self._workers.values()):
                unfinished += [inv for inv in (worker.current, worker.reserved) if inv is not None]
                self._stop_worker(worker)
        for invocation in unfinished:
            message = f"RequestId: {invocation.request_id} Error: the local Lambda runtime stopped"
            self._finish(invocation, _error_payload("Runtime.Stopped", message), function_error=True)
        return processes

    def worker_count(self) -> int:
        with self._lock:
            return len(self._workers)

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (tests use them to see warm reuse)."""
        with self._lock:
            return [w.process.pid for w in self._workers.values() if w.process is not None]

    def recent_logs(self) -> str:
        """The function's recent log output (a ring of the last ``log_ring_bytes``)."""
        with self._lock:
            return "".join(self._log_ring)

    # -- RuntimeApiBackend ----------------------------------------------------------------------------

    def next_invocation(self, worker_id: int) -> NextInvocation | None:
        with self._lock:
            worker = self._workers.get(worker_id)
            if worker is None or worker.stopping:
                return None
            worker.current = None
            if not worker.initialized:
                worker.initialized = True
                if worker.reserved is not None:
                    worker.reserved.cold_start_init_ms = (time.monotonic() - worker.spawned_at) * 1000
            if worker.reserved is None and worker not in self._idle:
                if self._retired:
                    self._stop_worker(worker)
                    return None
                if self._pending:
                    self._assign(worker, self._pending.popleft())
                else:
                    worker.idle_since = time.monotonic()
                    self._idle.append(worker)
        invocation = worker.inbox.get()
        if invocation is None:
            return None
        timeout = float(self.spec.timeout_seconds)
        with self._lock:
            worker.reserved = None
            worker.current = invocation
        with invocation.cond:
            invocation.dispatched_at = time.monotonic()
            invocation.deadline = invocation.dispatched_at + timeout
            invocation.cond.notify_all()
        return NextInvocation(
            request_id=invocation.request_id,
            payload=invocation.payload,
            deadline_epoch_ms=int((time.time() + timeout) * 1000),
            invoked_function_arn=invocation.invoked_function_arn,
            trace_id=invocation.trace_id,
            client_context=invocation.client_context,
        )

    def invocation_response(self, worker_id: int, request_id: str, payload: bytes) -> bool:
        return self._complete(worker_id, request_id, payload, function_error=False)

    def invocation_error(
        self, worker_id: int, request_id: str, payload: bytes, error_type: str | None
    ) -> bool:
        if not payload:
            payload = _error_payload(error_type or "Unhandled", "")
        return self._complete(worker_id, request_id, payload, function_error=True)

    def init_error(self, worker_id: int, payload: bytes, error_type: str | None) -> None:
        with self._lock:
            worker = self._workers.get(worker_id)
            if worker is not None:
                worker.init_error = (payload, error_type)

    def _complete(self, worker_id: int, request_id: str, payload: bytes, *, function_error: bool) -> bool:
        with self._lock:
            worker = self._workers.get(worker_id)
            if worker is None or worker.current is None or worker.current.request_id != request_id:
                return False
            invocation = worker.current
        accepted = self._finish(invocation, payload, function_error=function_error) is not None
        with self._lock:
            worker.current = None
            # The worker polls /next right after posting; count it as available now, so that an
            # invocation arriving in between reuses it instead of starting another process.
            if not worker.stopping and worker.reserved is None:
                if self._retired:
                    pass  # its /next will tell it to stop
                elif self._pending:
                    self._assign(worker, self._pending.popleft())
                elif worker not in self._idle:
                    worker.idle_since = time.monotonic()
                    self._idle.append(worker)
        return accepted

    # -- results and logs ------------------------------------------------------------------------------

    def _finish(
        self, invocation: _Invocation, payload: bytes, *, function_error: bool, extra_log: str = ""
    ) -> InvokeResult | None:
        """Record the invocation's result once; returns None if it already had one."""
        with invocation.cond:
            if invocation.result is not None:
                return None
            now = time.monotonic()
            started = invocation.dispatched_at or now
            duration_ms = (now - started) * 1000
            worker = invocation.worker
            output = self._read_new_output(worker) if worker is not None else ""
            log_text = self._platform_log(invocation, output + extra_log, duration_ms)
            invocation.result = InvokeResult(
                payload=payload,
                function_error="Unhandled" if function_error else None,
                status_code=200,
                log_tail=log_text.encode()[-LOG_TAIL_BYTES:].decode(errors="replace"),
                duration_ms=duration_ms,
                init_duration_ms=invocation.cold_start_init_ms,
                request_id=invocation.request_id,
            )
            invocation.cond.notify_all()
        with self._lock:
            if function_error:
                self.errors += 1
            self._append_log_ring(log_text)
        if self._log_sink is not None and worker is not None:
            try:
                self._log_sink(self.spec, worker.log_stream_name, log_text.splitlines())
            except Exception:
                _log.exception("could not forward the logs of %s", self.spec.function_name)
        return invocation.result

    def _read_new_output(self, worker: _Worker) -> str:
        """What the worker wrote since the previous invocation finished (its stdout and stderr)."""
        try:
            with open(worker.log_path, "rb") as log_file:
                log_file.seek(worker.log_offset)
                data = log_file.read()
        except OSError:
            return ""
        worker.log_offset += len(data)
        if worker.log_offset > LOG_FILE_ROTATE_BYTES:
            # Between invocations the worker writes nothing, so starting the file over loses nothing;
            # the child opened it with O_APPEND and keeps writing at the new end.
            with contextlib.suppress(OSError):
                os.truncate(worker.log_path, 0)
            worker.log_offset = 0
        return data.decode(errors="replace").replace("\r", "\n")

    def _platform_log(self, invocation: _Invocation, output: str, duration_ms: float) -> str:
        lines = [f"START RequestId: {invocation.request_id} Version: $LATEST\n", output]
        if output and not output.endswith("\n"):
            lines.append("\n")
        report = (
            f"REPORT RequestId: {invocation.request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, int(duration_ms + 0.999))} ms\tMemory Size: {self.spec.memory_mb} MB"
        )
        if invocation.cold_start_init_ms is not None:
            report += f"\tInit Duration: {invocation.cold_start_init_ms:.2f} ms"
        lines += [f"END RequestId: {invocation.request_id}\n", report + "\n"]
        return "".join(lines)

    def _append_log_ring(self, text: str) -> None:
        self._log_ring.append(text)
        self._log_ring_size += len(text)
        while self._log_ring_size > self._settings.log_ring_bytes and len(self._log_ring) > 1:
            self._log_ring_size -= len(self._log_ring.popleft())


def _utc_stamp() -> str:
    return get_clock().now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _exit_reason(returncode: int) -> str:
    """How Lambda words a runtime's exit: ``exit status 1``, ``signal: killed``, ``signal: SIGSEGV``."""
    if returncode >= 0:
        return f"exit status {returncode}"
    if -returncode == signal.SIGKILL:
        return "signal: killed"
    try:
        return f"signal: {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal: {-returncode}"
