"""``LambdaRuntime``: registers functions and invokes them in real Lambda Python runtime processes."""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from .pool import FunctionPool, LogSink, PoolSettings
from .spec import (
    FunctionNotRegistered,
    FunctionSpec,
    InvocationThrottled,
    InvokeResult,
    LogEvent,
    function_name_from,
)

__all__ = ["InvocationType", "LambdaRuntime"]

_log = logging.getLogger(__name__)

InvocationType = Literal["RequestResponse", "Event", "DryRun"]


class LambdaRuntime:
    """The local cloud's Lambda service: one pool of warm ``awslambdaric`` workers per function.

    ``base_environment`` is given to every worker (the local cloud passes ``AWS_ENDPOINT_URL`` and
    fake credentials); a function's own environment wins over it, the Lambda-reserved names win over
    both. Timeouts are real seconds: Lambda timeouts are not scaled by the emulated clock.
    """

    def __init__(
        self,
        base_environment: Mapping[str, str] | None = None,
        *,
        work_dir: Path | None = None,
        max_workers_per_function: int = 8,
        idle_timeout_seconds: float = 300.0,
        init_timeout_seconds: float = 10.0,
        log_sink: LogSink | None = None,
        event_threads: int = 16,
    ) -> None:
        self.base_environment: dict[str, str] = dict(base_environment or {})
        self._owns_work_dir = work_dir is None
        self.work_dir = (
            Path(tempfile.mkdtemp(prefix="lambdaruntime-")) if work_dir is None else Path(work_dir)
        )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.settings = PoolSettings(
            max_workers_per_function=max_workers_per_function,
            idle_timeout_seconds=idle_timeout_seconds,
            init_timeout_seconds=init_timeout_seconds,
        )
        self.log_sink = log_sink
        # (function name, execution role ARN) -> the role's credentials for the function's workers;
        # None keeps the base environment's credentials.
        self.credentials_provider: Callable[[str, str], Mapping[str, str]] | None = None
        self._lock = threading.Lock()
        self._pools: dict[str, FunctionPool] = {}
        self._retired_pools: list[FunctionPool] = []
        self._generation = 0
        self._events = ThreadPoolExecutor(max_workers=event_threads, thread_name_prefix="lambda-event")
        self._event_futures: set[Future[InvokeResult]] = set()
        self._stopped = threading.Event()
        self._reaper = threading.Thread(target=self._reap_idle_workers, name="lambda-reaper", daemon=True)
        self._reaper.start()
        atexit.register(self.shutdown)

    # -- functions -----------------------------------------------------------------------------------

    def register(self, spec: FunctionSpec) -> None:
        """Make ``spec`` the function's current definition.

        Registering an identical spec again is free (warm workers stay); a changed spec retires the old
        workers (busy ones after their current invocation) and new invocations start fresh workers.
        """
        with self._lock:
            self._check_running()
            old = self._pools.get(spec.function_name)
            if old is not None and old.spec == spec:
                return
            self._generation += 1
            pool = FunctionPool(
                spec,
                base_environment=self.base_environment,
                work_dir=self.work_dir / "functions" / spec.function_name / str(self._generation),
                settings=self.settings,
                log_sink=self._forward_logs,
            )
            self._pools[spec.function_name] = pool
        if old is not None:
            with self._lock:
                self._retired_pools = [p for p in self._retired_pools if p.worker_count()] + [old]
            pool.adopt(old.retire(successor=pool))

    def unregister(self, function_name_or_arn: str) -> None:
        """Forget a function (DeleteFunction) and stop its workers."""
        with self._lock:
            pool = self._pools.pop(function_name_from(function_name_or_arn), None)
        if pool is not None:
            pool.kill_all()

    def spec(self, function_name_or_arn: str) -> FunctionSpec | None:
        """The registered spec of a function, or None."""
        with self._lock:
            pool = self._pools.get(function_name_from(function_name_or_arn))
        return None if pool is None else pool.spec

    def pool(self, function_name_or_arn: str) -> FunctionPool:
        """The function's worker pool (raises :class:`FunctionNotRegistered`)."""
        name = function_name_from(function_name_or_arn)
        with self._lock:
            pool = self._pools.get(name)
        if pool is None:
            raise FunctionNotRegistered(f"Function not found: {function_name_or_arn}")
        return pool

    # -- invocations -----------------------------------------------------------------------------------

    def invoke(
        self,
        function_name_or_arn: str,
        payload: bytes = b"{}",
        invocation_type: InvocationType = "RequestResponse",
        client_context: str | None = None,
    ) -> InvokeResult:
        """Invoke a function like the Lambda Invoke API.

        ``RequestResponse`` waits for the result; ``Event`` queues the invocation, returns 202 at once
        and logs a failure; ``DryRun`` only checks the function exists (204). ``client_context`` is
        the decoded JSON of ``X-Amz-Client-Context``.
        """
        self._check_running()
        pool = self.pool(function_name_or_arn)
        if pool.concurrency_limit == 0:
            raise InvocationThrottled("Rate Exceeded.")
        invoked_arn = (
            function_name_or_arn if function_name_or_arn.startswith("arn:") else pool.spec.function_arn
        )
        request_id = str(uuid.uuid4())
        if invocation_type == "DryRun":
            return _empty_result(204, request_id)
        if invocation_type == "Event":
            future = self._events.submit(
                pool.invoke,
                payload,
                client_context=client_context,
                request_id=request_id,
                invoked_function_arn=invoked_arn,
            )
            with self._lock:
                self._event_futures.add(future)
            future.add_done_callback(self._event_done)
            return _empty_result(202, request_id)
        if invocation_type != "RequestResponse":
            raise ValueError(f"unknown invocation type {invocation_type!r}")
        return pool.invoke(
            payload, client_context=client_context, request_id=request_id, invoked_function_arn=invoked_arn
        )

    def wait_for_events(self, timeout: float | None = None) -> bool:
        """Wait until every queued Event invocation has finished (tests use it); False on timeout."""
        with self._lock:
            futures = list(self._event_futures)
        from concurrent.futures import wait

        _, not_done = wait(futures, timeout=timeout)
        return not not_done

    def _event_done(self, future: Future[InvokeResult]) -> None:
        with self._lock:
            self._event_futures.discard(future)
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            _log.error("asynchronous invocation failed: %s", error)
            return
        result = future.result()
        if result.function_error:
            _log.warning(
                "asynchronous invocation %s failed: %s",
                result.request_id,
                result.payload.decode(errors="replace"),
            )

    def _forward_logs(self, spec: FunctionSpec, stream: str, events: list[LogEvent]) -> None:
        if self.log_sink is not None:
            self.log_sink(spec, stream, events)

    # -- operations -------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Invocation, cold start, error and timeout counts, and live workers, per function and total."""
        with self._lock:
            pools = dict(self._pools)
        functions = {
            name: {
                "invocations": pool.invocations,
                "cold_starts": pool.cold_starts,
                "errors": pool.errors,
                "timeouts": pool.timeouts,
                "workers": pool.worker_count(),
            }
            for name, pool in pools.items()
        }
        return {
            "invocations": sum(f["invocations"] for f in functions.values()),
            "cold_starts": sum(f["cold_starts"] for f in functions.values()),
            "workers": {name: f["workers"] for name, f in functions.items()},
            "functions": functions,
        }

    def logs(self, function_name_or_arn: str) -> str:
        """The function's recent log output (START/END/REPORT lines included)."""
        return self.pool(function_name_or_arn).recent_logs()

    def shutdown(self) -> None:
        """Kill every worker and stop the Runtime API servers; safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        atexit.unregister(self.shutdown)
        with self._lock:
            pools = list(self._pools.values()) + self._retired_pools
            self._pools.clear()
            self._retired_pools.clear()
        processes = [process for pool in pools for process in pool.kill_all()]
        for process in processes:
            try:
                process.wait(timeout=5)
            except Exception:
                _log.warning("worker %s did not exit", process.pid)
        self._events.shutdown(wait=False, cancel_futures=True)
        if self._owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _check_running(self) -> None:
        if self._stopped.is_set():
            raise RuntimeError("the Lambda runtime has been shut down")

    def _reap_idle_workers(self) -> None:
        interval = max(0.05, min(1.0, self.settings.idle_timeout_seconds / 4))
        while not self._stopped.wait(interval):
            with self._lock:
                pools = list(self._pools.values())
            for pool in pools:
                pool.reap_idle()

    def __enter__(self) -> LambdaRuntime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def _empty_result(status_code: int, request_id: str) -> InvokeResult:
    return InvokeResult(
        payload=b"",
        function_error=None,
        status_code=status_code,
        log_tail="",
        duration_ms=0.0,
        init_duration_ms=None,
        request_id=request_id,
    )
