"""Findings reach the bus in batches of 10 with refused entries retried; alert delivery blocks what
HIGH/CRITICAL findings name; the client-connect handler refuses what is blocked, with a clear message."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from cvpn_shared.monitoring.alerting import (
    AlertChannels,
    DeliveryReport,
    FindingDeliveryIncomplete,
    ResponsePolicy,
    deliver_finding,
)
from cvpn_shared.monitoring.client_connect import (
    MAX_DENIAL_MESSAGE_CHARS,
    ClientConnectRequest,
    authorize_connection,
)
from cvpn_shared.monitoring.dal.blocklist import BlockEntry, blocklist_key
from cvpn_shared.monitoring.dal.client_connections import ClientVpnConnections
from cvpn_shared.monitoring.dal.findings_bus import BusEntry, FindingsBus, FindingsNotPublished
from cvpn_shared.monitoring.findings import Finding
from tests.fixtures.blocklist import MemoryBlocklist

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@dataclass
class FlakyEvents:
    """PutEvents that refuses the entries whose detail names a finding in ``refuse`` (once each)."""

    refuse: dict[str, int] = field(default_factory=dict)
    calls: list[list[dict[str, Any]]] = field(default_factory=list)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        results = []
        for entry in Entries:
            finding_id = json.loads(entry["Detail"])["finding_id"]
            if self.refuse.get(finding_id, 0) > 0:
                self.refuse[finding_id] -= 1
                results.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"})
            else:
                results.append({"EventId": f"event-{finding_id}"})
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}


def entries(count: int) -> list[BusEntry]:
    return [
        BusEntry(
            "example.clientvpn.monitor", "Client VPN Suspicious Connection Attempts", {"finding_id": f"f{i}"}
        )
        for i in range(count)
    ]


def test_put_events_takes_ten_per_call_and_retries_only_refused_entries() -> None:
    """Given 23 findings and a bus that refuses two of them once, when published, then calls carry at most
    10 entries, and only the two refused are sent again."""
    events = FlakyEvents(refuse={"f3": 1, "f15": 1})
    FindingsBus(events, "bus", sleep=lambda _: None).publish(entries(23))

    sizes = [len(call) for call in events.calls]
    assert sizes == [10, 1, 10, 1, 3]
    retried = [json.loads(call[0]["Detail"])["finding_id"] for call in events.calls if len(call) == 1]
    assert retried == ["f3", "f15"]
    assert all(entry["EventBusName"] == "bus" for call in events.calls for entry in call)


def test_entries_refused_every_time_raise() -> None:
    """Given an entry the bus always refuses, when published, then FindingsNotPublished names the code."""
    events = FlakyEvents(refuse={"f1": 99})
    with pytest.raises(FindingsNotPublished, match="ThrottlingException"):
        FindingsBus(events, "bus", attempts=3, sleep=lambda _: None).publish(entries(2))
    assert len(events.calls) == 3


@dataclass
class Recorder:
    calls: list[Any] = field(default_factory=list)
    terminations: list[tuple[str, str, str]] = field(default_factory=list)  # (endpoint, by, whom)
    marks: dict[str, tuple[str, set[str]]] = field(default_factory=dict)  # finding: (revision, channels)

    def record(
        self, detail: dict[str, Any], *, revision: str, recorded_at: int, expires_at: int
    ) -> frozenset[str]:
        self.calls.append(detail)
        kept = self.marks.get(detail["finding_id"])
        if kept and kept[0] == revision:
            return frozenset(kept[1])
        self.marks[detail["finding_id"]] = (revision, set())
        return frozenset()

    def mark_delivered(self, finding_id: str, revision: str, channel: str, *, delivered_at: int) -> bool:
        kept = self.marks.get(finding_id)
        if not kept or kept[0] != revision:
            return False
        kept[1].add(channel)
        return True

    def publish(self, subject: str, message: str, attributes: dict[str, str]) -> str:
        self.calls.append((subject, message, attributes))
        return "message-1"

    def terminate_user(self, endpoint_id: str, username: str) -> list[dict[str, Any]]:
        self.terminations.append((endpoint_id, "user name", username))
        return [{"ConnectionId": "cvpn-connection-1"}]

    def terminate_common_name(self, endpoint_id: str, common_name: str) -> list[dict[str, Any]]:
        self.terminations.append((endpoint_id, "common name", common_name))
        return [{"ConnectionId": "cvpn-connection-2"}, {"ConnectionId": "cvpn-connection-3"}]


def finding(severity: str, **changes: Any) -> Finding:
    detail = {
        "finding_id": "a" * 64,
        "rule_id": "R4",
        "title": "Password spray from one source",
        "severity": severity,
        "endpoint_id": "cvpn-endpoint-0123456789abcdef0",
        "mitre": ["T1110.003"],
        "entity": {"device_ip": "198.51.100.66", "username": "Mallory", "common_name": "NA"},
        "window": {"start": "2026-11-28T11:50:00.000Z", "end": "2026-11-28T11:58:00.000Z"},
        "first_seen": "2026-11-28T11:50:00.000Z",
        "last_seen": "2026-11-28T11:58:00.000Z",
        "counts": {"failures": 12, "distinct_users": 6, "distinct_ips": 1},
        "failure_reasons": ["authentication-failed"],
        "sample_connection_ids": ["cvpn-connection-0a1b2c3d4e5f60718"],
        "allowlisted": False,
        "runbook_url": None,
        **changes,
    }
    return Finding.model_validate(detail)


def channels(blocklist: MemoryBlocklist, recorder: Recorder) -> AlertChannels:
    return AlertChannels(findings=recorder, topic=recorder, blocklist=blocklist, sessions=recorder)


def test_a_high_spray_finding_blocks_its_source_never_the_user_it_names() -> None:
    """Given a HIGH spray finding that names one user, when delivered with session termination on,
    then only the source is blocked for the block duration, the alert is published, and nobody's
    sessions are cut (a user name in failed attempts is whatever the attacker typed)."""
    blocklist, recorder = MemoryBlocklist(), Recorder()
    report = deliver_finding(
        finding("HIGH"),
        channels(blocklist, recorder),
        ResponsePolicy(terminate_sessions=True, block_users=True),
        now=NOW,
    )

    assert report.blocked == ["source#198.51.100.66"]
    assert {e.expires_at for e in blocklist.entries.values()} == {
        int((NOW + timedelta(hours=24)).timestamp())
    }
    subject = next(call for call in recorder.calls if isinstance(call, tuple) and len(call) == 3)[0]
    assert subject.startswith("[HIGH] Client VPN: Password spray from one source (source 198.51.100.66")
    assert recorder.terminations == []
    assert report.terminated_connections == []


CERTIFICATE = "laptop-17.contractors.example"


@pytest.mark.parametrize(
    ("entity", "termination", "cut"),
    [
        (
            {"device_ip": None, "username": None, "common_name": CERTIFICATE},
            ("common name", CERTIFICATE),
            ["cvpn-connection-2", "cvpn-connection-3"],
        ),
        (
            {"device_ip": None, "username": "NA", "common_name": CERTIFICATE},
            ("common name", CERTIFICATE),
            ["cvpn-connection-2", "cvpn-connection-3"],
        ),
        (
            {"device_ip": None, "username": "mallory", "common_name": "client1"},
            ("user name", "mallory"),
            ["cvpn-connection-1"],
        ),
    ],
    ids=["certificate-only", "certificate-only-NA-user-name", "user-name-and-certificate"],
)
def test_sessions_are_cut_by_user_name_or_else_by_the_certificates_common_name(
    entity: dict[str, Any], termination: tuple[str, str], cut: list[str]
) -> None:
    """Given a HIGH finding about a user authenticated by certificate alone (no user name, or the
    log's "NA"), when delivered with session termination on and users blocked outright (the
    administrator's option), then the user is blocked by common name and the sessions are cut by that
    common name (TerminateClientVpnConnections' Username matches Active Directory and SAML users
    only); given a user name as well, they are cut by user name."""
    blocklist, recorder = MemoryBlocklist(), Recorder()
    alert = finding("HIGH", rule_id="R3", entity=entity)

    report = deliver_finding(
        alert,
        channels(blocklist, recorder),
        ResponsePolicy(terminate_sessions=True, block_users=True),
        now=NOW,
    )

    assert recorder.terminations == [("cvpn-endpoint-0123456789abcdef0", *termination)]
    assert report.blocked == [f"user#{termination[1]}"]
    assert report.terminated_connections == cut


@pytest.mark.parametrize(("severity", "allowlisted"), [("MEDIUM", False), ("LOW", False), ("CRITICAL", True)])
def test_lower_severities_and_allowlisted_findings_block_nothing(severity: str, allowlisted: bool) -> None:
    """Given a MEDIUM/LOW finding or an allow-listed one, when delivered, then nothing is blocked."""
    blocklist, recorder = MemoryBlocklist(), Recorder()
    report = deliver_finding(
        finding(severity, allowlisted=allowlisted), channels(blocklist, recorder), ResponsePolicy(), now=NOW
    )
    assert report.blocked == [] and blocklist.entries == {}
    assert recorder.calls[0]["finding_id"] == "a" * 64  # archived all the same
    assert (report.alert_message_id is None) == allowlisted  # allow-listed: recorded, nobody paged


@dataclass
class EveryChannel:
    """The alerts topic, a webhook, Security Hub and the sessions; the one named ``broken`` raises."""

    broken: str = ""
    done: list[str] = field(default_factory=list)
    archive: Recorder = field(default_factory=Recorder)
    blocklist: MemoryBlocklist = field(default_factory=MemoryBlocklist)
    configured: bool = True

    def deliver_high_finding(self, *, webhook: Any = None, **changes: Any) -> DeliveryReport:
        """A HIGH finding (with ``changes`` to its detail) delivered to every channel (each of them
        this object, the webhook unless ``webhook`` is given), with session termination on."""
        channels = AlertChannels(
            findings=self.archive,
            topic=self,
            blocklist=self.blocklist,
            webhook=webhook or self,
            security_hub=self,
            sessions=self,
        )
        policy = ResponsePolicy(terminate_sessions=True, block_users=True)
        # An attack on a user, users blocked outright: every channel has work, sessions included.
        attacked = {"rule_id": "R3", "attack_sources": ["198.51.100.66"], **changes}
        return deliver_finding(
            finding("HIGH", **attacked),
            channels,
            policy,
            now=NOW,
            asff=lambda alert: {"Id": alert.finding_id},
        )

    def _use(self, channel: str) -> None:
        if channel == self.broken:
            raise ConnectionError(f"{channel} unreachable")
        self.done.append(channel)

    def publish(self, subject: str, message: str, attributes: dict[str, str]) -> str:
        self._use("alerts topic")
        return "message-1"

    def post(self, document: dict[str, Any]) -> int:
        self._use("webhook")
        return 200

    def import_findings(self, findings: list[dict[str, Any]]) -> int:
        self._use("security hub")
        return len(findings)

    def terminate_user(self, endpoint_id: str, username: str) -> list[dict[str, Any]]:
        self._use("sessions")
        return [{"ConnectionId": "cvpn-connection-1"}]

    def terminate_common_name(self, endpoint_id: str, common_name: str) -> list[dict[str, Any]]:
        raise AssertionError("the finding names a user name: its sessions are cut by user name")


CHANNELS = ["alerts topic", "webhook", "security hub", "sessions"]


@pytest.mark.parametrize("broken", CHANNELS)
def test_a_failing_channel_keeps_no_other_from_its_turn_and_then_fails_the_delivery(broken: str) -> None:
    """Given every channel on and one of them failing, when a HIGH finding is delivered, then the
    finding is archived and blocked, every other channel does its work, and only then does the delivery
    fail, naming the failed channel (so Lambda retries it; every step is safe to repeat)."""
    everything = EveryChannel(broken=broken)

    with pytest.raises(
        FindingDeliveryIncomplete, match=f"{broken}: ConnectionError: {broken} unreachable"
    ) as failed:
        everything.deliver_high_finding()

    assert everything.done == [channel for channel in CHANNELS if channel != broken]
    assert list(failed.value.failures) == [broken]
    assert everything.archive.calls[0]["finding_id"] == "a" * 64
    assert set(everything.blocklist.entries) == {"source#198.51.100.66", "user#mallory"}
    report = failed.value.report
    assert (report.alert_message_id is None) == (broken == "alerts topic")
    assert (report.terminated_connections == []) == (broken == "sessions")


def test_a_retried_delivery_skips_the_channels_it_already_reached() -> None:
    """Given the webhook down, when a HIGH finding is delivered (and fails), then retried with the
    webhook back, then delivered once more (EventBridge's second copy), then the e-mail alert, Security
    Hub and the session cut happen once, the webhook gets the finding once it recovers, and the retries
    report the channels they skipped."""
    everything = EveryChannel(broken="webhook")
    with pytest.raises(FindingDeliveryIncomplete):
        everything.deliver_high_finding()

    everything.broken = ""
    retried = everything.deliver_high_finding()
    again = everything.deliver_high_finding()

    assert everything.done == ["alerts topic", "security hub", "sessions", "webhook"]
    assert retried.already_delivered == ["alerts topic", "security hub", "sessions"]
    assert retried.webhook_status == 200 and retried.alert_message_id is None
    assert again.already_delivered == CHANNELS and again.webhook_status is None
    assert set(retried.blocked) == set(again.blocked) == {"source#198.51.100.66", "user#mallory"}


def test_a_refired_finding_reaches_every_channel_again() -> None:
    """Given a finding delivered everywhere, when the detector re-publishes it (same finding id, new
    counts and last attempt: a new revision), then every channel receives it again."""
    everything = EveryChannel()
    everything.deliver_high_finding()
    refired = everything.deliver_high_finding(
        counts={"failures": 20, "distinct_users": 9, "distinct_ips": 1}, last_seen="2026-11-28T12:30:00Z"
    )

    assert everything.done == CHANNELS + CHANNELS
    assert refired.already_delivered == [] and refired.alert_message_id == "message-1"


def test_a_mark_that_cannot_be_written_does_not_fail_the_delivery(caplog: pytest.LogCaptureFixture) -> None:
    """Given a findings table that refuses the delivery marks, when a finding is delivered, then every
    channel has it and the delivery succeeds; the missing marks are logged (a retry might repeat)."""

    class Unmarkable(Recorder):
        def mark_delivered(self, finding_id: str, revision: str, channel: str, *, delivered_at: int) -> bool:
            raise ConnectionError("DynamoDB unreachable")

    everything = EveryChannel(archive=Unmarkable())
    with caplog.at_level("WARNING", logger="cvpn_shared.monitoring.alerting"):
        report = everything.deliver_high_finding()

    assert everything.done == CHANNELS and report.webhook_status == 200
    assert [record.getMessage() for record in caplog.records] == [
        f"delivery to {channel} not marked for finding {'a' * 64}" for channel in CHANNELS
    ]


def request(**changes: str) -> ClientConnectRequest:
    fields = {
        "connection-id": "cvpn-connection-1",
        "endpoint-id": "cvpn-endpoint-0123456789abcdef0",
        "common-name": "client1",
        "username": "alice",
        "public-ip": "203.0.113.10",
        "schema-version": "v2",
        "aws-client-version": "5.0.0",
        **changes,
    }
    return ClientConnectRequest.from_event(fields)


def test_the_handler_allows_whoever_is_not_blocked() -> None:
    answer = authorize_connection(request(), MemoryBlocklist(), now=NOW).response.to_answer()
    assert answer == {
        "allow": True,
        "error-msg-on-denied-connection": "",
        "posture-compliance-statuses": [],
        "schema-version": "v2",
    }


def test_the_handler_refuses_a_blocked_source_or_user_with_a_short_message() -> None:
    """Given a blocked source and a blocked user (any case), when either connects, then the answer
    refuses with a message of at most 255 characters naming what is blocked and until when."""
    blocklist = MemoryBlocklist()
    expiry = int((NOW + timedelta(hours=24)).timestamp())
    for kind, value in (("source", "198.51.100.66"), ("user", "Mallory")):
        blocklist.block(BlockEntry(kind, value, expiry, int(NOW.timestamp()), "R4", "f" * 64))  # type: ignore[arg-type]

    by_source = authorize_connection(request(**{"public-ip": "198.51.100.66"}), blocklist, now=NOW)
    by_user = authorize_connection(request(username="MALLORY"), blocklist, now=NOW)
    expired = authorize_connection(request(username="mallory"), blocklist, now=NOW + timedelta(hours=25))

    assert (
        not by_source.response.allow and "198.51.100.66" in by_source.response.error_msg_on_denied_connection
    )
    assert not by_user.response.allow and blocklist_key("user", "MALLORY") == "user#mallory"
    for decision in (by_source, by_user):
        message = decision.response.to_answer()["error-msg-on-denied-connection"]
        assert 0 < len(message) <= MAX_DENIAL_MESSAGE_CHARS and "UTC" in message
    assert expired.response.allow


def test_an_unreadable_blocklist_allows_and_says_why() -> None:
    class Broken:
        def active_blocks(self, keys: list[str], now: int) -> list[BlockEntry]:
            raise ConnectionError("DynamoDB unreachable")

    decision = authorize_connection(request(), Broken(), now=NOW)
    assert decision.response.allow and decision.blocklist_error and "unreachable" in decision.blocklist_error


def test_the_real_parser_and_detector_feed_the_bus_blocklist_and_security_hub(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a password spray in the log (real records), when the ingest runs with the real parser and
    detector, then a HIGH R4 finding is published whose detail blocks the source, and which Security Hub
    receives as ASFF under the same id."""
    from cvpn_shared.monitoring.attempts import parse_events
    from cvpn_shared.monitoring.detection.detector import DetectionSettings, Detector, InMemoryDetectionState
    from cvpn_shared.monitoring.settings import get_settings
    from cvpn_shared.monitoring.wiring import asff_for
    from tests.monitoring.unit.ingest.conftest import (
        LOG_GROUP,
        FakeLogGroup,
        RecordingBus,
        RemainingTime,
        record,
    )

    logs = FakeLogGroup()
    for minute, user in enumerate(("ann", "ben", "cat", "dan", "eve", "fay")):
        logs.put(NOW - timedelta(minutes=10 - minute), record(user, device_ip="198.51.100.66"))
    bus = RecordingBus()

    class Checkpoints:  # in memory; the DynamoDB behaviour is covered in test_ingest
        def claim(self, name: str, *, owner: str, now_ms: int, lease_until_ms: int) -> Any:
            from cvpn_shared.monitoring.dal.checkpoints import Checkpoint

            return Checkpoint(name, version=1, lease_owner="me")

        def save(self, checkpoint: Any, *, expected_version: int) -> Any:
            return checkpoint

        def release(self, checkpoint: Any) -> Any:
            return checkpoint

    from cvpn_shared.monitoring.ingest import ConnectionLogIngest, EndpointArns

    ingest = ConnectionLogIngest(
        reader=logs,
        checkpoints=Checkpoints(),
        publisher=bus,
        detector=Detector(DetectionSettings(), InMemoryDetectionState()),
        parse_events=parse_events,
        source="example.clientvpn.monitor",
        arns=EndpointArns("aws", "us-east-1", "123456789012"),
        owner="me",
        wall_clock_ms=lambda: int(NOW.timestamp() * 1000),
    )
    ingest.run([LOG_GROUP], now=NOW, remaining_ms=RemainingTime())

    spray = [entry for entry in bus.published if entry.detail["rule_id"] == "R4"]
    assert spray and spray[0].detail["severity"] == "HIGH"
    alert = Finding.model_validate(spray[0].detail)
    blocklist = MemoryBlocklist()
    deliver_finding(alert, channels(blocklist, Recorder()), ResponsePolicy(), now=NOW)
    assert "source#198.51.100.66" in blocklist.entries

    monkeypatch.setenv("SECURITY_HUB_ENABLED", "true")
    get_settings.cache_clear()
    try:
        to_asff = asff_for(list(spray[0].resources), "arn:aws:lambda:us-east-1:123456789012:function:deliver")
        assert to_asff is not None
        asff = to_asff(alert)
    finally:
        get_settings.cache_clear()
    assert asff["Id"] == alert.finding_id and asff["Severity"]["Label"] == "HIGH"
    assert asff["Resources"][0]["Id"] == spray[0].resources[0]
    assert asff["ProductArn"] == "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"


def test_a_handler_health_event_reaches_operations() -> None:
    """Given a health event (handler timed out 3 times), when delivered, then operations get one
    notification naming the endpoint, the reason and the count."""
    from cvpn_shared.monitoring.alerting import deliver_health_alert
    from cvpn_shared.monitoring.findings import HealthIssue

    sent: list[tuple[str, dict[str, Any], dict[str, str]]] = []

    class Operations:
        def publish(self, subject: str, message: dict[str, Any], attributes: dict[str, str]) -> str:
            sent.append((subject, message, attributes))
            return "ops-1"

    issue = HealthIssue.model_validate(
        {
            "schema_version": "1",
            "kind": "client-connect-handler",
            "endpoint_id": "cvpn-endpoint-0123456789abcdef0",
            "reason": "client-connect-handler-timed-out",
            "count": 3,
            "first_seen": "2026-11-28T11:50:00Z",
            "last_seen": "2026-11-28T11:55:00Z",
            "sample_connection_ids": ["cvpn-connection-1"],
        }
    )
    assert deliver_health_alert(issue, Operations()) == "ops-1"
    subject, message, attributes = sent[0]
    assert "client-connect-handler-timed-out" in subject and len(subject) <= 100
    assert message["count"] == 3 and "3 connection attempt(s)" in message["summary"]
    assert attributes["kind"] == "client-connect-handler-health"


def offline_ec2() -> Any:
    """An EC2 client for botocore's stubber (fake credentials; it sends nothing)."""
    return boto3.client(
        "ec2", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def _connection(connection_id: str, common_name: str, status: str = "active") -> dict[str, Any]:
    return {"ConnectionId": connection_id, "CommonName": common_name, "Status": {"Code": status}}


def _terminated(connection_id: str) -> dict[str, Any]:
    return _terminated_many(connection_id, current="terminated")


def test_a_certificate_users_connections_are_found_by_common_name_and_cut_one_by_one() -> None:
    """Given an endpoint whose connections span two pages of DescribeClientVpnConnections (the
    certificate's two active ones, one of its connections already ended, another certificate's, and
    one of its own that ends before it is cut), when the sessions of that common name are cut, then
    every page is read and each of its active connections is terminated by ConnectionId (the one that
    ended meanwhile is skipped); no call names a Username (botocore's stubber checks every call
    against the EC2 model)."""
    endpoint = "cvpn-endpoint-0123456789abcdef0"
    ec2 = offline_ec2()
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_client_vpn_connections",
            {
                "Connections": [
                    _connection("cvpn-connection-a", CERTIFICATE),
                    _connection("cvpn-connection-b", "someone-else.example"),
                    _connection("cvpn-connection-c", CERTIFICATE, status="terminated"),
                ],
                "NextToken": "page-2",
            },
            {"ClientVpnEndpointId": endpoint},
        )
        stub.add_response(
            "describe_client_vpn_connections",
            {
                "Connections": [
                    _connection("cvpn-connection-d", CERTIFICATE),
                    _connection("cvpn-connection-e", CERTIFICATE),
                ]
            },
            {"ClientVpnEndpointId": endpoint, "NextToken": "page-2"},
        )
        for connection_id in ("cvpn-connection-a", "cvpn-connection-d"):
            stub.add_response(
                "terminate_client_vpn_connections",
                _terminated(connection_id),
                {"ClientVpnEndpointId": endpoint, "ConnectionId": connection_id},
            )
        stub.add_client_error(
            "terminate_client_vpn_connections",
            service_error_code="InvalidClientVpnConnection.IdNotFound",
            expected_params={"ClientVpnEndpointId": endpoint, "ConnectionId": "cvpn-connection-e"},
        )

        statuses = ClientVpnConnections(ec2).terminate_common_name(endpoint, CERTIFICATE)

        stub.assert_no_pending_responses()
    assert [status["ConnectionId"] for status in statuses] == ["cvpn-connection-a", "cvpn-connection-d"]


def test_a_refused_termination_is_raised() -> None:
    """Given TerminateClientVpnConnections refusing (not allowed), when a certificate's sessions are
    cut, then the error is raised: the delivery fails and is retried, rather than reporting a cut."""
    ec2 = offline_ec2()
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_client_vpn_connections",
            {"Connections": [_connection("cvpn-connection-a", CERTIFICATE)]},
        )
        stub.add_client_error("terminate_client_vpn_connections", service_error_code="UnauthorizedOperation")
        with pytest.raises(ClientError, match="UnauthorizedOperation"):
            ClientVpnConnections(ec2).terminate_common_name("cvpn-endpoint-0123456789abcdef0", CERTIFICATE)


def _user_connection(connection_id: str, username: str, status: str = "active") -> dict[str, Any]:
    return {"ConnectionId": connection_id, "Username": username, "Status": {"Code": status}}


def _terminated_many(*connection_ids: str, current: str = "terminating") -> dict[str, Any]:
    """TerminateClientVpnConnections' answer for these connections (previously active)."""
    return {
        "ClientVpnEndpointId": "cvpn-endpoint-0123456789abcdef0",
        "ConnectionStatuses": [
            {"ConnectionId": cid, "PreviousStatus": {"Code": "active"}, "CurrentStatus": {"Code": current}}
            for cid in connection_ids
        ],
    }


ENDPOINT = "cvpn-endpoint-0123456789abcdef0"


def test_a_user_with_fewer_than_five_sessions_is_cut_in_one_call() -> None:
    ec2 = offline_ec2()
    with Stubber(ec2) as stub:
        stub.add_response(
            "terminate_client_vpn_connections",
            _terminated_many("cvpn-connection-a", "cvpn-connection-b"),
            {"ClientVpnEndpointId": ENDPOINT, "Username": "joe"},
        )
        statuses = ClientVpnConnections(ec2).terminate_user(ENDPOINT, "joe")
        stub.assert_no_pending_responses()
    assert [status["ConnectionId"] for status in statuses] == ["cvpn-connection-a", "cvpn-connection-b"]


def test_a_user_with_more_than_five_sessions_has_the_rest_cut_one_by_one() -> None:
    """Given a user with seven active connections, when their sessions are cut, then the call by
    Username (AWS: for up to five connections) cuts five, and the two still active are then cut by
    ConnectionId; another user's connection and the five already cut are left alone."""
    first_five = [f"cvpn-connection-{letter}" for letter in "abcde"]
    ec2 = offline_ec2()
    with Stubber(ec2) as stub:
        stub.add_response(
            "terminate_client_vpn_connections",
            _terminated_many(*first_five),
            {"ClientVpnEndpointId": ENDPOINT, "Username": "joe"},
        )
        stub.add_response(
            "describe_client_vpn_connections",
            {
                "Connections": [
                    *(_user_connection(cid, "joe", status="terminating") for cid in first_five[:3]),
                    *(_user_connection(cid, "joe") for cid in first_five[3:]),  # not yet updated
                    _user_connection("cvpn-connection-f", "joe"),
                    _user_connection("cvpn-connection-g", "joe"),
                    _user_connection("cvpn-connection-h", "someone-else"),
                ]
            },
            {"ClientVpnEndpointId": ENDPOINT},
        )
        for connection_id in ("cvpn-connection-f", "cvpn-connection-g"):
            stub.add_response(
                "terminate_client_vpn_connections",
                _terminated(connection_id),
                {"ClientVpnEndpointId": ENDPOINT, "ConnectionId": connection_id},
            )
        statuses = ClientVpnConnections(ec2).terminate_user(ENDPOINT, "joe")
        stub.assert_no_pending_responses()
    assert [status["ConnectionId"] for status in statuses] == [
        *first_five,
        "cvpn-connection-f",
        "cvpn-connection-g",
    ]


def test_a_refused_by_user_form_falls_back_to_cutting_each_connection() -> None:
    """Given TerminateClientVpnConnections refusing the by-Username form itself (as AWS may for a user
    with more than five connections), when a user's sessions are cut, then each active connection of
    the user is cut by ConnectionId."""
    ec2 = offline_ec2()
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "terminate_client_vpn_connections",
            service_error_code="InvalidParameterValue",
            expected_params={"ClientVpnEndpointId": ENDPOINT, "Username": "joe"},
        )
        stub.add_response(
            "describe_client_vpn_connections",
            {
                "Connections": [
                    _user_connection("cvpn-connection-a", "joe"),
                    _user_connection("cvpn-connection-b", "ann"),
                ]
            },
            {"ClientVpnEndpointId": ENDPOINT},
        )
        stub.add_response(
            "terminate_client_vpn_connections",
            _terminated("cvpn-connection-a"),
            {"ClientVpnEndpointId": ENDPOINT, "ConnectionId": "cvpn-connection-a"},
        )
        statuses = ClientVpnConnections(ec2).terminate_user(ENDPOINT, "joe")
        stub.assert_no_pending_responses()
    assert [status["ConnectionId"] for status in statuses] == ["cvpn-connection-a"]


@pytest.mark.parametrize("code", ["UnauthorizedOperation", "RequestLimitExceeded"])
def test_a_user_termination_refused_for_permission_or_throttling_is_raised(code: str) -> None:
    ec2 = offline_ec2()
    with Stubber(ec2) as stub:
        stub.add_client_error("terminate_client_vpn_connections", service_error_code=code)
        with pytest.raises(ClientError, match=code):
            ClientVpnConnections(ec2).terminate_user(ENDPOINT, "joe")


def test_a_user_without_sessions_is_not_an_error() -> None:
    ec2 = offline_ec2()
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "terminate_client_vpn_connections", service_error_code="InvalidClientVpnConnection.UserNotFound"
        )
        assert ClientVpnConnections(ec2).terminate_user(ENDPOINT, "joe") == []
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    "typed",
    ["mal\x01lory\u202e", "M" * 600, "eve\nR6: forged line"],
    ids=["control-and-bidi", "very-long", "line-break"],
)
def test_a_block_of_a_name_as_logged_refuses_the_login_that_typed_it(typed: str) -> None:
    """Given a user name the connection log carried with characters that are not printable or past
    the length the parser keeps, and a block of that user as the parser kept the name (which is what
    a finding and its block name), when the same person connects and Client VPN hands the handler
    the name as typed, then the handler refuses them, from the attack's address and (user block)
    from anywhere."""
    from cvpn_shared.monitoring.attempts import parse_event
    from tests.fixtures.connection_logs import failed_record

    attempt = parse_event(
        "e-1", 0, json.dumps(failed_record(username=typed, **{"device-ip": "198.51.100.7"}))
    )
    assert attempt is not None and attempt.user != typed  # the parser bounded it
    blocklist = MemoryBlocklist()
    expiry = int((NOW + timedelta(hours=24)).timestamp())
    blocked_at = int(NOW.timestamp())
    blocklist.block(
        BlockEntry("user_source", attempt.user, expiry, blocked_at, "R6", "f" * 64, source="198.51.100.7")
    )
    from_attack = authorize_connection(
        request(username=typed, **{"public-ip": "198.51.100.7"}), blocklist, now=NOW
    )
    from_elsewhere = authorize_connection(
        request(username=typed, **{"public-ip": "203.0.113.10"}), blocklist, now=NOW
    )
    assert not from_attack.response.allow
    assert from_elsewhere.response.allow  # a user@address block holds that address only

    blocklist.block(BlockEntry("user", attempt.user, expiry, blocked_at, "R3", "f" * 64))
    anywhere = authorize_connection(
        request(username=typed, **{"public-ip": "203.0.113.10"}), blocklist, now=NOW
    )
    assert not anywhere.response.allow
