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

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
_DROPPED_FIELDS = frozenset(
    {
        "ingress-bytes",
        "egress-bytes",
        "ingress-packets",
        "egress-packets",
        "connection-last-update-time",
        "connection-end-time",
        "connection-duration-seconds",
        "port",
    }
)
# Log field -> attribute, for the slow path.
_FIELD_OF = {
    "connection-log-type": "log_type",
    "connection-attempt-status": "status",
    "connection-attempt-failure-reason": "failure_reason",
    "connection-id": "connection_id",
    "client-vpn-endpoint-id": "endpoint_id",
    "device-ip": "device_ip",
    "username": "username",
    "common-name": "common_name",
    "connection-start-time": "connection_start_time",
    "connection-reset-status": "reset_status",
    "client-ip": "client_ip",
    "client-ip-v6": "client_ipv6",
    "device-type": "device_type",
    "transport-protocol": "transport_protocol",
}
_NOT_APPLICABLE: dict[Any, None] = {NOT_APPLICABLE: None, "": None}
_loads = json.loads
_from_timestamp = datetime.fromtimestamp

# Connection-start times are shared by every periodic re-log of a connection: parse each text once.
_START_TIMES: dict[str, datetime | None] = {}
_START_TIMES_LIMIT = 8192

# Repeated short texts (endpoint ids, statuses, reasons, device types) kept once per batch.
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
    timestamp_ms: int = Field(default=-1, description="The log event's timestamp, epoch ms (from timestamp)")

    _FIELD_NAMES: ClassVar[frozenset[str]]

    @model_validator(mode="after")
    def _timestamp_ms_follows_timestamp(self) -> ConnectionAttempt:
        if self.timestamp_ms < 0:
            object.__setattr__(self, "timestamp_ms", round(self.timestamp.timestamp() * 1000))
        return self

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
        if "timestamp_ms" not in values:
            values["timestamp_ms"] = round(values["timestamp"].timestamp() * 1000)
        attempt = cls.__new__(cls)
        _set = object.__setattr__
        _set(attempt, "__dict__", values)
        _set(attempt, "__pydantic_fields_set__", cls._FIELD_NAMES)
        _set(attempt, "__pydantic_extra__", None)
        _set(attempt, "__pydantic_private__", None)
        return attempt


ConnectionAttempt._FIELD_NAMES = frozenset(ConnectionAttempt.model_fields)
_FIELDS_SET = ConnectionAttempt._FIELD_NAMES
_new_attempt = ConnectionAttempt.__new__
_set_attribute = object.__setattr__


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
    if len(_SHARED_TEXTS) > _SHARED_TEXTS_LIMIT:
        _SHARED_TEXTS.clear()
    attempts: list[ConnectionAttempt] = []
    append = attempts.append
    for event in events:
        message = event.get("message")
        timestamp_ms = event.get("timestamp")
        if type(message) is not str or type(timestamp_ms) is not int:
            stats.bad_lines += 1
            stats.missing_fields += 1
            continue
        event_id = event.get("eventId", "")
        attempt = _parse(event_id if type(event_id) is str else str(event_id), timestamp_ms, message, stats)
        if attempt is not None:
            append(attempt)
    stats.parsed = len(attempts)
    return attempts, stats


def _parse(
    event_id: str, timestamp_ms: int, message: str, stats: ParseStats | None
) -> ConnectionAttempt | None:
    try:
        record = _loads(message)
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
    # The hot path: every value is a string, "NA" or "" mean None (a dict lookup does both).
    meaning = _NOT_APPLICABLE.get
    try:
        value = take("connection-attempt-status", None)
        status = meaning(value, value)
        value = take("connection-attempt-failure-reason", None)
        reason = meaning(value, value)
        value = take("device-ip", None)
        device_ip = meaning(value, value)
        value = take("username", None)
        username = meaning(value, value)
        value = take("common-name", None)
        common_name = meaning(value, value)
        value = take("connection-reset-status", None)
        reset_status = meaning(value, value)
        value = take("client-ip", None)
        client_ip = meaning(value, value)
        value = take("client-ip-v6", None)
        client_ipv6 = meaning(value, value)
        value = take("device-type", None)
        device_type = meaning(value, value)
        value = take("transport-protocol", None)
        transport = meaning(value, value)
    except TypeError:  # an unhashable value (an object or a list where text belongs)
        return _parse_unusual(event_id, timestamp_ms, message)
    for value in (status, reason, device_ip, username, common_name, reset_status, client_ip, client_ipv6,
                  device_type, transport):  # fmt: skip
        if value is not None and value.__class__ is not str:
            return _parse_unusual(event_id, timestamp_ms, message)
    start_text = take("connection-start-time", None)
    start_time = None if start_text is None or start_text == NOT_APPLICABLE else _start_time(start_text)
    if not record.keys() <= _DROPPED_FIELDS:
        extra = {key: value for key, value in record.items() if key not in _DROPPED_FIELDS}
    else:
        extra = {}
    shared = _SHARED_TEXTS.setdefault
    attempt = _new_attempt(ConnectionAttempt)
    _set_attribute(
        attempt,
        "__dict__",
        {
            "event_id": event_id,
            "timestamp": _from_timestamp(timestamp_ms / 1000, UTC),
            "endpoint_id": shared(endpoint_id, endpoint_id),
            "connection_id": connection_id,
            "log_type": shared(log_type, log_type),
            "status": status if status is None else shared(status, status),
            "failure_reason": reason if reason is None else shared(reason, reason),
            "device_ip": device_ip,
            "username": username,
            "common_name": common_name,
            "connection_start_time": start_time,
            "extra": extra,
            "reset_status": reset_status if reset_status is None else shared(reset_status, reset_status),
            "client_ip": client_ip,
            "client_ipv6": client_ipv6,
            "device_type": device_type if device_type is None else shared(device_type, device_type),
            "transport_protocol": transport if transport is None else shared(transport, transport),
            "timestamp_ms": timestamp_ms,
        },
    )
    _set_attribute(attempt, "__pydantic_fields_set__", _FIELDS_SET)
    _set_attribute(attempt, "__pydantic_extra__", None)
    _set_attribute(attempt, "__pydantic_private__", None)
    return attempt


def _parse_unusual(event_id: str, timestamp_ms: int, message: str) -> ConnectionAttempt | None:
    """The slow path for records with non-text values: each becomes its JSON text."""
    record = json.loads(message)
    values: dict[str, Any] = {
        "event_id": event_id,
        "timestamp": _from_timestamp(timestamp_ms / 1000, UTC),
        "timestamp_ms": timestamp_ms,
        "extra": {},
    }
    for name, value in record.items():
        field = _FIELD_OF.get(name)
        if field is None:
            if name not in _DROPPED_FIELDS:
                values["extra"][name] = value
        elif field == "connection_start_time":
            values[field] = _start_time(value) if isinstance(value, str) and value != NOT_APPLICABLE else None
        else:
            values[field] = _meaning(value)
    return ConnectionAttempt.model_validate(values)


def _meaning(value: Any) -> str | None:
    """The text of a field, or ``None`` for "not applicable" (``"NA"``, empty, missing)."""
    if value is None or value == NOT_APPLICABLE or value == "":
        return None
    return value if type(value) is str else json.dumps(value, sort_keys=True)


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
