"""Simulated client connections to a Client VPN endpoint, and the connection log AWS writes for them.

No VPN client can reach the local cloud, so demos and tests act as one: ``simulate_connect`` plays a
client's connection attempt against an endpoint of the local Client VPN backend, runs the endpoint's
client-connect handler when it has one, opens a ``ClientVpnConnection`` (listed by
DescribeClientVpnConnections, ended by TerminateClientVpnConnections) and writes the connection log
records AWS would write into the endpoint's CloudWatch Logs group, through moto's logs backend
in-process. ``advance_connections`` lets emulated time pass over the open connections: periodic update
records, disconnects at the planned end or at the session timeout, and the end record.

Behaviour and the choices behind it (sources: /work/shared/specs/connection-logs.md and
clientvpn-api.md, the AWS Client VPN administrator guide, botocore's EC2 model):

* Record fields: exactly the 20 fields of AWS's documented example, in its order (``username``
  included, ``"NA"`` unless the endpoint authenticates users with Active Directory or SAML), then
  ``posture-compliance-statuses`` and ``connection-duration-seconds``, in the order the spec's field
  list names them after ``username``; always present, since the spec gives a failed attempt ``"NA"``
  for the duration. ``client-ip-v6`` is left out: it belongs to dual-stack endpoints, which the local backend
  does not model, and AWS's IPv4 example has no such key. ``authorization-policy-evaluation`` appears
  only with an authorization policy, which is not simulated. Every value is a string; the posture
  statuses, a list in the handler's answer, are joined with commas (``"NA"`` when there are none).
* Durations: ``"NA"`` on a failed attempt (the spec); our choice elsewhere: ``"0"`` on the first
  record of a successful connection, the seconds elapsed so far on periodic updates, the final value on
  the end record.
* Failed mutual-TLS (certificate) attempts are not logged at all, as AWS documents; they are counted
  per endpoint instead (AWS/ClientVPN ``AuthenticationFailures``, also put into moto's CloudWatch).
  A client that presents a certificate (``client_certificate``) is judged as OpenVPN judges it: it
  must be signed by a certificate of the client root chain the endpoint names in ACM, be within its
  validity at the emulated now, and its serial must not be in the revocation list imported into the
  endpoint; otherwise the handshake fails that way (nothing logged, one authentication failure).
* An endpoint that is not ``available`` (no completed subnet association) cannot be reached by a
  client, so such an attempt writes nothing and counts nothing.
* A failed attempt still has a connection id (AWS hands it to the client-connect handler before the
  verdict) but is not added to ``endpoint.connections``: the API's connection statuses (active,
  failed-to-terminate, terminating, terminated) have none for an attempt that never connected.
* Periodic updates: AWS logs an open connection again with new counters and last-update time but
  documents no interval. ``PERIODIC_UPDATE_INTERVAL_SECONDS`` (5 emulated minutes, configurable per
  endpoint through ``advance_connections``) is our assumption, not a documented AWS value.
* Log stream: when ConnectionLogOptions names none, AWS creates one itself. Its name is not documented;
  we follow the form seen in consoles, ``<endpoint-id>-<region>-<YYYY/MM/DD>-<12 random letters and
  digits>`` (recollection of real accounts, not verified against a public source here), created once
  per endpoint.
* Client-connect handler request: AWS documents the keys with placeholders, not types; we send every
  value as a string: ``groups`` joined with commas, ``username`` empty when the endpoint authenticates
  no users, ``platform`` the device type unless given.
* Client VPN waits 30 seconds for the handler's answer, then refuses the connection with
  ``client-connect-handler-timed-out`` (the handler may still be running; its late answer is ignored).
  The wait is measured in real seconds, like Lambda's own timeouts: it bounds how long code runs, and
  in emulated seconds a fast time scale would turn an ordinary cold start into a timeout. A
  ``Sandbox.Timedout`` answer from Lambda is a timeout too.
* Terminating answers CurrentStatus ``terminated`` at once (AWS may first answer ``terminating``; the
  local cloud has nothing to wait for), after writing the periodic updates due before the termination.
* DescribeClientVpnConnections lists connections terminated in the last 60 minutes;
  ``advance_connections`` drops older terminated ones from ``endpoint.connections``.
* moto's PutLogEvents drops events more than 2 hours ahead of (or 14 days behind) the *real* clock,
  while the local cloud's "now" is the emulated clock, which may run ahead. Events outside moto's window
  are appended to the stream directly, since on AWS they would be current.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import random
import secrets
import string
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from localcloud.clock import get_clock

__all__ = [
    "CLIENT_CONNECT_FAILURE_REASONS",
    "CLIENT_CONNECT_HANDLER_TIMEOUT_SECONDS",
    "CONNECTION_LOG_FIELDS",
    "MUTUAL_TLS_AUTHENTICATION_FAILED",
    "PERIODIC_UPDATE_INTERVAL_SECONDS",
    "TERMINATED_CONNECTION_RETENTION_SECONDS",
    "ClientConnectHandlerServiceError",
    "ClientConnectHandlerThrottled",
    "ClientVpnConnection",
    "ConnectionAttemptResult",
    "InvokeHandler",
    "UnknownClientVpnConnection",
    "advance_connections",
    "authentication_failure_count",
    "authentication_failure_count_by_id",
    "client_certificate_problem",
    "default_log_stream_name",
    "invoke_with_moto_lambda",
    "simulate_connect",
    "simulate_connect_by_id",
    "simulate_disconnect",
]

logger = logging.getLogger(__name__)

CONNECTION_LOG_FIELDS: tuple[str, ...] = (
    "connection-log-type",
    "connection-attempt-status",
    "connection-reset-status",
    "connection-attempt-failure-reason",
    "connection-id",
    "client-vpn-endpoint-id",
    "transport-protocol",
    "connection-start-time",
    "connection-last-update-time",
    "client-ip",
    "common-name",
    "device-type",
    "device-ip",
    "port",
    "ingress-bytes",
    "egress-bytes",
    "ingress-packets",
    "egress-packets",
    "connection-end-time",
    "username",
    "posture-compliance-statuses",
    "connection-duration-seconds",
)
"""Keys of every connection log record, in the order they are written."""

NOT_APPLICABLE = "NA"
LOG_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

PERIODIC_UPDATE_INTERVAL_SECONDS = 300.0
"""Emulated seconds between two records of the same open connection (our assumption; see module doc)."""

CLIENT_CONNECT_HANDLER_TIMEOUT_SECONDS = 30.0
"""Real seconds Client VPN waits for the client-connect handler, whatever the function's own timeout."""

TERMINATED_CONNECTION_RETENTION_SECONDS = 3600.0
"""DescribeClientVpnConnections lists connections terminated within the last 60 minutes."""

MUTUAL_TLS_AUTHENTICATION_FAILED = "mutual-tls-authentication-failed"
"""Local marker for ``failure_reason``: the client certificate was refused. Never written to a log."""

CLIENT_CONNECT_FAILED = "client-connect-failed"
CLIENT_CONNECT_HANDLER_TIMED_OUT = "client-connect-handler-timed-out"
CLIENT_CONNECT_HANDLER_OTHER_EXECUTION_ERROR = "client-connect-handler-other-execution-error"
CLIENT_CONNECT_HANDLER_THROTTLED = "client-connect-handler-throttled"
CLIENT_CONNECT_HANDLER_INVALID_RESPONSE = "client-connect-handler-invalid-response"
CLIENT_CONNECT_HANDLER_SERVICE_ERROR = "client-connect-handler-service-error"
CLIENT_CONNECT_FAILURE_REASONS: frozenset[str] = frozenset(
    {
        CLIENT_CONNECT_FAILED,
        CLIENT_CONNECT_HANDLER_TIMED_OUT,
        CLIENT_CONNECT_HANDLER_OTHER_EXECUTION_ERROR,
        CLIENT_CONNECT_HANDLER_THROTTLED,
        CLIENT_CONNECT_HANDLER_INVALID_RESPONSE,
        CLIENT_CONNECT_HANDLER_SERVICE_ERROR,
    }
)

CERTIFICATE_AUTHENTICATION = "certificate-authentication"
USER_AUTHENTICATION_TYPES = frozenset({"directory-service-authentication", "federated-authentication"})

HANDLER_SCHEMA_VERSION = "v2"
MAX_DENIAL_MESSAGE_CHARS = 255
MAX_POSTURE_COMPLIANCE_STATUSES = 10

AUTHENTICATION_FAILURES_METRIC_NAMESPACE = "AWS/ClientVPN"
AUTHENTICATION_FAILURES_METRIC_NAME = "AuthenticationFailures"

_DEFAULT_PLATFORM_VERSIONS = {"mac": "14.5", "windows": "10.0.22631", "linux": "6.8.0", "ios": "17.5"}

InvokeHandler = Callable[[str, dict[str, Any]], tuple[str | None, bytes]]
"""``invoke_handler(function_arn, request) -> (function_error or None, response payload bytes)``.

Raise ``ClientConnectHandlerThrottled`` when Lambda throttles the invocation and
``ClientConnectHandlerServiceError`` when Lambda itself fails (function missing, service fault).
"""


class ClientConnectHandlerThrottled(Exception):
    """Lambda refused to run the client-connect handler (TooManyRequestsException)."""


class ClientConnectHandlerServiceError(Exception):
    """Lambda could not run the client-connect handler (missing function, service fault)."""


class UnknownClientVpnConnection(LookupError):
    """No connection with that id exists on the endpoint."""


def _log_time(moment: datetime | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC, or ``"NA"``."""
    if moment is None:
        return NOT_APPLICABLE
    return moment.astimezone(UTC).strftime(LOG_TIME_FORMAT)


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _new_connection_id() -> str:
    return "cvpn-connection-" + secrets.token_hex(9)[:17]


def _authentication_types(endpoint: Any) -> set[str]:
    return {str(option.get("Type")) for option in (endpoint.authentication_options or [])}


def _uses_mutual_tls(endpoint: Any) -> bool:
    return CERTIFICATE_AUTHENTICATION in _authentication_types(endpoint)


def _uses_user_authentication(endpoint: Any) -> bool:
    return bool(_authentication_types(endpoint) & USER_AUTHENTICATION_TYPES)


@dataclass
class _EndpointSimulation:
    """What the simulation remembers about one endpoint; lives on the endpoint object itself."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    authentication_failures: int = 0
    default_log_stream: str | None = None
    update_interval_seconds: float = PERIODIC_UPDATE_INTERVAL_SECONDS


_STATE_ATTRIBUTE = "_connection_simulation"
_state_creation_lock = threading.Lock()


def _simulation(endpoint: Any) -> _EndpointSimulation:
    """The simulation state of ``endpoint``, created on first use.

    It is stored on the endpoint object, so it disappears with the backend when moto resets, and
    nothing carries over from one test to the next.
    """
    state = getattr(endpoint, _STATE_ATTRIBUTE, None)
    if state is None:
        with _state_creation_lock:
            state = getattr(endpoint, _STATE_ATTRIBUTE, None)
            if state is None:
                state = _EndpointSimulation()
                setattr(endpoint, _STATE_ATTRIBUTE, state)
    return state


# --------------------------------------------------------------------------------------------------
# Connection log delivery (moto's CloudWatch Logs backend, in-process)
# --------------------------------------------------------------------------------------------------


def default_log_stream_name(endpoint: Any, now: datetime) -> str:
    """The stream Client VPN creates when ConnectionLogOptions names none (form: see module doc)."""
    alphabet = string.ascii_letters + string.digits
    token = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"{endpoint.id}-{endpoint.region}-{now.astimezone(UTC):%Y/%m/%d}-{token}"


def _log_destination(endpoint: Any, now: datetime) -> tuple[str, str] | None:
    """(log group, log stream) for the endpoint's records, or None when logging is off."""
    options: Mapping[str, Any] = endpoint.connection_log_options or {}
    if not options.get("Enabled"):
        return None
    group = options.get("CloudwatchLogGroup")
    if not group:
        return None
    stream = options.get("CloudwatchLogStream")
    if not stream:
        state = _simulation(endpoint)
        with state.lock:
            if state.default_log_stream is None:
                state.default_log_stream = default_log_stream_name(endpoint, now)
            stream = state.default_log_stream
    return str(group), str(stream)


def _write_connection_log(endpoint: Any, records: Sequence[tuple[datetime, dict[str, str]]]) -> bool:
    """Put ``records`` (time, record) into the endpoint's log stream, creating the stream if missing.

    Returns False when nothing was written: logging disabled, or the log group no longer exists (AWS
    then fails to deliver, silently for the client).
    """
    if not records:
        return False
    destination = _log_destination(endpoint, records[0][0])
    if destination is None:
        return False
    group, stream = destination

    from moto.logs.exceptions import ResourceNotFoundException
    from moto.logs.models import logs_backends

    from localcloud.logs import put_log_events

    logs = logs_backends[endpoint.account_id][endpoint.region]
    ordered = sorted(records, key=lambda item: item[0])
    events: list[dict[str, Any]] = [
        {"timestamp": _millis(moment), "message": json.dumps(record, separators=(",", ":"))}
        for moment, record in ordered
    ]
    try:
        logs.ensure_log_stream(group, stream)
    except ResourceNotFoundException:
        logger.warning("connection log group %s of %s does not exist: records dropped", group, endpoint.id)
        return False
    _, rejected = put_log_events(logs, group, stream, events)
    if rejected:
        logger.warning("connection log records of %s refused by CloudWatch Logs: %s", endpoint.id, rejected)
    return True


def _put_authentication_failure_metric(endpoint: Any, now: datetime) -> None:
    """Record one AWS/ClientVPN AuthenticationFailures datum in moto's CloudWatch backend."""
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends[endpoint.account_id][endpoint.region].put_metric_data(
        AUTHENTICATION_FAILURES_METRIC_NAMESPACE,
        [
            {
                "MetricName": AUTHENTICATION_FAILURES_METRIC_NAME,
                "Dimensions": [{"Name": "Endpoint", "Value": endpoint.id}],
                "Value": 1.0,
                "Unit": "Count",
                "Timestamp": now.astimezone(UTC).replace(tzinfo=None),
            }
        ],
    )


# --------------------------------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class ClientVpnConnection:
    """One client connection to an endpoint, as DescribeClientVpnConnections shows it.

    ``status`` is the API's status code: active, then terminated (terminating and failed-to-terminate
    do not last long enough to observe in the local cloud).
    """

    endpoint: Any
    connection_id: str
    common_name: str
    username: str | None
    client_ip: str
    device_ip: str
    device_type: str
    port: int
    transport_protocol: str
    established_at: datetime
    last_update_at: datetime
    planned_end_at: datetime | None = None
    end_at: datetime | None = None
    status: str = "active"
    status_message: str | None = None
    ingress_bytes: int = 0
    egress_bytes: int = 0
    ingress_packets: int = 0
    egress_packets: int = 0
    posture_compliance_statuses: tuple[str, ...] = ()
    _traffic: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def endpoint_id(self) -> str:
        return str(self.endpoint.id)

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def session_expires_at(self) -> datetime:
        """When the endpoint's session timeout (SessionTimeoutHours, default 24) disconnects it."""
        hours = getattr(self.endpoint, "session_timeout_hours", None) or 24
        return self.established_at + timedelta(hours=float(hours))

    def log_record(self, at: datetime) -> dict[str, str]:
        """The connection log record of this connection as of ``at`` (a successful attempt)."""
        duration = int((min(at, self.end_at or at) - self.established_at).total_seconds())
        return _connection_log_record(
            attempt_status="successful",
            failure_reason=NOT_APPLICABLE,
            connection_id=self.connection_id,
            endpoint_id=self.endpoint_id,
            transport_protocol=self.transport_protocol,
            start_time=_log_time(self.established_at),
            last_update_time=_log_time(at),
            client_ip=self.client_ip,
            common_name=self.common_name,
            device_type=self.device_type,
            device_ip=self.device_ip,
            port=str(self.port),
            counters=(self.ingress_bytes, self.egress_bytes, self.ingress_packets, self.egress_packets),
            end_time=_log_time(self.end_at),
            username=self.username or NOT_APPLICABLE,
            posture_compliance_statuses=self.posture_compliance_statuses,
            duration_seconds=str(max(duration, 0)),
        )

    def to_api(self, now: datetime | None = None) -> dict[str, Any]:
        """botocore's ClientVpnConnection shape (DescribeClientVpnConnections)."""
        moment = now or get_clock().now()
        status: dict[str, str] = {"Code": self.status}
        if self.status_message:
            status["Message"] = self.status_message
        item: dict[str, Any] = {
            "ClientVpnEndpointId": self.endpoint_id,
            "Timestamp": _log_time(moment),
            "ConnectionId": self.connection_id,
            "ConnectionEstablishedTime": _log_time(self.established_at),
            "IngressBytes": str(self.ingress_bytes),
            "EgressBytes": str(self.egress_bytes),
            "IngressPackets": str(self.ingress_packets),
            "EgressPackets": str(self.egress_packets),
            "ClientIp": self.client_ip,
            "CommonName": self.common_name,
            "Status": status,
            "PostureComplianceStatuses": list(self.posture_compliance_statuses),
        }
        if self.username:
            item["Username"] = self.username
        if self.end_at is not None:
            item["ConnectionEndTime"] = _log_time(self.end_at)
        return item

    def add_traffic(self, seconds: float) -> None:
        """Grow the byte and packet counters as ``seconds`` of ordinary use would."""
        if seconds <= 0:
            return
        ingress = int(self._traffic.uniform(200, 8_000) * seconds)
        egress = int(self._traffic.uniform(1_000, 60_000) * seconds)
        self.ingress_bytes += ingress
        self.egress_bytes += egress
        self.ingress_packets += max(1, ingress // 180)
        self.egress_packets += max(1, egress // 1_100)

    def catch_up(
        self, moment: datetime, update_interval_seconds: float
    ) -> list[tuple[datetime, dict[str, str]]]:
        """Bring an active connection to ``moment`` and return the records due, oldest first.

        One periodic update per whole interval since the last record, then the end record when the
        client's planned disconnect or the session timeout falls at or before ``moment``. Writes nothing.
        """
        if not self.is_active:
            return []
        interval = timedelta(seconds=update_interval_seconds)
        ends_at = self.session_expires_at
        if self.planned_end_at is not None:
            ends_at = min(ends_at, self.planned_end_at)
        records: list[tuple[datetime, dict[str, str]]] = []
        while (at := self.last_update_at + interval) <= moment and at < ends_at:
            self.add_traffic(update_interval_seconds)
            self.last_update_at = at
            records.append((at, self.log_record(at)))
        if ends_at <= moment:
            records.append(self._end(ends_at))
        return records

    def _end(self, at: datetime, message: str | None = None) -> tuple[datetime, dict[str, str]]:
        """Mark the connection terminated at ``at`` and return its end record."""
        at = max(at, self.last_update_at)
        self.add_traffic((at - self.last_update_at).total_seconds())
        self.status = "terminated"
        self.status_message = message
        self.end_at = at
        self.last_update_at = at
        return at, self.log_record(at)

    def terminate(self, now: datetime | None = None, *, message: str | None = None) -> dict[str, Any]:
        """End the connection at ``now`` and write its end record (TerminateClientVpnConnections).

        The periodic updates due before ``now`` are written first; a connection whose session timeout or
        planned disconnect came before ``now`` had already ended then. An already terminated connection
        is reported as such and logs nothing new. Returns botocore's TerminateConnectionStatus shape.
        """
        moment = now or get_clock().now()
        simulation = _simulation(self.endpoint)
        with simulation.lock:
            records = self.catch_up(moment, simulation.update_interval_seconds)
            previous = self.status
            if self.is_active:
                records.append(self._end(moment, message))
            _write_connection_log(self.endpoint, records)
            return {
                "ConnectionId": self.connection_id,
                "PreviousStatus": {"Code": previous},
                "CurrentStatus": {"Code": self.status},
            }


def _connection_log_record(
    *,
    attempt_status: str,
    failure_reason: str,
    connection_id: str,
    endpoint_id: str,
    transport_protocol: str,
    start_time: str,
    last_update_time: str,
    client_ip: str,
    common_name: str,
    device_type: str,
    device_ip: str,
    port: str,
    counters: tuple[int, int, int, int],
    end_time: str,
    username: str,
    posture_compliance_statuses: Sequence[str],
    duration_seconds: str,
) -> dict[str, str]:
    """One connection-attempt record, keys in ``CONNECTION_LOG_FIELDS`` order, every value a string."""
    ingress_bytes, egress_bytes, ingress_packets, egress_packets = counters
    record = {
        "connection-log-type": "connection-attempt",
        "connection-attempt-status": attempt_status,
        "connection-reset-status": NOT_APPLICABLE,
        "connection-attempt-failure-reason": failure_reason,
        "connection-id": connection_id,
        "client-vpn-endpoint-id": endpoint_id,
        "transport-protocol": transport_protocol,
        "connection-start-time": start_time,
        "connection-last-update-time": last_update_time,
        "client-ip": client_ip,
        "common-name": common_name,
        "device-type": device_type,
        "device-ip": device_ip,
        "port": port,
        "ingress-bytes": str(ingress_bytes),
        "egress-bytes": str(egress_bytes),
        "ingress-packets": str(ingress_packets),
        "egress-packets": str(egress_packets),
        "connection-end-time": end_time,
        "username": username,
        "posture-compliance-statuses": ",".join(posture_compliance_statuses) or NOT_APPLICABLE,
        "connection-duration-seconds": duration_seconds,
    }
    assert tuple(record) == CONNECTION_LOG_FIELDS
    return record


def _allocate_client_ip(endpoint: Any) -> str:
    """The lowest free address of the client CIDR, skipping the network and first addresses."""
    if endpoint.client_cidr_block is None:
        raise RuntimeError(
            f"{endpoint.id} carries IPv6 traffic only; the connection simulator assigns IPv4 client "
            "addresses from the client CIDR and cannot connect to it"
        )
    network = ipaddress.ip_network(str(endpoint.client_cidr_block), strict=False)
    in_use = {
        conn.client_ip
        for conn in endpoint.connections.values()
        if isinstance(conn, ClientVpnConnection) and conn.is_active
    }
    first_host = int(network.network_address) + 2
    last_host = int(network.broadcast_address) - 1
    for value in range(first_host, last_host + 1):
        candidate = str(ipaddress.ip_address(value))
        if candidate not in in_use:
            return candidate
    raise RuntimeError(f"client CIDR {network} of {endpoint.id} has no free address")


# --------------------------------------------------------------------------------------------------
# Client-connect handler
# --------------------------------------------------------------------------------------------------


def invoke_with_moto_lambda(function_arn: str, request: dict[str, Any]) -> tuple[str | None, bytes]:
    """Invoke the handler synchronously through moto's Lambda backend, in-process.

    Uses the backend moto's own Lambda API uses (``moto.awslambda.utils.get_backend``), so functions
    created with boto3 are found; the local cloud patches that backend's ``invoke`` to run the code.
    """
    from moto.awslambda.utils import get_backend

    parts = function_arn.split(":")
    if len(parts) < 7 or parts[2] != "lambda":
        raise ClientConnectHandlerServiceError(f"not a Lambda function ARN: {function_arn}")
    region, account_id = parts[3], parts[4]
    response_headers: dict[str, Any] = {}
    try:
        backend = get_backend(account_id, region)
        backend.get_function(function_arn)  # moto's Docker-less invoke does not check that it exists
        payload = backend.invoke(function_arn, None, json.dumps(request), {}, response_headers)
    except Exception as exc:
        name = type(exc).__name__ + " " + str(getattr(exc, "code", ""))
        if "TooManyRequests" in name or "Throttl" in name:
            raise ClientConnectHandlerThrottled(str(exc)) from exc
        raise ClientConnectHandlerServiceError(f"{type(exc).__name__}: {exc}") from exc
    if payload is None:
        body = b""
    elif isinstance(payload, str):
        body = payload.encode()
    else:
        body = bytes(payload)
    return response_headers.get("x-amz-function-error"), body


@dataclass(frozen=True)
class _HandlerVerdict:
    failure_reason: str | None
    denial_message: str | None = None
    posture_compliance_statuses: tuple[str, ...] = ()
    detail: str = ""


def _is_timeout(function_error: str, body: bytes) -> bool:
    try:
        answer = json.loads(body or b"null")
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        error_type = str(answer.get("errorType", ""))
        error_message = str(answer.get("errorMessage", ""))
        if error_type == "Sandbox.Timedout" or "Task timed out" in error_message:
            return True
    return "Timedout" in function_error or "timed out" in body.decode(errors="replace")


def _judge_handler_answer(function_error: str | None, body: bytes) -> _HandlerVerdict:
    """Map the handler's answer to Client VPN's verdict, as AWS does."""
    if function_error:
        if _is_timeout(function_error, body):
            return _HandlerVerdict(CLIENT_CONNECT_HANDLER_TIMED_OUT, detail="handler timed out")
        return _HandlerVerdict(
            CLIENT_CONNECT_HANDLER_OTHER_EXECUTION_ERROR,
            detail=f"handler failed ({function_error}): {body[:200].decode(errors='replace')}",
        )
    try:
        answer = json.loads(body)
    except ValueError:
        return _HandlerVerdict(CLIENT_CONNECT_HANDLER_INVALID_RESPONSE, detail="answer is not JSON")
    if not isinstance(answer, dict):
        return _HandlerVerdict(CLIENT_CONNECT_HANDLER_INVALID_RESPONSE, detail="answer is not an object")
    allow = answer.get("allow")
    if not isinstance(allow, bool):
        return _HandlerVerdict(CLIENT_CONNECT_HANDLER_INVALID_RESPONSE, detail="'allow' is not a boolean")
    message = answer.get("error-msg-on-denied-connection")
    if message is not None and (not isinstance(message, str) or len(message) > MAX_DENIAL_MESSAGE_CHARS):
        return _HandlerVerdict(
            CLIENT_CONNECT_HANDLER_INVALID_RESPONSE,
            detail=f"'error-msg-on-denied-connection' is not a string of at most {MAX_DENIAL_MESSAGE_CHARS}",
        )
    statuses = answer.get("posture-compliance-statuses", [])
    if statuses is None:
        statuses = []
    if (
        not isinstance(statuses, list)
        or len(statuses) > MAX_POSTURE_COMPLIANCE_STATUSES
        or not all(isinstance(status, str) for status in statuses)
    ):
        return _HandlerVerdict(
            CLIENT_CONNECT_HANDLER_INVALID_RESPONSE,
            detail=f"'posture-compliance-statuses' is not a list of at most "
            f"{MAX_POSTURE_COMPLIANCE_STATUSES} strings",
        )
    posture = tuple(statuses)
    if not allow:
        return _HandlerVerdict(
            CLIENT_CONNECT_FAILED,
            denial_message=message,
            posture_compliance_statuses=posture,
            detail=f"handler denied the connection: {message or ''}".rstrip(": "),
        )
    return _HandlerVerdict(None, posture_compliance_statuses=posture, detail="handler allowed")


class _PendingHandlerAnswer:
    """One invocation of the handler, run on its own thread so that the caller can stop waiting."""

    def __init__(self, invoke_handler: InvokeHandler, function_arn: str, request: dict[str, Any]) -> None:
        self._done = threading.Event()
        self._answer: tuple[str | None, bytes] | None = None
        self._error: Exception | None = None
        threading.Thread(
            target=self._run,
            args=(invoke_handler, function_arn, request),
            name=f"client-connect-{request.get('connection-id', '')}",
            daemon=True,
        ).start()

    def _run(self, invoke_handler: InvokeHandler, function_arn: str, request: dict[str, Any]) -> None:
        try:
            self._answer = invoke_handler(function_arn, request)
        except Exception as exc:  # handed to the waiting caller, which raises it there
            self._error = exc
        finally:
            self._done.set()

    def wait(self, timeout_seconds: float) -> tuple[str | None, bytes] | None:
        """The handler's answer, or None when it has not come within ``timeout_seconds`` real seconds."""
        if not self._done.wait(timeout_seconds):
            return None
        if self._error is not None:
            raise self._error
        assert self._answer is not None
        return self._answer


def _run_client_connect_handler(
    function_arn: str, request: dict[str, Any], invoke_handler: InvokeHandler, timeout_seconds: float
) -> _HandlerVerdict:
    pending = _PendingHandlerAnswer(invoke_handler, function_arn, request)
    try:
        answer = pending.wait(timeout_seconds)
    except ClientConnectHandlerThrottled as exc:
        return _HandlerVerdict(CLIENT_CONNECT_HANDLER_THROTTLED, detail=f"handler throttled: {exc}")
    except ClientConnectHandlerServiceError as exc:
        return _HandlerVerdict(CLIENT_CONNECT_HANDLER_SERVICE_ERROR, detail=f"Lambda failed: {exc}")
    if answer is None:
        return _HandlerVerdict(
            CLIENT_CONNECT_HANDLER_TIMED_OUT,
            detail=f"handler did not answer within {timeout_seconds:g} s",
        )
    function_error, body = answer
    return _judge_handler_answer(function_error, body)


# --------------------------------------------------------------------------------------------------
# Connection attempts
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionAttemptResult:
    """What happened to one simulated connection attempt.

    ``connected`` is True when a connection was opened (``connection`` is then set). ``logged`` says
    whether a record was written (``record`` is the record built, even when logging is disabled).
    ``counted_as_authentication_failure`` marks failed mutual-TLS attempts, which AWS does not log.
    """

    connected: bool
    endpoint_id: str
    detail: str
    connection_id: str | None = None
    failure_reason: str | None = None
    logged: bool = False
    record: dict[str, str] | None = None
    connection: ClientVpnConnection | None = None
    error_msg_on_denied_connection: str | None = None
    posture_compliance_statuses: tuple[str, ...] = ()
    counted_as_authentication_failure: bool = False


@dataclass(frozen=True)
class _ClientAttempt:
    """The client's side of one attempt: who, from where, when, under which connection id."""

    now: datetime
    connection_id: str
    common_name: str
    username: str | None
    device_ip: str
    device_type: str
    port: int


def _failed_attempt(
    endpoint: Any,
    attempt: _ClientAttempt,
    *,
    failure_reason: str,
    detail: str,
    denial_message: str | None = None,
    posture_compliance_statuses: tuple[str, ...] = (),
) -> ConnectionAttemptResult:
    """Log a failed attempt (when logging is on) and describe it."""
    record = _connection_log_record(
        attempt_status="failed",
        failure_reason=failure_reason,
        connection_id=attempt.connection_id,
        endpoint_id=str(endpoint.id),
        transport_protocol=str(endpoint.transport_protocol),
        start_time=NOT_APPLICABLE,
        last_update_time=_log_time(attempt.now),
        client_ip=NOT_APPLICABLE,
        common_name=attempt.common_name,
        device_type=attempt.device_type,
        device_ip=attempt.device_ip,
        port=str(attempt.port),
        counters=(0, 0, 0, 0),
        end_time=NOT_APPLICABLE,
        username=attempt.username or NOT_APPLICABLE,
        posture_compliance_statuses=posture_compliance_statuses,
        duration_seconds=NOT_APPLICABLE,
    )
    logged = _write_connection_log(endpoint, [(attempt.now, record)])
    return ConnectionAttemptResult(
        connected=False,
        endpoint_id=str(endpoint.id),
        detail=detail,
        connection_id=attempt.connection_id,
        failure_reason=failure_reason,
        logged=logged,
        record=record,
        error_msg_on_denied_connection=denial_message,
        posture_compliance_statuses=posture_compliance_statuses,
    )


def _client_root_certificates(endpoint: Any) -> list[Any]:
    """The certificates of the client root chain(s) the endpoint's mutual authentication names."""
    from cryptography import x509

    from localcloud.clientvpn.references import certificate_authority_pem, find_certificate

    found = []
    for option in endpoint.authentication_options or []:
        if option.get("Type") != CERTIFICATE_AUTHENTICATION:
            continue
        mutual = option.get("MutualAuthentication") or {}
        arn = mutual.get("ClientRootCertificateChainArn") or mutual.get("ClientRootCertificateChain")
        bundle = find_certificate(
            str(endpoint.account_id), str(endpoint.region), str(arn or ""), "Client root"
        )
        pem = certificate_authority_pem(bundle) + "\n" + bundle.cert.decode()
        found.extend(x509.load_pem_x509_certificates(pem.encode()))
    return found


def client_certificate_problem(endpoint: Any, certificate_pem: str, now: datetime) -> str | None:
    """Why the endpoint refuses ``certificate_pem`` in the handshake, None when it accepts it."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError:
        return "the client certificate is not a PEM certificate"
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        return (
            f"the client certificate is valid {certificate.not_valid_before_utc} "
            f"to {certificate.not_valid_after_utc}"
        )
    issuer = None
    for root in _client_root_certificates(endpoint):
        if root.subject != certificate.issuer:
            continue
        try:
            certificate.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        issuer = root
        break
    if issuer is None:
        return "the client certificate does not chain to the endpoint's client root certificate"
    revocation_list = getattr(endpoint, "certificate_revocation_list", None)
    if revocation_list:
        crl = x509.load_pem_x509_crl(str(revocation_list).encode())
        if crl.issuer == certificate.issuer and crl.get_revoked_certificate_by_serial_number(
            certificate.serial_number
        ):
            return f"the client certificate (serial {certificate.serial_number:x}) is revoked"
    return None


def _refuse_client_certificate(endpoint: Any, now: datetime, why: str = "") -> ConnectionAttemptResult:
    """A failed mutual-TLS handshake: not logged by AWS, counted in AuthenticationFailures."""
    simulation = _simulation(endpoint)
    with simulation.lock:
        simulation.authentication_failures += 1
    _put_authentication_failure_metric(endpoint, now)
    return ConnectionAttemptResult(
        connected=False,
        endpoint_id=str(endpoint.id),
        detail=f"mutual TLS authentication failed{': ' + why if why else ''}: not logged (AWS does not "
        "log these), counted in AWS/ClientVPN AuthenticationFailures",
        failure_reason=MUTUAL_TLS_AUTHENTICATION_FAILED,
        counted_as_authentication_failure=True,
    )


def simulate_connect(
    endpoint: Any,
    *,
    username: str | None = None,
    common_name: str = "client1",
    device_ip: str = "203.0.113.10",
    device_type: str = "mac",
    platform: str | None = None,
    platform_version: str | None = None,
    outcome: Literal["success", "failure"] = "success",
    failure_reason: str | None = None,
    duration_seconds: float | None = None,
    client_openvpn_version: str = "2.6.12",
    port: int | None = None,
    groups: Sequence[str] | None = None,
    invoke_handler: InvokeHandler | None = None,
    handler_timeout_seconds: float = CLIENT_CONNECT_HANDLER_TIMEOUT_SECONDS,
    client_certificate: str | None = None,
) -> ConnectionAttemptResult:
    """Play one client's connection attempt against ``endpoint`` at the emulated clock's now.

    ``client_certificate`` (PEM) is the certificate the client presents on a mutual-TLS endpoint: the
    endpoint checks it (see the module doc) and its common name is the connection's ``common_name``.

    ``outcome="failure"`` makes authentication fail. With ``failure_reason`` None (or
    ``MUTUAL_TLS_AUTHENTICATION_FAILED``) on an endpoint using certificate authentication, the client
    certificate is refused: nothing is logged, the endpoint's authentication failure count grows.
    Otherwise the failure is a user-credential failure (Active Directory, SAML) logged with
    ``failure_reason`` as opaque text (``"NA"`` when None), or any documented reason given explicitly.

    ``outcome="success"`` authenticates, then asks the client-connect handler when the endpoint has one
    (``invoke_handler``, default ``invoke_with_moto_lambda``), then opens the connection. The handler
    has ``handler_timeout_seconds`` real seconds to answer (Client VPN's limit unless a test shortens it).
    ``duration_seconds`` makes the client disconnect by itself that long after connecting (applied by
    ``advance_connections``); without it the connection lasts until terminated or the session timeout.
    ``username`` is required on endpoints with user-based authentication and not logged otherwise.
    """
    clock = get_clock()
    now = clock.now()
    endpoint_id = str(endpoint.id)
    state = str(endpoint.state)
    if state != "available":
        return ConnectionAttemptResult(
            connected=False,
            endpoint_id=endpoint_id,
            detail=f"endpoint {endpoint_id} is {state}, not available: without a completed subnet "
            "association no client can reach it, so nothing is logged",
        )
    if outcome not in ("success", "failure"):
        raise ValueError(f"outcome must be 'success' or 'failure', got {outcome!r}")
    if (
        isinstance(handler_timeout_seconds, bool)
        or not isinstance(handler_timeout_seconds, int | float)
        or not 0 < handler_timeout_seconds < math.inf
    ):
        raise ValueError(
            f"handler_timeout_seconds must be a finite number of seconds > 0, got {handler_timeout_seconds!r}"
        )

    mutual_tls = _uses_mutual_tls(endpoint)
    user_authentication = _uses_user_authentication(endpoint)
    if user_authentication and not username:
        raise ValueError(f"endpoint {endpoint_id} authenticates users: pass username")
    logged_username = username if user_authentication else None
    client_port = port if port is not None else random.randint(49152, 65535)
    connection_id = _new_connection_id()
    attempt = _ClientAttempt(
        now=now,
        connection_id=connection_id,
        common_name=common_name,
        username=logged_username,
        device_ip=device_ip,
        device_type=device_type,
        port=client_port,
    )

    if client_certificate is not None and outcome == "success":
        if not mutual_tls:
            raise ValueError(f"endpoint {endpoint_id} does not use certificate authentication")
        problem = client_certificate_problem(endpoint, client_certificate, now)
        if problem is not None:
            return _refuse_client_certificate(endpoint, now, problem)
        attempt = _ClientAttempt(
            now=now,
            connection_id=connection_id,
            common_name=_common_name(client_certificate) or common_name,
            username=logged_username,
            device_ip=device_ip,
            device_type=device_type,
            port=client_port,
        )
        common_name = attempt.common_name

    if outcome == "failure":
        tls_failure = failure_reason == MUTUAL_TLS_AUTHENTICATION_FAILED or (
            failure_reason is None and mutual_tls
        )
        if tls_failure:
            if not mutual_tls:
                raise ValueError(f"endpoint {endpoint_id} does not use certificate authentication")
            return _refuse_client_certificate(endpoint, now)
        reason = failure_reason or NOT_APPLICABLE
        return _failed_attempt(
            endpoint, attempt, failure_reason=reason, detail=f"authentication failed: {reason}"
        )

    posture: tuple[str, ...] = ()
    connect_options: Mapping[str, Any] = endpoint.client_connect_options or {}
    if connect_options.get("Enabled") and connect_options.get("LambdaFunctionArn"):
        request = {
            "connection-id": connection_id,
            "endpoint-id": endpoint_id,
            "common-name": common_name,
            "username": logged_username or "",
            "platform": platform or device_type,
            "platform-version": platform_version
            if platform_version is not None
            else _DEFAULT_PLATFORM_VERSIONS.get(device_type, ""),
            "public-ip": device_ip,
            "client-openvpn-version": client_openvpn_version,
            "groups": ",".join(groups or ()),
            "schema-version": HANDLER_SCHEMA_VERSION,
        }
        verdict = _run_client_connect_handler(
            str(connect_options["LambdaFunctionArn"]),
            request,
            invoke_handler or invoke_with_moto_lambda,
            float(handler_timeout_seconds),
        )
        if verdict.failure_reason is not None:
            return _failed_attempt(
                endpoint,
                attempt,
                failure_reason=verdict.failure_reason,
                detail=verdict.detail,
                denial_message=verdict.denial_message,
                posture_compliance_statuses=verdict.posture_compliance_statuses,
            )
        posture = verdict.posture_compliance_statuses

    simulation = _simulation(endpoint)
    with simulation.lock:
        connection = ClientVpnConnection(
            endpoint=endpoint,
            connection_id=connection_id,
            common_name=common_name,
            username=logged_username,
            client_ip=_allocate_client_ip(endpoint),
            device_ip=device_ip,
            device_type=device_type,
            port=client_port,
            transport_protocol=str(endpoint.transport_protocol),
            established_at=now,
            last_update_at=now,
            planned_end_at=now + timedelta(seconds=duration_seconds)
            if duration_seconds is not None
            else None,
            posture_compliance_statuses=posture,
            _traffic=random.Random(connection_id),
        )
        endpoint.connections[connection_id] = connection
        record = connection.log_record(now)
        logged = _write_connection_log(endpoint, [(now, record)])
    return ConnectionAttemptResult(
        connected=True,
        endpoint_id=endpoint_id,
        detail=f"connected as {connection.client_ip}",
        connection_id=connection_id,
        logged=logged,
        record=record,
        connection=connection,
        posture_compliance_statuses=posture,
    )


def _common_name(certificate_pem: str) -> str | None:
    from cryptography import x509

    names = x509.load_pem_x509_certificate(certificate_pem.encode()).subject.get_attributes_for_oid(
        x509.NameOID.COMMON_NAME
    )
    return str(names[0].value) if names else None


def _backend_endpoint(account_id: str, region: str, endpoint_id: str) -> Any:
    from localcloud.clientvpn.models import clientvpn_backends

    return clientvpn_backends[account_id][region].get_endpoint(endpoint_id)


def simulate_connect_by_id(
    account_id: str, region: str, endpoint_id: str, **kwargs: Any
) -> ConnectionAttemptResult:
    """``simulate_connect`` against an endpoint of the local Client VPN backend, found by id."""
    return simulate_connect(_backend_endpoint(account_id, region, endpoint_id), **kwargs)


def simulate_disconnect(endpoint: Any, connection_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The client disconnects: the connection ends and its end record is written."""
    connection = endpoint.connections.get(connection_id)
    if not isinstance(connection, ClientVpnConnection):
        raise UnknownClientVpnConnection(f"no connection {connection_id} on {endpoint.id}")
    return connection.terminate(now)


def advance_connections(
    endpoint: Any,
    now: datetime | None = None,
    *,
    update_interval_seconds: float | None = None,
) -> list[dict[str, str]]:
    """Let emulated time reach ``now`` (default: the clock's now) for the endpoint's connections.

    For every active connection: one update record per whole interval elapsed since its last record
    (same connection id, new counters and last-update time), then, when its planned disconnect or the
    session timeout falls before ``now``, the end record. ``update_interval_seconds`` (default
    ``PERIODIC_UPDATE_INTERVAL_SECONDS``) is remembered for the endpoint, so later terminations catch up
    with the same interval. Terminated connections older than the 60 minutes DescribeClientVpnConnections
    covers are dropped. Returns the records written, in time order.
    """
    simulation = _simulation(endpoint)
    if update_interval_seconds is not None:
        if update_interval_seconds <= 0:
            raise ValueError("update_interval_seconds must be > 0")
        simulation.update_interval_seconds = float(update_interval_seconds)
    moment = now or get_clock().now()
    timeline: list[tuple[datetime, dict[str, str]]] = []
    with simulation.lock:
        for connection in list(endpoint.connections.values()):
            if isinstance(connection, ClientVpnConnection):
                timeline.extend(connection.catch_up(moment, simulation.update_interval_seconds))
        horizon = moment - timedelta(seconds=TERMINATED_CONNECTION_RETENTION_SECONDS)
        for connection_id, connection in list(endpoint.connections.items()):
            if (
                isinstance(connection, ClientVpnConnection)
                and connection.end_at is not None
                and connection.end_at < horizon
            ):
                del endpoint.connections[connection_id]
        timeline.sort(key=lambda item: item[0])
        _write_connection_log(endpoint, timeline)
    return [record for _, record in timeline]


def authentication_failure_count(endpoint: Any) -> int:
    """Failed mutual-TLS attempts on ``endpoint`` (the local AWS/ClientVPN AuthenticationFailures)."""
    return _simulation(endpoint).authentication_failures


def authentication_failure_count_by_id(account_id: str, region: str, endpoint_id: str) -> int:
    """``authentication_failure_count`` for an endpoint of the local Client VPN backend."""
    return authentication_failure_count(_backend_endpoint(account_id, region, endpoint_id))
