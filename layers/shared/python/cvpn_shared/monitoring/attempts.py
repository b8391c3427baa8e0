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
about 0.5 KB as a ``ConnectionAttempt``).

Speed (the parser runs once per log line, next to ``json.loads``): a ``ConnectionAttempt`` is an
immutable tuple with named attributes, built in one step from the decoded JSON, without pydantic.
Times are kept as integer epoch milliseconds (``timestamp_ms``, ``connection_start_ms``); the
``timestamp``, ``connection_start_time`` and ``started_at`` datetimes are built when asked for.
The fields detection does not use (``reset_status``, ``client_ip``, ``client_ipv6``, ``device_type``,
``transport_protocol``) are kept as logged and read as ``None`` for ``"NA"`` when asked for.
Validation and JSON serialisation go through the pydantic ``ConnectionAttemptModel``
(``ConnectionAttempt.model_validate``, ``model_dump``, ``to_model``).

Bounded text: a user name or common name is whatever a failed login typed, and anything can write a
line into a log group, yet these values become DynamoDB keys (``<endpoint>#user#<name>``, at most
2,048 bytes), items (at most 400 KB) and alert subjects. So every text field detection reads is capped
at parse time (``bounded_text``): a character that is not printable (controls, line breaks, format
characters such as bidirectional overrides) is written as its escape (``\\x0a``, ``\\u202e``), and a
value longer than ``MAX_FIELD_CHARS`` keeps its start and ends with ``~`` and a digest of the whole
value, so two long names stay two entities. ``MAX_FIELD_CHARS`` keeps an entity key (two fields, at
most four bytes a character, and the kind) under 2,048 bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

try:
    import orjson
except ImportError:  # pragma: no cover - the layer and the dev install carry it
    orjson = None  # type: ignore[assignment]

from cvpn_shared.monitoring.gcpause import cyclic_gc_paused
from cvpn_shared.monitoring.names import MAX_FIELD_CHARS, bounded_text

__all__ = [
    "LOG_TYPE_ATTEMPT",
    "LOG_TYPE_RESET",
    "MAX_FIELD_CHARS",
    "STATUS_FAILED",
    "STATUS_SUCCESSFUL",
    "ConnectionAttempt",
    "ConnectionAttemptModel",
    "ParseStats",
    "bounded_text",
    "parse_event",
    "parse_events",
]

LOG_TYPE_ATTEMPT = "connection-attempt"
LOG_TYPE_RESET = "connection-reset"
STATUS_SUCCESSFUL = "successful"
STATUS_FAILED = "failed"

NOT_APPLICABLE = "NA"

# The longest text kept of a field detection reads (see the module docstring): an entity key,
# ``<endpoint>#device_ip#<value>``, stays under DynamoDB's 2,048-byte partition key at 4 bytes a
# character.

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
# Log field -> attribute.
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
# Every field that does not go to ``extra``.
_NOT_EXTRA = frozenset(_FIELD_OF) | _DROPPED_FIELDS
_NOT_APPLICABLE: dict[Any, None] = {NOT_APPLICABLE: None, "": None}
_loads = json.loads
# orjson decodes a log line about three times as fast as ``json.loads`` (the parser's largest cost);
# without it (it is a compiled package) the standard library does the same work.
_fast_loads: Callable[[str], Any] = getattr(orjson, "loads", None) or json.loads
# The fields detection reads, in the order ``_parse_events`` unpacks them.
_MAIN_FIELDS = itemgetter(
    "connection-log-type",
    "connection-id",
    "client-vpn-endpoint-id",
    "connection-attempt-status",
    "connection-attempt-failure-reason",
    "device-ip",
    "username",
    "common-name",
    "connection-start-time",
)
_from_timestamp = datetime.fromtimestamp
_new_tuple = tuple.__new__

# Connection-start times are shared by every periodic re-log of a connection: parse each text once.
_START_TIMES: dict[str, int | None] = {}
_START_TIMES_LIMIT = 8192

# Positions in the tuple (``ConnectionAttempt._fields``); the detector unpacks the tuple by them.
EVENT_ID, TIMESTAMP_MS, ENDPOINT_ID, CONNECTION_ID, LOG_TYPE, STATUS, FAILURE_REASON = range(7)
DEVICE_IP, USERNAME, COMMON_NAME, CONNECTION_START_MS, EXTRA = range(7, 12)
RESET_STATUS, CLIENT_IP, CLIENT_IPV6, DEVICE_TYPE, TRANSPORT_PROTOCOL = range(12, 17)


def _time(moment_ms: int) -> datetime:
    return _from_timestamp(moment_ms / 1000, UTC)


def _lazy_meaning(index: int) -> property:
    """A field kept as logged: ``None`` for "NA" or empty, JSON text for a value that is not text."""

    def get(self: tuple[Any, ...]) -> str | None:
        return _meaning(self[index])

    return property(get)


class ConnectionAttempt(tuple[Any, ...]):
    """One connection-log record, normalised: an immutable tuple with named attributes.

    ``timestamp_ms`` is the log event's own time (epoch ms, UTC). Keyword construction
    (``ConnectionAttempt(event_id=..., timestamp=..., ...)``) validates through ``ConnectionAttemptModel``.
    """

    __slots__ = ()

    _fields = (
        "event_id",
        "timestamp_ms",
        "endpoint_id",
        "connection_id",
        "log_type",
        "status",
        "failure_reason",
        "device_ip",
        "username",
        "common_name",
        "connection_start_ms",
        "extra",
        "reset_status",
        "client_ip",
        "client_ipv6",
        "device_type",
        "transport_protocol",
    )

    if TYPE_CHECKING:
        event_id: str
        timestamp_ms: int
        endpoint_id: str
        connection_id: str
        log_type: str
        status: str | None
        failure_reason: str | None
        device_ip: str | None
        username: str | None
        common_name: str | None
        connection_start_ms: int | None
        extra: dict[str, Any]
        reset_status: str | None
        client_ip: str | None
        client_ipv6: str | None
        device_type: str | None
        transport_protocol: str | None
    else:
        event_id = property(itemgetter(EVENT_ID))
        timestamp_ms = property(itemgetter(TIMESTAMP_MS))
        endpoint_id = property(itemgetter(ENDPOINT_ID))
        connection_id = property(itemgetter(CONNECTION_ID))
        log_type = property(itemgetter(LOG_TYPE))
        status = property(itemgetter(STATUS))
        failure_reason = property(itemgetter(FAILURE_REASON))
        device_ip = property(itemgetter(DEVICE_IP))
        username = property(itemgetter(USERNAME))
        common_name = property(itemgetter(COMMON_NAME))
        connection_start_ms = property(itemgetter(CONNECTION_START_MS))
        extra = property(itemgetter(EXTRA))
        reset_status = _lazy_meaning(RESET_STATUS)
        client_ip = _lazy_meaning(CLIENT_IP)
        client_ipv6 = _lazy_meaning(CLIENT_IPV6)
        device_type = _lazy_meaning(DEVICE_TYPE)
        transport_protocol = _lazy_meaning(TRANSPORT_PROTOCOL)

    def __new__(cls, **values: Any) -> ConnectionAttempt:
        return ConnectionAttemptModel.model_validate(values).to_attempt()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (tuple(self),))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConnectionAttempt):
            return NotImplemented
        return self._normal() == other._normal()

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self[: CONNECTION_ID + 1])

    def _normal(self) -> tuple[Any, ...]:
        """The values with the fields kept as logged read as their attributes (what equality compares)."""
        return (*self[: EXTRA + 1], *(_meaning(value) for value in self[EXTRA + 1 :]))

    def __repr__(self) -> str:
        return f"ConnectionAttempt({', '.join(f'{n}={v!r}' for n, v in self.as_dict().items())})"

    @property
    def timestamp(self) -> datetime:
        """The log event's time, an aware UTC datetime (built from ``timestamp_ms``)."""
        return _time(self[TIMESTAMP_MS])

    @property
    def connection_start_time(self) -> datetime | None:
        """When the connection started (UTC), ``None`` when not applicable (failed attempts)."""
        start = self[CONNECTION_START_MS]
        return None if start is None else _time(start)

    @property
    def user(self) -> str | None:
        """Who tried: the username (Active Directory, SAML), else the certificate's common name."""
        return self[USERNAME] or self[COMMON_NAME]

    @property
    def is_failure(self) -> bool:
        """A connection attempt that failed (waiting-for-assertion, NA and resets are not)."""
        return self[LOG_TYPE] == LOG_TYPE_ATTEMPT and self[STATUS] == STATUS_FAILED

    @property
    def is_success(self) -> bool:
        """A connection attempt that succeeded."""
        return self[LOG_TYPE] == LOG_TYPE_ATTEMPT and self[STATUS] == STATUS_SUCCESSFUL

    @property
    def attempt_key(self) -> tuple[str, str | None]:
        """What identifies one attempt across its periodic re-logs: (connection-id, attempt status)."""
        return (self[CONNECTION_ID], self[STATUS])

    @property
    def started_at(self) -> datetime:
        """When the connection started, else (failed attempts have none) when it was logged."""
        start = self[CONNECTION_START_MS]
        return _time(self[TIMESTAMP_MS] if start is None else start)

    def on_endpoint(self, endpoint_id: str) -> ConnectionAttempt:
        """This attempt, attributed to ``endpoint_id`` (the endpoint that owns its log group)."""
        return _new_tuple(  # type: ignore[no-any-return]
            ConnectionAttempt, (*self[:ENDPOINT_ID], endpoint_id, *self[ENDPOINT_ID + 1 :])
        )

    def as_dict(self) -> dict[str, Any]:
        """The attributes of ``ConnectionAttemptModel`` (datetimes included), by name."""
        return {name: getattr(self, name) for name in ConnectionAttemptModel.model_fields}

    def to_model(self) -> ConnectionAttemptModel:
        """The pydantic form (for serialisation); not validated again."""
        return ConnectionAttemptModel.model_construct(**self.as_dict())

    def model_dump(self, **options: Any) -> dict[str, Any]:
        """``ConnectionAttemptModel.model_dump`` of this attempt (``mode="json"`` for JSON types)."""
        return self.to_model().model_dump(**options)

    @classmethod
    def model_validate(cls, values: Mapping[str, Any]) -> ConnectionAttempt:
        """An attempt from its attributes (as ``model_dump`` gives them), validated."""
        return ConnectionAttemptModel.model_validate(values).to_attempt()


class ConnectionAttemptModel(BaseModel):
    """The validated, serialisable form of a ``ConnectionAttempt`` (not used on the parsing path)."""

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
    timestamp_ms: int = -1

    def to_attempt(self) -> ConnectionAttempt:
        timestamp = self.timestamp if self.timestamp.tzinfo else self.timestamp.replace(tzinfo=UTC)
        start = self.connection_start_time
        if start is not None and start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        return _new_tuple(
            ConnectionAttempt,
            (
                self.event_id,
                self.timestamp_ms if self.timestamp_ms >= 0 else _ms(timestamp),
                self.endpoint_id,
                self.connection_id,
                self.log_type,
                self.status,
                self.failure_reason,
                self.device_ip,
                self.username,
                self.common_name,
                None if start is None else _ms(start),
                dict(self.extra),
                self.reset_status,
                self.client_ip,
                self.client_ipv6,
                self.device_type,
                self.transport_protocol,
            ),
        )


def _restore(values: tuple[Any, ...]) -> ConnectionAttempt:
    """Unpickling: the tuple as it was (no validation)."""
    return _new_tuple(ConnectionAttempt, values)  # type: ignore[no-any-return]


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


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
    attempts, _ = parse_events([{"eventId": event_id, "timestamp": timestamp_ms, "message": message}])
    return attempts[0] if attempts else None


def parse_events(events: Iterable[Mapping[str, Any]]) -> tuple[list[ConnectionAttempt], ParseStats]:
    """Parse log events as FilterLogEvents returns them (``eventId``, ``timestamp`` in ms, ``message``).

    Bad lines are skipped and counted; an event without a usable ``timestamp`` or ``message`` is a
    bad line too. The batch never fails because of one line.

    The loop is the hot path (one pass per log line, next to JSON decoding): it decodes the line with
    orjson (the standard library gives the verdict on what orjson refuses, such as ``NaN``), takes
    the fields detection reads in one ``itemgetter`` call, checks they are all text in one
    ``str.join``, and builds the tuple in one step; records that lack one of those fields or hold a
    value that is not text take the slow path (``_parse_irregular``).
    The cyclic garbage collector is paused meanwhile (``gcpause``: nothing here makes a cycle).
    """
    with cyclic_gc_paused():
        return _parse_events(events)


def _parse_events(events: Iterable[Mapping[str, Any]]) -> tuple[list[ConnectionAttempt], ParseStats]:
    stats = ParseStats()
    attempts: list[ConnectionAttempt] = []
    append = attempts.append
    decode = _fast_loads
    fields = _MAIN_FIELDS
    all_text = "".join
    only_known = _NOT_EXTRA.issuperset  # faster than ``record.keys() <= _NOT_EXTRA``
    start_times = _START_TIMES
    meaning = _NOT_APPLICABLE.get
    not_json = not_object = missing = 0
    for event in events:
        message = event.get("message")
        timestamp_ms = event.get("timestamp")
        if message.__class__ is not str or timestamp_ms.__class__ is not int:
            missing += 1
            continue
        try:
            record = decode(message)
        except (ValueError, RecursionError):
            try:  # the standard library takes a little more (NaN, huge integers): its verdict rules
                record = _loads(message)
            except (ValueError, RecursionError):
                not_json += 1
                continue
        if record.__class__ is not dict:
            not_object += 1
            continue
        event_id = event.get("eventId", "")
        if event_id.__class__ is not str:
            event_id = str(event_id)
        try:
            # The usual record: every field detection reads is present and text (one C call each).
            values = fields(record)
            text = all_text(values)
        except (KeyError, TypeError):
            attempt = _parse_irregular(event_id, timestamp_ms, record)
            if attempt is None:
                missing += 1
            else:
                append(attempt)
            continue
        if not text.isprintable() or max(map(len, values)) > MAX_FIELD_CHARS:
            values = tuple(map(bounded_text, values))
        log_type, connection_id, endpoint_id, status, reason, device_ip, username, common_name, start_text = (
            values
        )
        if not log_type or not connection_id or not endpoint_id:
            missing += 1
            continue
        if start_text in _NOT_APPLICABLE:
            start_ms = None
        else:
            try:
                start_ms = start_times[start_text]
            except KeyError:
                start_ms = _start_ms(start_text)
        get = record.get
        append(
            _new_tuple(
                ConnectionAttempt,
                (
                    event_id,
                    timestamp_ms,
                    endpoint_id,
                    connection_id,
                    log_type,
                    meaning(status, status),
                    meaning(reason, reason),
                    meaning(device_ip, device_ip),
                    meaning(username, username),
                    meaning(common_name, common_name),
                    start_ms,
                    {} if only_known(record) else _extra(record),
                    get("connection-reset-status"),
                    get("client-ip"),
                    get("client-ip-v6"),
                    get("device-type"),
                    get("transport-protocol"),
                ),
            )
        )
    stats.parsed = len(attempts)
    stats.not_json = not_json
    stats.not_object = not_object
    stats.missing_fields = missing
    stats.bad_lines = not_json + not_object + missing
    return attempts, stats


def _parse_irregular(event_id: str, timestamp_ms: int, record: dict[str, Any]) -> ConnectionAttempt | None:
    """A record lacking a field detection reads, or with a value that is not text; ``None`` when it
    lacks what identifies a connection-log record (a bad line)."""
    get = record.get
    log_type = get("connection-log-type")
    connection_id = get("connection-id")
    endpoint_id = get("client-vpn-endpoint-id")
    if (
        log_type.__class__ is not str
        or connection_id.__class__ is not str
        or endpoint_id.__class__ is not str
        or not log_type
        or not connection_id
        or not endpoint_id
    ):
        return None
    return _parse_unusual(event_id, timestamp_ms, record)


def _extra(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in _NOT_EXTRA}


def _parse_unusual(event_id: str, timestamp_ms: int, record: dict[str, Any]) -> ConnectionAttempt:
    """The slow path for records with values that are not text: each becomes its JSON text."""
    values: list[Any] = [None] * len(ConnectionAttempt._fields)
    values[EVENT_ID] = event_id
    values[TIMESTAMP_MS] = timestamp_ms
    values[EXTRA] = {}
    positions = {name: index for index, name in enumerate(ConnectionAttempt._fields)}
    for name, value in record.items():
        field = _FIELD_OF.get(name)
        if field in ("log_type", "connection_id", "endpoint_id"):
            values[positions[field]] = bounded_text(value)  # text, checked by the caller
        elif field is None:
            if name not in _DROPPED_FIELDS:
                values[EXTRA][name] = value
        elif field == "connection_start_time":
            values[CONNECTION_START_MS] = _start_ms(bounded_text(value)) if value.__class__ is str else None
        else:
            meaning = _meaning(value)
            values[positions[field]] = None if meaning is None else bounded_text(meaning)
    return _new_tuple(ConnectionAttempt, values)  # type: ignore[no-any-return]


def _meaning(value: Any) -> str | None:
    """The text of a field, or ``None`` for "not applicable" (``"NA"``, empty, missing)."""
    if value is None or value == NOT_APPLICABLE or value == "":
        return None
    return value if value.__class__ is str else json.dumps(value, sort_keys=True)


def _start_ms(value: str) -> int | None:
    """``"YYYY-MM-DD HH:MM:SS"`` in UTC (no zone in the log) as epoch ms; ``None`` for NA or unreadable."""
    if value == NOT_APPLICABLE or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        start = None
    else:
        start = _ms(parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed)
    if len(_START_TIMES) >= _START_TIMES_LIMIT:
        _START_TIMES.clear()
    _START_TIMES[value] = start
    return start
