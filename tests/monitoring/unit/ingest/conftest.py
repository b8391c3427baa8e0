"""Fakes and an in-memory DynamoDB for the ingest's unit tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cvpn_shared.monitoring.dal.checkpoints import DynamoDbCheckpoints
from cvpn_shared.monitoring.dal.connection_logs import InvalidPageToken, LogEventPage
from cvpn_shared.monitoring.dal.findings_bus import BusEntry
from cvpn_shared.monitoring.ingest import ConnectionLogIngest, EndpointArns, IngestSettings

LOG_GROUP = "/clientvpn/corp"
ENDPOINT_ID = "cvpn-endpoint-0123456789abcdef0"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def record(user: str, *, status: str = "failed", device_ip: str = "203.0.113.9") -> str:
    return json.dumps(
        {
            "connection-log-type": "connection-attempt",
            "connection-attempt-status": status,
            "connection-attempt-failure-reason": "NA" if status != "failed" else "auth-failed",
            "connection-id": f"cvpn-connection-{user}",
            "client-vpn-endpoint-id": ENDPOINT_ID,
            "device-ip": device_ip,
            "username": user,
        }
    )


@dataclass
class FakeLogGroup:
    """FilterLogEvents over an in-memory log group: timestamp order, pages of ``page_size``."""

    events: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 10_000
    reads: int = 0
    generation: int = 0
    _next_id: int = 0

    def expire_tokens(self) -> None:
        """Page tokens issued so far become invalid (CloudWatch's expire after 24 hours)."""
        self.generation += 1

    def put(self, at: datetime, message: str) -> str:
        self._next_id += 1
        event_id = f"{self._next_id:056d}"
        self.events.append({"eventId": event_id, "timestamp": millis(at), "message": message})
        return event_id

    def read_page(
        self,
        log_group_name: str,
        *,
        start_time_ms: int,
        next_token: str | None = None,
        limit: int | None = None,
    ) -> LogEventPage:
        self.reads += 1
        offset = 0
        if next_token:
            generation, _, position = next_token.partition(":")
            if int(generation) != self.generation:
                raise InvalidPageToken("token expired")
            offset = int(position)
        selected = sorted(
            (event for event in self.events if event["timestamp"] >= start_time_ms),
            key=lambda event: (event["timestamp"], event["eventId"]),
        )
        size = min(limit or self.page_size, self.page_size)
        page = selected[offset : offset + size]
        more = offset + size < len(selected)
        return LogEventPage(
            events=[dict(event) for event in page],
            next_token=f"{self.generation}:{offset + size}" if more else None,
        )


@dataclass(frozen=True)
class FakeAttempt:
    event_id: str
    endpoint_id: str
    status: str
    failure_reason: str | None
    username: str

    @property
    def is_failure(self) -> bool:
        return self.status == "failed"

    def on_endpoint(self, endpoint_id: str) -> FakeAttempt:
        return replace(self, endpoint_id=endpoint_id)


@dataclass
class FakeStats:
    bad_lines: int = 0


def fake_parse(events: Sequence[Mapping[str, Any]]) -> tuple[list[FakeAttempt], FakeStats]:
    """Stands in for records.parse_events: JSON objects become attempts, anything else a bad line."""
    stats = FakeStats()
    attempts = []
    for event in events:
        try:
            fields = json.loads(event["message"])
        except ValueError:
            stats.bad_lines += 1
            continue
        if not isinstance(fields, dict):
            stats.bad_lines += 1
            continue
        attempts.append(
            FakeAttempt(
                event_id=str(event["eventId"]),
                endpoint_id=fields["client-vpn-endpoint-id"],
                status=fields["connection-attempt-status"],
                failure_reason=fields.get("connection-attempt-failure-reason"),
                username=fields["username"],
            )
        )
    return attempts, stats


@dataclass(frozen=True)
class FakeFinding:
    finding_id: str
    endpoint_id: str

    def event_detail(self) -> dict[str, Any]:
        return {"finding_id": self.finding_id, "endpoint_id": self.endpoint_id, "severity": "HIGH"}


@dataclass
class FakeDetectionResult:
    findings: list[FakeFinding]
    health: list[Any] = field(default_factory=list)


@dataclass
class RecordingDetector:
    """Remembers every attempt it observes; one finding per user named 'attacker*'."""

    observed: list[FakeAttempt] = field(default_factory=list)

    def observe(self, attempts: Sequence[FakeAttempt], *, now: datetime) -> FakeDetectionResult:
        self.observed.extend(attempts)
        findings = [
            FakeFinding(f"finding-{a.event_id}", a.endpoint_id)
            for a in attempts
            if a.username.startswith("attacker")
        ]
        return FakeDetectionResult(findings)

    @property
    def observed_ids(self) -> list[str]:
        return [attempt.event_id for attempt in self.observed]


@dataclass
class RecordingBus:
    published: list[BusEntry] = field(default_factory=list)
    fail_next: int = 0

    def publish(self, entries: Sequence[BusEntry]) -> int:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("bus unavailable")
        self.published.extend(entries)
        return len(entries)


@dataclass
class RemainingTime:
    """The invocation's remaining time: ``budget_ms`` minus ``cost_ms`` per call after ``free_calls``."""

    budget_ms: int = 300_000
    cost_ms: int = 0
    calls: int = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.budget_ms - self.cost_ms * self.calls


class AtomicCalls:
    """A client whose calls run one at a time: DynamoDB applies each conditional write atomically,
    while moto in-process evaluates a condition and writes without a lock."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return call


@pytest.fixture
def checkpoints() -> Iterator[DynamoDbCheckpoints]:
    with mock_aws():
        dynamodb = AtomicCalls(boto3.client("dynamodb", region_name="us-east-1"))
        dynamodb.create_table(
            TableName="checkpoints",
            AttributeDefinitions=[{"AttributeName": "log_group", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "log_group", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoDbCheckpoints(dynamodb, "checkpoints")


@dataclass
class Clock:
    wall_ms: int = millis(NOW)

    def __call__(self) -> int:
        return self.wall_ms


def make_ingest(
    reader: FakeLogGroup,
    checkpoints: DynamoDbCheckpoints,
    *,
    detector: RecordingDetector | None = None,
    bus: RecordingBus | None = None,
    owner: str = "invocation-1",
    clock: Clock | None = None,
    **settings: Any,
) -> ConnectionLogIngest:
    return ConnectionLogIngest(
        reader=reader,
        checkpoints=checkpoints,
        publisher=bus if bus is not None else RecordingBus(),
        detector=detector if detector is not None else RecordingDetector(),
        parse_events=fake_parse,
        source="example.clientvpn.monitor",
        arns=EndpointArns("aws", "us-east-1", "123456789012"),
        owner=owner,
        settings=IngestSettings(**settings),
        wall_clock_ms=clock or Clock(),
    )


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
