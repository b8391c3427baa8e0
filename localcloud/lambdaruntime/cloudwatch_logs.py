"""Function logs into the embedded CloudWatch Logs, as Lambda ships them on AWS.

:class:`CloudWatchLogsWriter` is a log sink of the runtime: workers hand it their lines as they log
them, and a background thread writes them every ``flush_interval_seconds`` into moto's CloudWatch Logs
of the function's account and region: log group ``/aws/lambda/<function name>``, one stream per worker
(``YYYY/MM/DD/[$LATEST]<32 hex digits>``, the emulated date the worker started). An invocation never
waits for CloudWatch Logs; what is not yet written is bounded, and beyond the bound the oldest lines
are dropped and counted.

* A missing log group is created without retention, and a missing stream too, as Lambda does with the
  basic execution role's ``logs:CreateLogGroup``; a group the stack declared keeps its settings. A
  group deleted while its function runs is created again by the next write.
* The events go into the stream through moto's backend, without PutLogEvents' check of their age:
  Lambda writes its lines at the emulated now, which CloudWatch Logs always accepts, but moto judges
  the age by the real clock and would refuse them once the emulated clock has run hours ahead.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from .spec import FunctionSpec, LogEvent

__all__ = ["CloudWatchLogsWriter"]

_log = logging.getLogger(__name__)

MAX_EVENTS_PER_PUT = 10_000
"""PutLogEvents' largest batch; subscription filters see the lines in batches of this size at most."""


@dataclass(frozen=True)
class _Batch:
    account_id: str
    region: str
    log_group_name: str
    log_stream_name: str
    events: Sequence[LogEvent]


class CloudWatchLogsWriter:
    """A :data:`~localcloud.lambdaruntime.pool.LogSink` that fills moto's CloudWatch Logs in the background.

    ``max_buffered_events`` bounds the lines waiting to be written; ``flush_interval_seconds`` (real
    seconds) is how long lines gather before a write. :meth:`flush` waits until what was logged so far
    is readable; :meth:`close` writes what is left and stops the thread.
    """

    def __init__(self, *, max_buffered_events: int = 100_000, flush_interval_seconds: float = 0.2) -> None:
        if isinstance(max_buffered_events, bool) or not isinstance(max_buffered_events, int):
            raise ValueError(f"max_buffered_events must be an integer, got {max_buffered_events!r}")
        if max_buffered_events < 1:
            raise ValueError(f"max_buffered_events must be >= 1, got {max_buffered_events}")
        if not 0 <= flush_interval_seconds <= 60:
            raise ValueError(f"flush_interval_seconds must be 0 to 60, got {flush_interval_seconds!r}")
        self._max_buffered = max_buffered_events
        self._interval = float(flush_interval_seconds)
        self._cond = threading.Condition()
        self._batches: collections.deque[_Batch] = collections.deque()
        self._buffered = 0
        self._enqueued = 0
        self._done = 0
        self._dropped = 0
        self._dropping = False
        self._urgent = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="lambda-logs-writer", daemon=True)
        self._thread.start()

    @property
    def dropped_events(self) -> int:
        """Lines dropped because CloudWatch Logs could not be written fast enough."""
        with self._cond:
            return self._dropped

    def __call__(self, spec: FunctionSpec, log_stream_name: str, events: list[LogEvent]) -> None:
        """Queue a worker's lines for its function's log group (never blocks on CloudWatch Logs)."""
        if not events:
            return
        parts = spec.function_arn.split(":")
        batch = _Batch(parts[4], parts[3], spec.log_group_name, log_stream_name, events)
        with self._cond:
            if self._closing:
                return
            if not self._batches:
                self._cond.notify_all()  # only the writer's wait for a first batch needs waking
            self._batches.append(batch)
            self._buffered += len(events)
            self._enqueued += 1
            while self._buffered > self._max_buffered and len(self._batches) > 1:
                dropped = self._batches.popleft()
                self._buffered -= len(dropped.events)
                self._dropped += len(dropped.events)
                self._done += 1
                if not self._dropping:
                    self._dropping = True
                    _log.warning(
                        "function logs are written more slowly than they come: the oldest are dropped"
                    )

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Write everything queued so far now; False if that took longer than ``timeout`` seconds."""
        with self._cond:
            target = self._enqueued
            if self._done >= target:
                return True
            self._urgent = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done >= target, timeout=timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Write what is queued, then stop; lines logged afterwards are ignored."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    # -- the writer thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._batches or self._closing)
                if not (self._closing or self._urgent):
                    self._cond.wait_for(lambda: self._closing or self._urgent, timeout=self._interval)
                self._urgent = False
                batches = list(self._batches)
                self._batches.clear()
                self._buffered = 0
                self._dropping = False
                closing = self._closing
            try:
                self._write(batches)
            finally:
                with self._cond:
                    self._done += len(batches)
                    self._cond.notify_all()
            if closing:
                with self._cond:
                    if not self._batches:
                        return

    def _write(self, batches: list[_Batch]) -> None:
        streams: dict[tuple[str, str, str, str], list[LogEvent]] = {}
        for batch in batches:
            key = (batch.account_id, batch.region, batch.log_group_name, batch.log_stream_name)
            streams.setdefault(key, []).extend(batch.events)
        for (account_id, region, group_name, stream_name), events in streams.items():
            events.sort(key=lambda event: event.timestamp)  # stable: lines of one moment keep their order
            records = [
                {"timestamp": event.timestamp, "message": event.message} for event in events if event.message
            ]
            try:
                for start in range(0, len(records), MAX_EVENTS_PER_PUT):
                    _put(
                        account_id,
                        region,
                        group_name,
                        stream_name,
                        records[start : start + MAX_EVENTS_PER_PUT],
                    )
            except Exception:
                _log.exception("could not write the logs of %s to %s", stream_name, group_name)


def _put(
    account_id: str, region: str, group_name: str, stream_name: str, records: list[dict[str, object]]
) -> None:
    """Append ``records`` to the stream, creating the group and the stream when they are missing."""
    from moto.logs.exceptions import ResourceAlreadyExistsException, ResourceNotFoundException
    from moto.logs.models import logs_backends

    backend = logs_backends[account_id][region]
    for attempt in range(2):
        group = backend.groups.get(group_name)
        if group is None:
            try:
                group = backend.create_log_group(group_name, tags={})
            except ResourceAlreadyExistsException:
                group = backend.groups[group_name]
        if stream_name not in group.streams:
            with contextlib.suppress(ResourceAlreadyExistsException):
                group.create_log_stream(stream_name)
        try:
            group.put_log_events(stream_name, records)
            return
        except ResourceNotFoundException:
            if attempt:
                raise  # deleted again between creating and writing: these lines are lost
