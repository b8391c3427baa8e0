"""One log group cannot stop the others, a log line cannot wedge the ingest, and a record is judged
by the endpoint that owns its log group, not by the endpoint id written inside it.

Given/When/Then in each docstring. Checkpoints (and, where said, the detection state) live in moto's
DynamoDB, which refuses keys over 2,048 bytes as DynamoDB does.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cvpn_shared.monitoring.attempts import MAX_FIELD_CHARS, parse_events
from cvpn_shared.monitoring.dal.checkpoints import DynamoDbCheckpoints
from cvpn_shared.monitoring.dal.connection_logs import LogEventPage, LogGroupOwners
from cvpn_shared.monitoring.dal.detection_table import DynamoDbDetectionState
from cvpn_shared.monitoring.detection.config import DetectionSettings
from cvpn_shared.monitoring.detection.detector import Detector
from cvpn_shared.monitoring.ingest import (
    DETAIL_TYPE,
    INGEST_HEALTH_DETAIL_TYPE,
    ConnectionLogIngest,
    EndpointArns,
    IngestReport,
    LogGroupReport,
    record_ingest_metrics,
)
from tests.monitoring.unit.ingest.conftest import (
    ENDPOINT_ID,
    NOW,
    Clock,
    FakeLogGroup,
    RecordingBus,
    RecordingDetector,
    RemainingTime,
    make_ingest,
    minutes,
    record,
)

OTHER_ENDPOINT = "cvpn-endpoint-0fedcba9876543210"


@dataclass
class LogGroups:
    """FilterLogEvents over several in-memory log groups; a group named in ``refused`` raises."""

    groups: dict[str, FakeLogGroup] = field(default_factory=dict)
    refused: dict[str, Exception] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> FakeLogGroup:
        return self.groups.setdefault(name, FakeLogGroup())

    def read_page(self, log_group_name: str, **kwargs: Any) -> LogEventPage:
        self.reads.append(log_group_name)
        if log_group_name in self.refused:
            raise self.refused[log_group_name]
        return self[log_group_name].read_page(log_group_name, **kwargs)


def findings(bus: RecordingBus) -> list[dict[str, Any]]:
    return [entry.detail for entry in bus.published if entry.detail_type == DETAIL_TYPE]


def health(bus: RecordingBus) -> list[dict[str, Any]]:
    return [entry.detail for entry in bus.published if entry.detail_type == INGEST_HEALTH_DETAIL_TYPE]


def test_a_group_whose_read_fails_does_not_stop_the_groups_after_it(
    checkpoints: DynamoDbCheckpoints,
) -> None:
    """Given three log groups, the first one's read refused (access denied), when the ingest runs, then
    the two others are read and the attacker in the last one is published; the refused group is
    reported failed, its checkpoint's lease given back, and one health issue naming it and the error
    is on the bus."""
    logs = LogGroups(refused={"/a/refused": PermissionError("AccessDeniedException: not authorized")})
    logs["/b/healthy"].put(NOW - minutes(3), record("alice"))
    attacker = logs["/c/healthy"].put(NOW - minutes(2), record("attacker"))
    bus = RecordingBus()

    report = make_ingest(logs, checkpoints, bus=bus).run(  # type: ignore[arg-type]
        ["/a/refused", "/b/healthy", "/c/healthy"], now=NOW, remaining_ms=RemainingTime()
    )

    refused, first, last = report.log_groups
    assert refused.failed == "PermissionError: AccessDeniedException: not authorized"
    assert first.complete and last.complete and first.events_processed == last.events_processed == 1
    assert [detail["finding_id"] for detail in findings(bus)] == [f"finding-{attacker}"]
    (issue,) = health(bus)
    assert issue["kind"] == "connection-log-group" and issue["log_group_name"] == "/a/refused"
    assert issue["error"] == refused.failed and issue["failed_at"].endswith("Z")
    assert checkpoints.load("/a/refused").lease_until_ms == 0
    assert report.summary()["log_groups_failed"] == 1


def test_a_failing_group_is_still_reported_when_the_bus_is_down(checkpoints: DynamoDbCheckpoints) -> None:
    """Given the bus down and a group whose read fails, when the ingest runs, then the failure is in the
    report (the health issue could not be published) and the run returns."""
    logs = LogGroups(refused={"/a/refused": RuntimeError("throttled")})
    bus = RecordingBus(fail_next=1)

    report = make_ingest(logs, checkpoints, bus=bus).run(  # type: ignore[arg-type]
        ["/a/refused"], now=NOW, remaining_ms=RemainingTime()
    )

    assert report.log_groups[0].failed == "RuntimeError: throttled" and bus.published == []
    assert report.health == []


def test_the_failed_groups_metric_has_fixed_dimensions(capsys: pytest.CaptureFixture[str]) -> None:
    """Given a run with two failed groups and three foreign records, when its metrics are recorded,
    then ConnectionLogGroupsFailed is 2 and ConnectionLogForeignRecords 3, on the function's metrics
    (no dimension naming a group: group names would make a billed metric each); a quiet run sends
    neither."""
    from aws_lambda_powertools import Metrics

    report = IngestReport(
        log_groups=[
            LogGroupReport("/x", failed="RuntimeError: a"),
            LogGroupReport("/y", failed="RuntimeError: b"),
            LogGroupReport("/z", foreign_records=3),
        ]
    )
    metrics = Metrics(namespace="ClientVpnAutopilotTest", service="test")
    record_ingest_metrics(metrics, report)
    metrics.flush_metrics()

    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (blob,) = [blob for blob in blobs if "ConnectionLogGroupsFailed" in blob]
    assert blob["ConnectionLogGroupsFailed"] == [2.0] and blob["ConnectionLogForeignRecords"] == [3.0]
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["service"]]

    # A quiet run sends no metric at all: a metric is billed for the hours it has data.
    record_ingest_metrics(metrics, IngestReport(log_groups=[LogGroupReport("/x")]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty flush warns "No application metrics to publish"
        metrics.flush_metrics()
    quiet = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert quiet == []


def test_a_record_naming_another_endpoint_is_judged_by_the_groups_owner(
    checkpoints: DynamoDbCheckpoints,
) -> None:
    """Given a log group owned by one endpoint, when a record in it names another endpoint, then the
    detector sees it on the owning endpoint, and the group counts one foreign record."""
    logs = LogGroups()
    logs["/owned"].put(NOW - minutes(2), record("attacker").replace(ENDPOINT_ID, OTHER_ENDPOINT))
    logs["/owned"].put(NOW - minutes(1), record("alice"))
    detector, bus = RecordingDetector(), RecordingBus()

    report = make_ingest(logs, checkpoints, detector=detector, bus=bus).run(  # type: ignore[arg-type]
        ["/owned"], now=NOW, remaining_ms=RemainingTime(), owners={"/owned": frozenset({ENDPOINT_ID})}
    )

    assert [attempt.endpoint_id for attempt in detector.observed] == [ENDPOINT_ID, ENDPOINT_ID]
    assert [detail["endpoint_id"] for detail in findings(bus)] == [ENDPOINT_ID]
    assert report.log_groups[0].foreign_records == 1


def test_a_record_naming_none_of_a_shared_groups_owners_is_dropped(checkpoints: DynamoDbCheckpoints) -> None:
    """Given a log group two endpoints log to, when a record names a third endpoint, then it is dropped
    (which owner wrote it cannot be told) and counted; records naming either owner are kept."""
    third = "cvpn-endpoint-00000000000000003"
    logs = LogGroups()
    logs["/shared"].put(NOW - minutes(3), record("attacker").replace(ENDPOINT_ID, third))
    logs["/shared"].put(NOW - minutes(2), record("bob").replace(ENDPOINT_ID, OTHER_ENDPOINT))
    logs["/shared"].put(NOW - minutes(1), record("alice"))
    detector = RecordingDetector()

    report = make_ingest(logs, checkpoints, detector=detector).run(  # type: ignore[arg-type]
        ["/shared"],
        now=NOW,
        remaining_ms=RemainingTime(),
        owners={"/shared": frozenset({ENDPOINT_ID, OTHER_ENDPOINT})},
    )

    assert [(a.username, a.endpoint_id) for a in detector.observed] == [
        ("bob", OTHER_ENDPOINT),
        ("alice", ENDPOINT_ID),
    ]
    assert report.log_groups[0].foreign_records == 1


def test_a_group_no_endpoint_logs_to_is_not_read(checkpoints: DynamoDbCheckpoints) -> None:
    """Given a configured log group that no Client VPN endpoint logs to (say an application's log
    group named by mistake or on purpose), when the ingest runs, then it is not read at all."""
    logs = LogGroups()
    logs["/aws/lambda/payroll"].put(NOW - minutes(1), record("attacker"))
    logs["/owned"].put(NOW - minutes(1), record("alice"))

    report = make_ingest(logs, checkpoints).run(  # type: ignore[arg-type]
        ["/aws/lambda/payroll", "/owned"],
        now=NOW,
        remaining_ms=RemainingTime(),
        owners={"/owned": frozenset({ENDPOINT_ID})},
    )

    assert logs.reads == ["/owned"]
    assert (
        report.log_groups[0].skipped is not None and "no Client VPN endpoint" in report.log_groups[0].skipped
    )


def test_log_group_owners_come_from_the_endpoints_logging_options() -> None:
    """Given three endpoints (two logging to one group, one with logging off), then the owners of that
    group are the two, and the third endpoint owns nothing; pages are followed."""
    pages = [
        {
            "ClientVpnEndpoints": [
                endpoint(ENDPOINT_ID, "/shared", enabled=True),
                endpoint("cvpn-endpoint-off", "/off", enabled=False),
            ],
            "NextToken": "t1",
        },
        {"ClientVpnEndpoints": [endpoint(OTHER_ENDPOINT, "/shared", enabled=True)]},
    ]
    calls: list[dict[str, Any]] = []

    class Ec2:
        def describe_client_vpn_endpoints(self, **params: Any) -> dict[str, Any]:
            calls.append(params)
            return pages[len(calls) - 1]

    assert LogGroupOwners(Ec2()).by_log_group() == {"/shared": frozenset({ENDPOINT_ID, OTHER_ENDPOINT})}
    assert calls[1]["NextToken"] == "t1"


def endpoint(endpoint_id: str, group: str, *, enabled: bool) -> dict[str, Any]:
    return {
        "ClientVpnEndpointId": endpoint_id,
        "Status": {"Code": "available"},
        "ConnectionLogOptions": {"Enabled": enabled, "CloudwatchLogGroup": group},
    }


# ------------------------------------------------------------------ a log line made to wedge the ingest
@pytest.fixture
def detection_table() -> Iterator[tuple[DynamoDbCheckpoints, DynamoDbDetectionState]]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for name, key in (("checkpoints", "log_group"), ("detection", "pk")):
            client.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        yield DynamoDbCheckpoints(client, "checkpoints"), DynamoDbDetectionState(client, "detection")


def test_a_100_kb_user_name_with_control_characters_cannot_wedge_the_ingest(
    detection_table: tuple[DynamoDbCheckpoints, DynamoDbDetectionState],
) -> None:
    """Given a failed login whose user name is 100 KB of text with line breaks, an escape sequence and
    a bidirectional override, followed by a password spray, when the real parser and detector run over
    DynamoDB (keys at most 2,048 bytes), then the run completes, the spray is published, and the long
    name is kept as at most MAX_FIELD_CHARS printable characters."""
    checkpoints, state = detection_table
    evil = "root\r\nseverity: LOW\x1b[2J\u202e" + "\u00e9" * 100_000
    logs = FakeLogGroup()
    logs.put(NOW - minutes(5), record(evil))
    for index in range(5):
        logs.put(NOW - minutes(4) + minutes(index / 10), record(f"sprayed{index}", device_ip="198.51.100.7"))
    detector = Detector(DetectionSettings(), state)
    bus = RecordingBus()
    ingest = ConnectionLogIngest(
        reader=logs,
        checkpoints=checkpoints,
        publisher=bus,
        detector=detector,
        parse_events=parse_events,
        source="example.clientvpn.monitor",
        arns=EndpointArns("aws", "us-east-1", "123456789012"),
        owner="invocation-1",
        wall_clock_ms=Clock(),
    )

    report = ingest.run(["/corp"], now=NOW, remaining_ms=RemainingTime())

    assert report.log_groups[0].failed is None and report.log_groups[0].complete
    assert {detail["rule_id"] for detail in findings(bus)} == {"R1", "R4"}  # five failures, five users
    users = {key.split("#", 2)[2] for key in (item["pk"]["S"] for item in scan(state)) if "#user#" in key}
    (stored,) = [user for user in users if user.startswith("root")]
    assert len(stored) <= MAX_FIELD_CHARS and stored.isprintable()
    assert stored.startswith("root\\x0d\\x0aseverity: LOW\\x1b[2J\\u202e")


def scan(state: DynamoDbDetectionState) -> list[dict[str, Any]]:
    return list(state._dynamodb.scan(TableName="detection")["Items"])
