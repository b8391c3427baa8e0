"""CloudWatch Logs' time rules, judged at the local cloud's emulated time.

PutLogEvents keeps what AWS keeps and reports the rest in ``rejectedLogEventsInfo``:

- events more than 2 hours after now: ``tooNewLogEventStartIndex`` (the first of them);
- events more than 14 days before now: ``tooOldLogEventEndIndex`` (one past the last of them);
- events older than the log group's retention: ``expiredLogEventEndIndex`` (one past the last);
- a batch out of chronological order fails with ``InvalidParameterException``.

Retention: an event older than its group's ``retentionInDays`` is deleted before any read, so
GetLogEvents, FilterLogEvents, Logs Insights, exports, live tail and the ``storedBytes`` of
DescribeLogStreams and DescribeLogGroups never see it. AWS marks such events for deletion when they
reach the retention setting, stops counting them in ``storedBytes`` and deletes them within days; the
local cloud deletes them at once, so what you read does not depend on that delay.

"Now" is :func:`localcloud.clock.get_clock`: advancing the clock or running it fast keeps events
written at emulated time, and ages them as AWS would. :func:`put_log_events` applies the rules to a
moto backend directly, for the local cloud's own writers (connection logs); :func:`install` makes
moto's CloudWatch Logs API, and whatever calls its backend's ``put_log_events``, apply them.

A fault for tests: :func:`refuse_reads` makes every FilterLogEvents and GetLogEvents on one log group
answer an error (``AccessDeniedException`` by default, as AWS answers a caller whose policy, or the
group's KMS key policy, does not let it read), until :func:`allow_reads`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from localcloud.clock import get_clock

__all__ = [
    "accept_log_events",
    "allow_reads",
    "expire_events",
    "install",
    "installed",
    "put_log_events",
    "refuse_reads",
    "uninstall",
]

MAX_AGE_MS = 14 * 86_400_000
MAX_AHEAD_MS = 2 * 3_600_000
# LogsBackend methods that read stored events: expired events are removed before each runs.
_READERS = (
    "create_export_task",
    "describe_log_groups",
    "describe_log_streams",
    "filter_log_events",
    "get_log_events",
    "start_live_tail",
    "start_query",
)

# Reads of log groups refused on purpose: group name -> (error code, message).
_EVENT_READERS = frozenset({"filter_log_events", "get_log_events"})
_refused: dict[str, tuple[str, str]] = {}

_lock = threading.Lock()
_originals: dict[str, Callable[..., Any]] = {}


def refuse_reads(
    log_group_name: str,
    code: str = "AccessDeniedException",
    message: str = "User is not authorized to perform: logs:FilterLogEvents on this resource",
) -> None:
    """Every read of ``log_group_name``'s events answers ``code`` (HTTP 400) until ``allow_reads``."""
    _refused[log_group_name] = (code, message)


def allow_reads(log_group_name: str) -> None:
    """Reads of ``log_group_name`` work again."""
    _refused.pop(log_group_name, None)


def accept_log_events(
    events: Sequence[dict[str, Any]], now_ms: int, retention_days: int | None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The events PutLogEvents stores at ``now_ms``, and its ``rejectedLogEventsInfo``.

    Raises moto's ``InvalidParameterException`` when the batch is not in chronological order.
    """
    from moto.logs.exceptions import InvalidParameterException

    oldest = now_ms - MAX_AGE_MS
    newest = now_ms + MAX_AHEAD_MS
    retained_from = now_ms - retention_days * 86_400_000 if retention_days else None
    accepted: list[dict[str, Any]] = []
    rejected: dict[str, int] = {}
    previous: int | None = None
    for index, event in enumerate(events):
        timestamp = int(event["timestamp"])
        if previous is not None and timestamp < previous:
            raise InvalidParameterException(
                "Log events in a single PutLogEvents request must be in chronological order."
            )
        previous = timestamp
        if timestamp > newest:
            rejected.setdefault("tooNewLogEventStartIndex", index)
            continue
        too_old = timestamp < oldest
        expired = retained_from is not None and timestamp < retained_from
        if too_old:
            rejected["tooOldLogEventEndIndex"] = index + 1
        if expired:
            rejected["expiredLogEventEndIndex"] = index + 1
        if not (too_old or expired):
            accepted.append(event)
    return accepted, rejected


def _retention_days(group: Any) -> int | None:
    days = getattr(group, "retention_in_days", None)
    return int(days) if days else None


def expire_events(group: Any, now_ms: int) -> int:
    """Delete the events of moto log group ``group`` older than its retention; returns how many."""
    days = _retention_days(group)
    if days is None:
        return 0
    retained_from = now_ms - days * 86_400_000
    removed = 0
    for stream in list(group.streams.values()):
        kept = [event for event in stream.events if event.timestamp >= retained_from]
        if len(kept) == len(stream.events):
            continue
        gone = [event for event in stream.events if event.timestamp < retained_from]
        stream.events = kept
        stream.stored_bytes = max(0, stream.stored_bytes - sum(len(event.message) for event in gone))
        removed += len(gone)
    return removed


def put_log_events(
    backend: Any, log_group_name: str, log_stream_name: str, log_events: Sequence[dict[str, Any]]
) -> tuple[str, dict[str, int]]:
    """PutLogEvents on moto backend ``backend`` at emulated now: (next sequence token, rejected info)."""
    from moto.logs.exceptions import ResourceNotFoundException

    if log_group_name not in backend.groups:
        raise ResourceNotFoundException()
    group = backend.groups[log_group_name]
    now_ms = get_clock().millis()
    expire_events(group, now_ms)
    accepted, rejected = accept_log_events(log_events, now_ms, _retention_days(group))
    token = group.put_log_events(log_stream_name, accepted)
    return token, rejected


def _expiring_first(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def reader(self: Any, *args: Any, **kwargs: Any) -> Any:
        if name in _EVENT_READERS:
            group = kwargs.get("log_group_name", args[0] if args else None)
            if group in _refused:
                from moto.logs.exceptions import LogsClientError

                raise LogsClientError(*_refused[group])
        now_ms = get_clock().millis()
        for group in list(self.groups.values()):
            expire_events(group, now_ms)
        return original(self, *args, **kwargs)

    reader.__name__ = name
    return reader


def install() -> None:
    """Make moto's CloudWatch Logs apply the rules at emulated time (safe to call more than once)."""
    from moto.logs.models import LogsBackend

    with _lock:
        if _originals:
            return
        _originals["put_log_events"] = LogsBackend.put_log_events
        LogsBackend.put_log_events = put_log_events  # type: ignore[method-assign,assignment]
        for name in _READERS:
            original = getattr(LogsBackend, name)
            _originals[name] = original
            setattr(LogsBackend, name, _expiring_first(name, original))


def uninstall() -> None:
    """Give moto its own CloudWatch Logs rules back."""
    from moto.logs.models import LogsBackend

    with _lock:
        for name, original in _originals.items():
            setattr(LogsBackend, name, original)
        _originals.clear()


def installed() -> bool:
    return bool(_originals)
