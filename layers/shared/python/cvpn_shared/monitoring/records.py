"""Client VPN connection-log records: one log event's JSON, read into a ``ConnectionAttempt``.

Facts this module relies on (AWS Client VPN administrator guide, "Connection logging"):

- one JSON object per log event; every value is a string and ``"NA"`` means "not applicable", so
  ``"NA"`` (and an empty string) becomes ``None`` on the attributes that carry a meaning;
- ``device-ip`` is the public source address, ``client-ip`` the tunnel address from the client CIDR;
- ``username`` exists for Active Directory and SAML only; the *user* of an attempt is the username,
  else the certificate's common name;
- a *failure* is a ``connection-attempt`` record with status ``failed``; ``waiting-for-assertion``,
  ``NA`` and ``connection-reset`` records are neither failures nor successes;
- the same connection is logged again periodically (counters and last-update time change), so
  consumers count an attempt once per (connection-id, attempt status): ``ConnectionAttempt.attempt_key``.

What is kept: the attributes below, plus ``extra`` for every field this module does not know (a
field AWS adds tomorrow, ``authorization-policy-evaluation``, ``posture-compliance-statuses``).
What is dropped on purpose: the traffic counters and the times that change with every periodic
re-log (``ingress-/egress-bytes``, ``ingress-/egress-packets``, ``connection-last-update-time``,
``connection-end-time``, ``connection-duration-seconds``) and ``port``. Detection has no use for
them, and keeping them would multiply the memory of a batch (about 2.9 KB per event as parsed JSON,
under 1 KB as a ``ConnectionAttempt``).

The hot path does not run pydantic validation: ``parse_event`` reads the JSON with ``json.loads``
and builds the (frozen) model through ``ConnectionAttempt.from_log_fields``, which fills the
instance directly. Constructing ``ConnectionAttempt(...)`` with keyword arguments validates as usual.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = [
    "LOG_TYPE_ATTEMPT",
    "LOG_TYPE_RESET",
    "STATUS_FAILED",
    "STATUS_SUCCESSFUL",
    "ConnectionAttempt",
    "ParseStats",
    "parse_event",
    "parse_events",
]

LOG_TYPE_ATTEMPT = "connection-attempt"
LOG_TYPE_RESET = "connection-reset"
STATUS_SUCCESSFUL = "successful"
STATUS_FAILED = "failed"

NOT_APPLICABLE = "NA"

# Fields that change with every periodic re-log of a connection, and the port: dropped (see above).
_DROPPED_FIELDS = (
    "ingress-bytes",
    "egress-bytes",
    "ingress-packets",
    "egress-packets",
    "connection-last-update-time",
    "connection-end-time",
    "connection-duration-seconds",
    "port",
)

# Connection-start times are shared by every periodic re-log of a connection: parse each text once.
_START_TIMES: dict[str, datetime | None] = {}
_START_TIMES_LIMIT = 8192

# Repeated short texts (endpoint ids, statuses, reasons, device types) kept once per process.
_SHARED_TEXTS: dict[str, str] = {}
_SHARED_TEXTS_LIMIT = 4096


class ConnectionAttempt(BaseModel):
    """One connection-log record, normalised. ``timestamp`` is the log event's own time (UTC)."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    timestamp: datetime
    endpoint_id: str
    connection_id: str
    log_type: str
    status: str | None
    failure_reason: str | None
    device_ip: str | None
    username: str | None
    common_name: str | None
    connection_start_time: datetime | None
    extra: dict[str, Any]
    reset_status: str | None = None
    client_ip: str | None = None
    client_ipv6: str | None = None
    device_type: str | None = None
    transport_protocol: str | None = None

    _FIELD_NAMES: ClassVar[frozenset[str]]

    @property
    def user(self) -> str | None:
        """Who tried: the username (Active Directory, SAML), else the certificate's common name."""
        return self.username or self.common_name

    @property
    def is_failure(self) -> bool:
        """A connection attempt that failed (waiting-for-assertion, NA and resets are not)."""
        return self.log_type == LOG_TYPE_ATTEMPT and self.status == STATUS_FAILED

    @property
    def is_success(self) -> bool:
        """A connection attempt that succeeded."""
        return self.log_type == LOG_TYPE_ATTEMPT and self.status == STATUS_SUCCESSFUL

    @property
    def attempt_key(self) -> tuple[str, str | None]:
        """What identifies one attempt across its periodic re-logs: (connection-id, attempt status)."""
        return (self.connection_id, self.status)

    @property
    def started_at(self) -> datetime:
        """When the connection started, else (failed attempts have none) when it was logged."""
        return self.connection_start_time or self.timestamp

    @classmethod
    def from_log_fields(cls, values: dict[str, Any]) -> ConnectionAttempt:
        """Build from already-normalised values without validation (the parser's fast path).

        ``values`` must hold every field of the model with the right type; ``parse_event`` does.
        """
        attempt = cls.__new__(cls)
        _set = object.__setattr__
        _set(attempt, "__dict__", values)
        _set(attempt, "__pydantic_fields_set__", cls._FIELD_NAMES)
        _set(attempt, "__pydantic_extra__", None)
        _set(attempt, "__pydantic_private__", None)
        return attempt


ConnectionAttempt._FIELD_NAMES = frozenset(ConnectionAttempt.model_fields)


@dataclass
class ParseStats:
    """What happened to a batch of log events: parsed, or bad (and why)."""

    parsed: int = 0
    bad_lines: int = 0
    not_json: int = 0
    not_object: int = 0
    missing_fields: int = 0

    def merge(self, other: ParseStats) -> None:
        """Add another batch's figures to these."""
        self.parsed += other.parsed
        self.bad_lines += other.bad_lines
        self.not_json += other.not_json
        self.not_object += other.not_object
        self.missing_fields += other.missing_fields


def parse_event(event_id: str, timestamp_ms: int, message: str) -> ConnectionAttempt | None:
    """The connection attempt a log event holds, or ``None`` when it holds none.

    ``None`` means the line is not JSON, is JSON but not an object (an array, a string, a
    truncated line), or lacks what identifies a connection-log record (``connection-log-type``,
    ``connection-id``, ``client-vpn-endpoint-id``): the caller counts it as a bad line. Any other
    field may be missing (it becomes ``None``); unknown fields are kept in ``extra``.
    """
    return _parse(event_id, timestamp_ms, message, None)


def parse_events(events: Iterable[Mapping[str, Any]]) -> tuple[list[ConnectionAttempt], ParseStats]:
    """Parse log events as FilterLogEvents returns them (``eventId``, ``timestamp`` in ms, ``message``).

    Bad lines are skipped and counted; an event without a usable ``timestamp`` or ``message`` is a
    bad line too. The batch never fails because of one line.
    """
    stats = ParseStats()
    attempts: list[ConnectionAttempt] = []
    append = attempts.append
    for event in events:
        message = event.get("message")
        timestamp_ms = event.get("timestamp")
        if (
            not isinstance(message, str)
            or not isinstance(timestamp_ms, int)
            or isinstance(timestamp_ms, bool)
        ):
            stats.bad_lines += 1
            stats.missing_fields += 1
            continue
        attempt = _parse(str(event.get("eventId", "")), timestamp_ms, message, stats)
        if attempt is not None:
            append(attempt)
    stats.parsed = len(attempts)
    return attempts, stats


def _parse(
    event_id: str, timestamp_ms: int, message: str, stats: ParseStats | None
) -> ConnectionAttempt | None:
    try:
        record = json.loads(message)
    except (ValueError, RecursionError):
        if stats is not None:
            stats.bad_lines += 1
            stats.not_json += 1
        return None
    if type(record) is not dict:
        if stats is not None:
            stats.bad_lines += 1
            stats.not_object += 1
        return None
    take = record.pop
    log_type = take("connection-log-type", None)
    connection_id = take("connection-id", None)
    endpoint_id = take("client-vpn-endpoint-id", None)
    if (
        type(log_type) is not str
        or type(connection_id) is not str
        or type(endpoint_id) is not str
        or not log_type
        or not connection_id
        or not endpoint_id
    ):
        if stats is not None:
            stats.bad_lines += 1
            stats.missing_fields += 1
        return None
    status = take("connection-attempt-status", None)
    reason = take("connection-attempt-failure-reason", None)
    device_ip = take("device-ip", None)
    username = take("username", None)
    common_name = take("common-name", None)
    start_time = take("connection-start-time", None)
    reset_status = take("connection-reset-status", None)
    client_ip = take("client-ip", None)
    client_ipv6 = take("client-ip-v6", None)
    device_type = take("device-type", None)
    transport = take("transport-protocol", None)
    for name in _DROPPED_FIELDS:
        take(name, None)
    return ConnectionAttempt.from_log_fields(
        {
            "event_id": event_id,
            "timestamp": datetime.fromtimestamp(timestamp_ms / 1000, UTC),
            "endpoint_id": _shared(endpoint_id),
            "connection_id": connection_id,
            "log_type": _shared(log_type),
            "status": _shared_meaning(status),
            "failure_reason": _shared_meaning(reason),
            "device_ip": _meaning(device_ip),
            "username": _meaning(username),
            "common_name": _meaning(common_name),
            "connection_start_time": _start_time(start_time),
            "extra": record if record else {},
            "reset_status": _shared_meaning(reset_status),
            "client_ip": _meaning(client_ip),
            "client_ipv6": _meaning(client_ipv6),
            "device_type": _shared_meaning(device_type),
            "transport_protocol": _shared_meaning(transport),
        }
    )


def _meaning(value: Any) -> str | None:
    """The text of a field, or ``None`` for "not applicable" (``"NA"``, empty, missing)."""
    if value is None or value == NOT_APPLICABLE or value == "":
        return None
    return value if type(value) is str else json.dumps(value, sort_keys=True)


def _shared(text: str) -> str:
    shared = _SHARED_TEXTS.get(text)
    if shared is None:
        if len(_SHARED_TEXTS) >= _SHARED_TEXTS_LIMIT:
            _SHARED_TEXTS.clear()
        _SHARED_TEXTS[text] = shared = text
    return shared


def _shared_meaning(value: Any) -> str | None:
    text = _meaning(value)
    return None if text is None else _shared(text)


def _start_time(value: Any) -> datetime | None:
    """``"YYYY-MM-DD HH:MM:SS"`` in UTC (no zone in the log) as an aware datetime; ``None`` for NA."""
    if value is None or value == NOT_APPLICABLE or type(value) is not str:
        return None
    try:
        return _START_TIMES[value]
    except KeyError:
        pass
    try:
        parsed: datetime | None = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is not None:
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if len(_START_TIMES) >= _START_TIMES_LIMIT:
        _START_TIMES.clear()
    _START_TIMES[value] = parsed
    return parsed
