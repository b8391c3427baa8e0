"""A worker process's stdout and stderr, read as they are written and cut into log events.

Lambda timestamps each line of a function's output when it arrives, and adds its own lines (START,
END, REPORT) in between. A reader thread per worker does the same on the emulated clock: every
complete line becomes a :class:`LogEvent` delivered at once. When the pool writes a platform line it
first drains what the pipe already holds, under the same lock, so the function's last lines always
come before the END that follows them even though the pipe and the Runtime API are separate channels.

Lines are cut at ``\\n``. A ``\\r`` inside a line is kept as a line break of the same event:
awslambdaric's standard log sink writes an error with its stack trace as one line whose parts are
separated by ``\\r``, which Lambda shows as one multi-line event.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable, Sequence

from localcloud.clock import get_clock

from .spec import LogEvent

__all__ = ["MAX_EVENT_BYTES", "WorkerOutput"]

MAX_EVENT_BYTES = 256 * 1024
"""A line longer than CloudWatch Logs' largest event is cut into several events."""

_READ_BYTES = 64 * 1024


class WorkerOutput:
    """Reads one worker's output pipe on a daemon thread and hands each line to ``deliver``.

    ``deliver`` is called with the events in order, under this object's lock, from the reader thread
    or from a caller of :meth:`write_platform_lines`; it must not block.
    """

    def __init__(self, read_fd: int, deliver: Callable[[list[LogEvent]], None], *, name: str) -> None:
        os.set_blocking(read_fd, False)
        self._fd = read_fd
        self._deliver = deliver
        self._lock = threading.Lock()
        self._partial = bytearray()
        self._partial_at = 0
        self._eof = False
        self._thread = threading.Thread(target=self._pump, name=name, daemon=True)
        self._thread.start()

    def write_platform_lines(
        self, messages: Sequence[str], *, before: Callable[[], None] | None = None
    ) -> None:
        """Deliver what the worker wrote so far (an unfinished last line included), call ``before``,
        then deliver ``messages`` as lines of the Lambda service, timestamped now."""
        with self._lock:
            events = self._read_available()
            if self._partial:
                events.append(self._event(bytes(self._partial), self._partial_at))
                self._partial.clear()
            if events:
                self._deliver(events)
            if before is not None:
                before()
            now = get_clock().millis()
            self._deliver([LogEvent(now, message) for message in messages])

    def join(self, timeout: float | None = None) -> None:
        """Wait until the reader has seen the end of the output (the worker and its children exited)."""
        self._thread.join(timeout)

    # -- the reader thread ----------------------------------------------------------------------------

    def _pump(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        try:
            while True:
                poller.poll()
                with self._lock:
                    events = self._read_available()
                    if self._eof and self._partial:
                        events.append(self._event(bytes(self._partial), self._partial_at))
                        self._partial.clear()
                    if events:
                        self._deliver(events)
                    if self._eof:
                        return
        finally:
            os.close(self._fd)

    def _read_available(self) -> list[LogEvent]:
        """Read everything the pipe holds now and cut it into events (caller holds the lock)."""
        events: list[LogEvent] = []
        while not self._eof:
            try:
                chunk = os.read(self._fd, _READ_BYTES)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self._eof = True
                break
            self._cut(chunk, get_clock().millis(), events)
        return events

    def _cut(self, chunk: bytes, now: int, events: list[LogEvent]) -> None:
        *complete, rest = chunk.split(b"\n")
        for line in complete:
            self._append(line, now, events)
            events.append(self._event(bytes(self._partial), self._partial_at))
            self._partial.clear()
        if rest:
            self._append(rest, now, events)

    def _append(self, data: bytes, now: int, events: list[LogEvent]) -> None:
        """Add ``data`` to the unfinished line, cutting off events of the largest size it outgrows."""
        if not self._partial:
            self._partial_at = now
        self._partial += data
        while len(self._partial) > MAX_EVENT_BYTES:
            events.append(self._event(bytes(self._partial[:MAX_EVENT_BYTES]), self._partial_at))
            del self._partial[:MAX_EVENT_BYTES]
            self._partial_at = now

    @staticmethod
    def _event(line: bytes, timestamp: int) -> LogEvent:
        text = line.decode("utf-8", errors="replace").rstrip("\r").replace("\r", "\n")
        return LogEvent(timestamp, text)
