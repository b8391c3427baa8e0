"""The local cloud's emulated time.

Time scale N means N emulated seconds pass per real second. Everything in the local cloud that AWS
would make wait (subnet associations, rule and route propagation, Step Functions Wait and Retry
intervals, schedules) measures its durations in emulated seconds through the current clock, so a demo
that takes minutes on AWS takes seconds here.

Emulated time starts at the real wall time when the clock is created and then runs N times faster.
``advance`` jumps it forward (tests use it to skip waits without sleeping).

``at_wall_time`` answers what the emulated clock read when the machine's own clock read a given time:
SDKs and Lambda functions stamp what they sign (a presigned URL's ``X-Amz-Date``) with the machine's
clock, and the local cloud counts the lifetime of such a credential on the emulated clock from there.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from datetime import UTC, datetime

__all__ = ["Clock", "get_clock", "set_clock"]


# How many changes of scale and advances ``at_wall_time`` remembers, so that a long run that advances
# the clock often keeps a bounded history. A moment older than the oldest kept is read as if the clock
# had run from then on at that oldest scale.
_HISTORY = 4096


class Clock:
    """Emulated wall clock: ``now()`` runs ``time_scale`` times faster than real time."""

    def __init__(self, time_scale: float = 1.0, start: float | None = None) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale!r}")
        self._lock = threading.Lock()
        self._time_scale = float(time_scale)
        self._base_emulated = time.time() if start is None else float(start)
        self._base_real = time.monotonic()
        self._advanced = threading.Condition(self._lock)
        # (real monotonic moment, emulated time then, scale from then on), oldest first: one per change.
        self._segments: deque[tuple[float, float, float]] = deque(maxlen=_HISTORY)
        self._segments.append((self._base_real, self._base_emulated, self._time_scale))

    @property
    def time_scale(self) -> float:
        return self._time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        if value <= 0:
            raise ValueError(f"time_scale must be > 0, got {value!r}")
        with self._lock:
            self._rebase()
            self._time_scale = float(value)
            self._segments.append((self._base_real, self._base_emulated, self._time_scale))
            self._advanced.notify_all()

    def _rebase(self) -> None:
        now_real = time.monotonic()
        self._base_emulated += (now_real - self._base_real) * self._time_scale
        self._base_real = now_real

    def timestamp(self) -> float:
        """Emulated POSIX time in seconds."""
        with self._lock:
            return self._base_emulated + (time.monotonic() - self._base_real) * self._time_scale

    def now(self) -> datetime:
        """Emulated time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp(), tz=UTC)

    def millis(self) -> int:
        """Emulated POSIX time in milliseconds (CloudWatch Logs and Lambda deadlines use these)."""
        return int(self.timestamp() * 1000)

    def to_real_seconds(self, emulated_seconds: float) -> float:
        """How many real seconds ``emulated_seconds`` last at the current scale."""
        return max(0.0, float(emulated_seconds)) / self._time_scale

    def advance(self, emulated_seconds: float) -> None:
        """Jump emulated time forward; sleepers wake early when their deadline has passed."""
        if emulated_seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._rebase()
            self._base_emulated += float(emulated_seconds)
            self._segments.append((self._base_real, self._base_emulated, self._time_scale))
            self._advanced.notify_all()

    def at_wall_time(self, wall_seconds: float) -> float:
        """The emulated time (POSIX seconds) at the real moment the machine's clock read ``wall_seconds``.

        Advances and changes of scale between then and now count; a moment still to come is projected
        at the current scale.
        """
        real = float(wall_seconds) - (time.time() - time.monotonic())
        with self._lock:
            segments = list(self._segments)
        index = bisect.bisect_right([start for start, _, _ in segments], real) - 1
        start, emulated, scale = segments[max(index, 0)]
        return emulated + (real - start) * scale

    def sleep(self, emulated_seconds: float, stop: threading.Event | None = None) -> bool:
        """Sleep until ``emulated_seconds`` of emulated time have passed.

        Returns False when ``stop`` was set before the time was up, True otherwise. ``advance`` and
        a change of scale wake sleepers so they re-check their deadline.
        """
        deadline = self.timestamp() + max(0.0, float(emulated_seconds))
        while True:
            if stop is not None and stop.is_set():
                return False
            remaining = deadline - self.timestamp()
            if remaining <= 0:
                return True
            real = min(self.to_real_seconds(remaining), 0.05 if stop is not None else 1.0)
            with self._lock:
                self._advanced.wait(timeout=max(real, 0.0005))


_current = Clock()
_current_lock = threading.Lock()


def get_clock() -> Clock:
    """The clock of the running local cloud (a real-time clock until one is set)."""
    return _current


def set_clock(clock: Clock) -> Clock:
    """Make ``clock`` the current clock and return it."""
    global _current
    with _current_lock:
        _current = clock
    return clock
