"""Fault injection for the local cloud's Client VPN API.

Real AWS throttles, races and fails in ways a happy-path emulator never does. A ``FaultInjector``
makes those failures happen on purpose, per API operation, and deterministically: every random
decision comes from one ``random.Random(seed)``, so the same seed and the same sequence of calls
give the same faults.

Knobs (``FaultInjector.configure(operation, **knobs)``; ``operation`` is the API name such as
``"AssociateClientVpnTargetNetwork"``, or ``"*"`` for every operation without its own setting):

``throttle_rate``
    Probability that a call answers ``RequestLimitExceeded`` (HTTP 503, as EC2 throttles).
``concurrent_mutation_rate``
    Probability that a call answers ``ConcurrentMutationLimitExceeded``.
``create_window_seconds`` (CreateClientVpnEndpoint)
    A create arriving less than this many emulated seconds after the previous successful create
    answers ``OperationNotPermitted`` (another endpoint is still being created).
``force_operation_not_permitted`` (CreateClientVpnEndpoint)
    The next N creates answer ``OperationNotPermitted`` whatever the window says.
``association_failures`` (AssociateClientVpnTargetNetwork)
    The next K associations end in ``association-failed`` instead of ``associated``.
``association_failure_rate`` (AssociateClientVpnTargetNetwork)
    Probability that an association ends in ``association-failed``.
``association_failure_message`` (AssociateClientVpnTargetNetwork)
    The status message of a failed association.
``settle_failures`` (AuthorizeClientVpnIngress, CreateClientVpnRoute)
    The next K rules or routes end in ``failed`` instead of ``active`` once they would be active
    (the call itself succeeds, as AWS's does).
``fail_with`` / ``fail_count``
    The next ``fail_count`` calls (default 1) answer the EC2 error code ``fail_with``, with the HTTP
    status AWS answers that code with: a server error (``InternalError``, ``InternalFailure`` 500;
    ``ServiceUnavailable``, ``Unavailable`` 503; see ``localcloud.clientvpn.exceptions``) is a 5xx,
    which the SDKs retry as they do against AWS; any other code is a 400.
``not_found_after_create_seconds``
    A call naming an endpoint created less than this many emulated seconds ago answers
    ``InvalidClientVpnEndpointId.NotFound``, and DescribeClientVpnEndpoints without ids leaves it
    out of the listing (eventual consistency after create).

Faults are injected into the operations that consult the injector: the Client VPN API's, and any
an extension adds with ``register_fault_operations``. ``configure`` refuses another operation name, a
knob it does not know, and a value out of range (a rate outside [0, 1], a negative count or time).

Other services (JSON protocols: DynamoDB, Logs, Events, ...) are faulted by ``"service:Operation"``
names as the local cloud counts them (``"dynamodb:BatchGetItem"``), never by ``"*"``. Their knobs:

``throttle_rate``
    Probability that a call answers the service's throttle (DynamoDB:
    ``ProvisionedThroughputExceededException``, HTTP 400, which the SDKs retry as a throttle).
``latency_seconds``
    Real (wall-clock) seconds the local cloud waits before it answers the call: a slow service, as
    an SDK's socket timeouts see it.
``unprocessed_keys_rate`` (``dynamodb:BatchGetItem``)
    Probability that a batch read answers with every key unprocessed (``UnprocessedKeys``), as
    DynamoDB does when a table is throttled.
``fail_with`` / ``fail_count``
    As above, with the service's JSON error shape (a code ending in ``InternalServerError``,
    ``ServiceUnavailable`` or ``InternalFailure`` answers 500/503).

Besides faults, this module counts every Client VPN API call per operation name
(``api_call_counts()`` / ``reset_api_call_counts()``) so tests and benchmarks can assert how many
EC2 calls a workflow made.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from localcloud.clientvpn.exceptions import ClientVpnEndpointNotFound, ClientVpnError
from localcloud.clock import get_clock

__all__ = [
    "CLIENT_VPN_OPERATIONS",
    "FaultInjector",
    "OperationFaults",
    "ServiceFault",
    "api_call_counts",
    "get_fault_injector",
    "record_api_call",
    "register_fault_operations",
    "reset_api_call_counts",
    "set_fault_injector",
    "supported_operations",
]

ANY_OPERATION = "*"
DEFAULT_ASSOCIATION_FAILURE_MESSAGE = (
    "Failed to associate the subnet: the Client VPN service could not create its network interface."
)


@dataclass
class OperationFaults:
    """The fault knobs of one operation (see the module docstring)."""

    throttle_rate: float = 0.0
    concurrent_mutation_rate: float = 0.0
    create_window_seconds: float = 0.0
    force_operation_not_permitted: int = 0
    association_failures: int = 0
    association_failure_rate: float = 0.0
    association_failure_message: str = DEFAULT_ASSOCIATION_FAILURE_MESSAGE
    settle_failures: int = 0
    not_found_after_create_seconds: float = 0.0
    fail_with: str | None = None
    fail_count: int = 1
    latency_seconds: float = 0.0
    unprocessed_keys_rate: float = 0.0

    @classmethod
    def knob_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


_RATES = ("throttle_rate", "concurrent_mutation_rate", "association_failure_rate", "unprocessed_keys_rate")
_COUNTS = ("force_operation_not_permitted", "association_failures", "settle_failures", "fail_count")
_SECONDS = ("create_window_seconds", "not_found_after_create_seconds", "latency_seconds")
# A JSON-protocol service's operation, as the local cloud counts it ("dynamodb:BatchGetItem"), and
# the knobs ``service_fault`` reads for it.
_SERVICE_OPERATION = re.compile(r"[a-z][a-z0-9-]*:[A-Z][A-Za-z0-9]*")
_SERVICE_KNOBS = {"throttle_rate", "latency_seconds", "unprocessed_keys_rate", "fail_with", "fail_count"}
# The Client VPN operations the local cloud serves, each of which consults the injector first
# (localcloud.clientvpn.responses; a test keeps the two lists equal).
CLIENT_VPN_OPERATIONS = (
    "ApplySecurityGroupsToClientVpnTargetNetwork",
    "AssociateClientVpnTargetNetwork",
    "AuthorizeClientVpnIngress",
    "CreateClientVpnEndpoint",
    "CreateClientVpnRoute",
    "DeleteClientVpnEndpoint",
    "DeleteClientVpnRoute",
    "DescribeClientVpnAuthorizationRules",
    "DescribeClientVpnConnections",
    "DescribeClientVpnEndpoints",
    "DescribeClientVpnRoutes",
    "DescribeClientVpnTargetNetworks",
    "DisassociateClientVpnTargetNetwork",
    "ExportClientVpnClientCertificateRevocationList",
    "ExportClientVpnClientConfiguration",
    "ImportClientVpnClientCertificateRevocationList",
    "ModifyClientVpnEndpoint",
    "RevokeClientVpnIngress",
    "TerminateClientVpnConnections",
)
_extra_operations: set[str] = set()


def register_fault_operations(operations: Iterable[str]) -> None:
    """Let ``configure`` accept these operation names: their handlers call ``before_call``."""
    _extra_operations.update(operations)


def supported_operations() -> list[str]:
    """The operation names faults can be set for (besides ``"*"``), sorted."""
    return sorted(set(CLIENT_VPN_OPERATIONS) | _extra_operations)


def _check_knobs(operation: str, knobs: dict[str, Any]) -> None:
    """Raise ValueError naming the operation or knob a configuration cannot have, and why."""
    supported = supported_operations()
    if _SERVICE_OPERATION.fullmatch(operation):
        unsupported = set(knobs) - _SERVICE_KNOBS
        if unsupported:
            raise ValueError(
                f"{operation}: another service's operation takes only {sorted(_SERVICE_KNOBS)}, "
                f"got {sorted(unsupported)}"
            )
        if "unprocessed_keys_rate" in knobs and operation != "dynamodb:BatchGetItem":
            raise ValueError(f"unprocessed_keys_rate: only for dynamodb:BatchGetItem, not {operation}")
    elif operation != ANY_OPERATION and operation not in supported:
        raise ValueError(
            f"operation: faults are injected only into {', '.join(supported)} (or * for all of them), "
            "or another service's as service:Operation (dynamodb:BatchGetItem); "
            f"got {operation!r}"
        )
    unknown = set(knobs) - OperationFaults.knob_names()
    if unknown:
        raise ValueError(f"unknown fault knobs for {operation}: {sorted(unknown)}")
    for name, value in knobs.items():
        if name in _RATES + _SECONDS and (
            isinstance(value, bool) or not isinstance(value, int | float) or value != value
        ):
            raise ValueError(f"{name}: must be a number, got {value!r}")
        if name in _RATES and not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: a probability in [0, 1], got {value!r}")
        if name in _SECONDS and value < 0:
            raise ValueError(f"{name}: seconds >= 0, got {value!r}")
        if name in _COUNTS and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{name}: a whole number >= 0, got {value!r}")
        if (
            name in ("fail_with", "association_failure_message")
            and value is not None
            and (not isinstance(value, str) or not value.strip())
        ):
            raise ValueError(f"{name}: a non-empty text, got {value!r}")


@dataclass
class _InjectorState:
    last_endpoint_created_at: float | None = None
    endpoint_created_at: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceFault:
    """What to do to one call of a JSON-protocol service: wait, then answer an error or leave every
    key of a batch read unprocessed (or neither: answer normally after the wait)."""

    latency_seconds: float = 0.0
    error_code: str | None = None
    error_status: int = 400
    error_message: str = ""
    unprocessed_keys: bool = False


_THROTTLE_CODES = {"dynamodb": "ProvisionedThroughputExceededException"}
_SERVER_ERRORS = {"InternalServerError": 500, "InternalFailure": 500, "ServiceUnavailable": 503}


class FaultInjector:
    """Decides, per call, whether the local cloud answers with an injected fault."""

    def __init__(self, seed: int | None = 0) -> None:
        self.seed = seed
        self._random = random.Random(seed)
        self._lock = threading.RLock()
        self._operations: dict[str, OperationFaults] = {}
        self._state = _InjectorState()
        self._injected: Counter[tuple[str, str]] = Counter()

    # -- configuration -------------------------------------------------------------------------
    def configure(self, operation: str, **knobs: Any) -> OperationFaults:
        """Set knobs for ``operation`` (API name, or ``"*"``); an operation no fault reaches, an unknown
        knob or a value out of range raise ValueError."""
        _check_knobs(operation, knobs)
        with self._lock:
            current = self._operations.get(operation, OperationFaults())
            updated = OperationFaults(**{**asdict(current), **knobs})
            self._operations[operation] = updated
            return updated

    def reseed(self, seed: int) -> None:
        """Draw every random decision from ``seed`` from now on (the knobs stay)."""
        with self._lock:
            self.seed = seed
            self._random = random.Random(seed)

    def clear(self) -> None:
        """Forget every knob, the creation history and the injected-fault counters; reseed."""
        with self._lock:
            self._operations.clear()
            self._state = _InjectorState()
            self._injected.clear()
            self._random = random.Random(self.seed)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data (seed and knobs per operation)."""
        with self._lock:
            return {
                "seed": self.seed,
                "operations": {name: asdict(knobs) for name, knobs in self._operations.items()},
            }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultInjector:
        """Rebuild an injector from ``to_dict()`` output."""
        injector = cls(seed=data.get("seed", 0))
        for operation, knobs in (data.get("operations") or {}).items():
            injector.configure(operation, **knobs)
        return injector

    def knobs_for(self, operation: str) -> OperationFaults:
        """The knobs that apply to ``operation`` (its own, else the ``"*"`` ones, else none)."""
        with self._lock:
            return self._operations.get(operation) or self._operations.get(ANY_OPERATION) or OperationFaults()

    # -- counters ------------------------------------------------------------------------------
    def injected_counts(self) -> dict[str, dict[str, int]]:
        """Faults injected so far: ``{operation: {fault code: count}}``."""
        with self._lock:
            result: dict[str, dict[str, int]] = {}
            for (operation, code), count in self._injected.items():
                result.setdefault(operation, {})[code] = count
            return result

    def _inject(self, operation: str, error: ClientVpnError) -> ClientVpnError:
        self._injected[(operation, error.error_code)] += 1
        return error

    # -- decisions -----------------------------------------------------------------------------
    def before_call(self, operation: str, endpoint_ids: Iterable[str] = ()) -> None:
        """Raise the injected fault for this call, if any. Called first by every response method."""
        now = get_clock().timestamp()
        with self._lock:
            knobs = self.knobs_for(operation)
            if knobs.fail_with and knobs.fail_count > 0:
                self._operations[operation] = OperationFaults(
                    **{**asdict(knobs), "fail_count": knobs.fail_count - 1}
                )
                raise self._inject(operation, ClientVpnError(knobs.fail_with, _message_for(knobs.fail_with)))
            if knobs.throttle_rate and self._random.random() < knobs.throttle_rate:
                raise self._inject(
                    operation, ClientVpnError("RequestLimitExceeded", "Request limit exceeded.")
                )
            if knobs.concurrent_mutation_rate and self._random.random() < knobs.concurrent_mutation_rate:
                raise self._inject(
                    operation,
                    ClientVpnError(
                        "ConcurrentMutationLimitExceeded",
                        "Too many concurrent mutations on this Client VPN endpoint. Try again later.",
                    ),
                )
            if operation == "CreateClientVpnEndpoint":
                self._check_create_in_progress(operation, knobs, now)
            if knobs.not_found_after_create_seconds:
                for endpoint_id in endpoint_ids:
                    created_at = self._state.endpoint_created_at.get(endpoint_id)
                    if created_at is not None and now - created_at < knobs.not_found_after_create_seconds:
                        raise self._inject(operation, ClientVpnEndpointNotFound(endpoint_id))

    def service_fault(self, key: str) -> ServiceFault | None:
        """The fault for one call of a JSON-protocol service, ``key`` as ``"service:Operation"``
        (only that key's knobs: ``"*"`` is the Client VPN operations'), or None."""
        with self._lock:
            knobs = self._operations.get(key)
            if knobs is None:
                return None
            service = key.split(":", 1)[0]
            latency = max(knobs.latency_seconds, 0.0)
            if knobs.fail_with and knobs.fail_count > 0:
                self._operations[key] = OperationFaults(
                    **{**asdict(knobs), "fail_count": knobs.fail_count - 1}
                )
                self._injected[(key, knobs.fail_with)] += 1
                return ServiceFault(
                    latency,
                    knobs.fail_with,
                    _SERVER_ERRORS.get(knobs.fail_with, 400),
                    _message_for(knobs.fail_with),
                )
            if knobs.throttle_rate and self._random.random() < knobs.throttle_rate:
                code = _THROTTLE_CODES.get(service, "ThrottlingException")
                self._injected[(key, code)] += 1
                return ServiceFault(
                    latency, code, 400, "Throughput exceeds the current capacity of your table."
                )
            if knobs.unprocessed_keys_rate and self._random.random() < knobs.unprocessed_keys_rate:
                self._injected[(key, "UnprocessedKeys")] += 1
                return ServiceFault(latency, unprocessed_keys=True)
            if latency:
                self._injected[(key, "latency")] += 1
                return ServiceFault(latency)
            return None

    def _check_create_in_progress(self, operation: str, knobs: OperationFaults, now: float) -> None:
        error = ClientVpnError(
            "OperationNotPermitted",
            "Another Client VPN endpoint is being created in this account. Try again later.",
        )
        if knobs.force_operation_not_permitted > 0:
            self._operations[operation] = OperationFaults(
                **{**asdict(knobs), "force_operation_not_permitted": knobs.force_operation_not_permitted - 1}
            )
            raise self._inject(operation, error)
        last = self._state.last_endpoint_created_at
        if knobs.create_window_seconds and last is not None and now - last < knobs.create_window_seconds:
            raise self._inject(operation, error)

    def endpoints_not_yet_visible(self, operation: str) -> set[str]:
        """Endpoints a listing by ``operation`` must leave out (created too recently to be seen)."""
        now = get_clock().timestamp()
        with self._lock:
            window = self.knobs_for(operation).not_found_after_create_seconds
            if not window:
                return set()
            return {
                endpoint_id
                for endpoint_id, created_at in self._state.endpoint_created_at.items()
                if now - created_at < window
            }

    def record_endpoint_created(self, endpoint_id: str, created_at: float) -> None:
        """Remember a successful create (for the create window and NotFound-after-create)."""
        with self._lock:
            self._state.last_endpoint_created_at = created_at
            self._state.endpoint_created_at[endpoint_id] = created_at

    def association_failure(self, operation: str = "AssociateClientVpnTargetNetwork") -> str | None:
        """Whether the association being created now will fail: its status message, or None."""
        with self._lock:
            knobs = self.knobs_for(operation)
            failed = False
            if knobs.association_failures > 0:
                self._operations[operation] = OperationFaults(
                    **{**asdict(knobs), "association_failures": knobs.association_failures - 1}
                )
                failed = True
            elif knobs.association_failure_rate and self._random.random() < knobs.association_failure_rate:
                failed = True
            if not failed:
                return None
            self._injected[(operation, "association-failed")] += 1
            return knobs.association_failure_message

    def settle_failure(self, operation: str) -> bool:
        """Whether the rule or route being created now will end ``failed`` (``settle_failures``)."""
        with self._lock:
            knobs = self.knobs_for(operation)
            if knobs.settle_failures <= 0:
                return False
            self._operations[operation] = OperationFaults(
                **{**asdict(knobs), "settle_failures": knobs.settle_failures - 1}
            )
            self._injected[(operation, "failed")] += 1
            return True


_KNOWN_MESSAGES = {
    "RequestLimitExceeded": "Request limit exceeded.",
    "ConcurrentMutationLimitExceeded": "Too many concurrent mutations on this Client VPN endpoint.",
    "OperationNotPermitted": "Another Client VPN endpoint is being created in this account.",
    "InternalError": "An internal error has occurred.",
    "InternalFailure": (
        "The request processing has failed because of an unknown error, exception, or failure."
    ),
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "Unavailable": "The server is overloaded and can't handle the request.",
}


def _message_for(code: str) -> str:
    return _KNOWN_MESSAGES.get(code, f"Injected fault: {code}.")


_injector = FaultInjector()
_injector_lock = threading.Lock()
_api_calls: Counter[str] = Counter()
_api_calls_lock = threading.Lock()


def get_fault_injector() -> FaultInjector:
    """The injector the local cloud consults (one with no knobs set until tests set another)."""
    return _injector


def set_fault_injector(injector: FaultInjector) -> FaultInjector:
    """Make ``injector`` current and return it."""
    global _injector
    with _injector_lock:
        _injector = injector
    return injector


def record_api_call(operation: str) -> None:
    """Count one Client VPN API call."""
    with _api_calls_lock:
        _api_calls[operation] += 1


def api_call_counts() -> dict[str, int]:
    """Client VPN API calls per operation name since the last reset."""
    with _api_calls_lock:
        return dict(_api_calls)


def reset_api_call_counts() -> None:
    """Forget every counted call."""
    with _api_calls_lock:
        _api_calls.clear()
