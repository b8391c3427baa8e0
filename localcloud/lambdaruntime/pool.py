"""Warm worker processes of one Lambda function, and the invocations queued for them.

A worker is a real ``python -m awslambdaric <handler>`` process with its own Runtime API listener.
An invocation goes to an idle worker if there is one, otherwise to a new worker (up to the function's
concurrency limit), otherwise it waits in the function's queue until a worker asks for the next one.

Each worker's log is what Lambda writes to its log stream: the function's output line by line, and
``START``, ``END`` and ``REPORT`` around each invocation, every line timestamped on the emulated clock
and handed to the pool's log sink as it comes.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import logging
import math
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
from .spec import FunctionSpec, InvokeResult, LogEvent, build_process_environment
from .worker_output import WorkerOutput

__all__ = ["FunctionPool", "LogSink", "PoolSettings"]

_log = logging.getLogger(__name__)

LOG_TAIL_BYTES = 4096
LogSink = Callable[[FunctionSpec, str, list[LogEvent]], None]
"""Receives (function, log stream name, events) as a worker logs them, e.g. to fill CloudWatch Logs.

Called on the runtime's own threads while an invocation waits: it must return at once.
"""


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
    start_logged: bool = False
    result: InvokeResult | None = None


class _LogTail:
    """The last lines of a worker's current invocation (the Invoke API's ``LogResult``), bounded."""

    def __init__(self, limit_chars: int = 2 * LOG_TAIL_BYTES) -> None:
        self._limit = limit_chars
        self._parts: collections.deque[str] = collections.deque()
        self._size = 0

    def clear(self) -> None:
        self._parts.clear()
        self._size = 0

    def add(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)
        while self._size - len(self._parts[0]) >= self._limit:
            self._size -= len(self._parts.popleft())

    def text(self) -> str:
        return "".join(self._parts)


@dataclass(eq=False)
class _Worker:
    worker_id: int
    log_stream_name: str
    spawned_at: float
    server: RuntimeApiServer | None = None
    process: subprocess.Popen[bytes] | None = None
    output: WorkerOutput | None = None
    inbox: queue.SimpleQueue[_Invocation | None] = field(default_factory=queue.SimpleQueue)
    reserved: _Invocation | None = None
    current: _Invocation | None = None
    initialized: bool = False
    idle_since: float | None = None
    init_error: tuple[bytes, str | None] | None = None
    stopping: bool = False
    peak_memory_mb: int | None = None
    invocation_log: _LogTail = field(default_factory=_LogTail)


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
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        self._log_ring_lock = threading.Lock()
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
                _sample_peak_memory(worker)  # while the process still exists
                self._stop_worker(worker)
        result = self._finish(
            invocation,
            _error_payload("Sandbox.Timedout", message),
            function_error=True,
            extra_log=[f"{_utc_stamp()} {invocation.request_id} Task timed out after {timeout:.2f} seconds"],
            report_status="Status: timeout",
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
        read_fd, write_fd = os.pipe()
        try:
            worker.process = subprocess.Popen(
                [sys.executable, "-m", "awslambdaric", self.spec.handler],
                cwd=str(self.spec.code_dir),
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            worker.server.close()
            raise
        finally:
            os.close(write_fd)  # the worker holds the only write end: its exit ends the output
        worker.output = WorkerOutput(
            read_fd,
            functools.partial(self._worker_logged, worker),
            name=f"lambda-output-{self.spec.function_name}-{worker_id}",
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
                    extra_log=[message],
                    report_status="Status: error\tError Type: Runtime.ExitError",
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
        with self._log_ring_lock:
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
        if worker.output is not None:
            # What the worker wrote before (its init) stays out of this invocation's LogResult.
            worker.output.write_platform_lines(
                [f"START RequestId: {invocation.request_id} Version: $LATEST"],
                before=worker.invocation_log.clear,
            )
            invocation.start_logged = True
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
        self,
        invocation: _Invocation,
        payload: bytes,
        *,
        function_error: bool,
        extra_log: list[str] | None = None,
        report_status: str | None = None,
    ) -> InvokeResult | None:
        """Record the invocation's result once, after its END and REPORT lines; None if it had one."""
        with invocation.cond:
            if invocation.result is not None:
                return None
            now = time.monotonic()
            started = invocation.dispatched_at or now
            duration_ms = (now - started) * 1000
            worker = invocation.worker
            if worker is not None:
                _sample_peak_memory(worker)
            lines = (
                []
                if invocation.start_logged
                else [f"START RequestId: {invocation.request_id} Version: $LATEST"]
            )
            lines += extra_log or []
            lines += [
                f"END RequestId: {invocation.request_id}",
                self._report_line(invocation, duration_ms, worker, report_status),
            ]
            if worker is not None and worker.output is not None:
                worker.output.write_platform_lines(lines)
                log_text = worker.invocation_log.text()
            else:
                log_text = "".join(f"{line}\n" for line in lines)
                self._append_log_ring(log_text)
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
        if function_error:
            with self._lock:
                self.errors += 1
        return invocation.result

    def _report_line(
        self, invocation: _Invocation, duration_ms: float, worker: _Worker | None, status: str | None
    ) -> str:
        """Lambda's REPORT line. Billed Duration covers the init phase too, as Lambda bills it."""
        init_ms = invocation.cold_start_init_ms
        billed_ms = max(1, math.ceil(duration_ms + (init_ms or 0.0)))
        fields = [
            f"REPORT RequestId: {invocation.request_id}",
            f"Duration: {duration_ms:.2f} ms",
            f"Billed Duration: {billed_ms} ms",
            f"Memory Size: {self.spec.memory_mb} MB",
        ]
        if worker is not None and worker.peak_memory_mb is not None:
            fields.append(f"Max Memory Used: {worker.peak_memory_mb} MB")
        if init_ms is not None:
            fields.append(f"Init Duration: {init_ms:.2f} ms")
        if status:
            fields.append(status)
        return "\t".join(fields)

    def _worker_logged(self, worker: _Worker, events: list[LogEvent]) -> None:
        """Every line of a worker's log, in order (under the lock of the worker's output)."""
        text = "".join(f"{event.message}\n" for event in events)
        worker.invocation_log.add(text)
        self._append_log_ring(text)
        if self._log_sink is not None:
            try:
                self._log_sink(self.spec, worker.log_stream_name, events)
            except Exception:
                _log.exception("could not forward the logs of %s", self.spec.function_name)

    def _append_log_ring(self, text: str) -> None:
        with self._log_ring_lock:
            self._log_ring.append(text)
            self._log_ring_size += len(text)
            while self._log_ring_size > self._settings.log_ring_bytes and len(self._log_ring) > 1:
                self._log_ring_size -= len(self._log_ring.popleft())


def _sample_peak_memory(worker: _Worker) -> None:
    """Remember the worker's peak resident memory (Lambda's Max Memory Used covers every invocation
    an execution environment served); kept as it was once the process is gone."""
    process = worker.process
    if process is None or process.returncode is not None:
        return  # once reaped, its process id may belong to another process
    try:
        with open(f"/proc/{process.pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    peak = math.ceil(int(line.split()[1]) / 1024)
                    worker.peak_memory_mb = max(peak, worker.peak_memory_mb or 0)
                    return
    except (OSError, ValueError, IndexError):
        return


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
