"""The finding's EventBridge detail (the spec's shape, exactly) and its ASFF form."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from cvpn_shared.monitoring.detection.detector import DetectionSettings, Detector, InMemoryDetectionState
from cvpn_shared.monitoring.findings import (
    HEALTH_REASONS,
    Finding,
    FindingCounts,
    FindingEntity,
    FindingWindow,
    finding_id,
    is_health_reason,
)
from tests.fixtures.connection_logs import ConnectionLog

NOW = datetime(2026, 3, 27, 8, 0, tzinfo=UTC)
ENDPOINT_ARN = "arn:aws:ec2:eu-west-1:123456789012:client-vpn-endpoint/cvpn-endpoint-aaa111bbb222ccc33"
PRODUCT_ARN = "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default"

SPEC_DETAIL_KEYS = {
    "schema_version",
    "finding_id",
    "rule_id",
    "title",
    "severity",
    "mitre",
    "entity",
    "endpoint_id",
    "window",
    "first_seen",
    "last_seen",
    "counts",
    "failure_reasons",
    "sample_connection_ids",
    "allowlisted",
    "runbook_url",
}
# Beyond the spec's keys: the addresses that took part in the attack, which the response blocks
# (the spec's "Whom to block") and which the alert function cannot work out from the counts.
EXTENSION_DETAIL_KEYS = {"attack_sources"}


def detected_r1() -> Finding:
    log = ConnectionLog()
    settings = DetectionSettings(runbook_url="https://wiki.example.com/runbooks/cvpn-r1")
    events = [log.failure(index * 30, user=("alice", "bob")[index % 2]) for index in range(6)]
    result = Detector(settings, InMemoryDetectionState()).observe(log.attempts(events), now=log.at(600))
    (finding,) = result.findings
    return finding


def test_event_detail_has_exactly_the_spec_shape() -> None:
    detail = detected_r1().event_detail()

    assert set(detail) == SPEC_DETAIL_KEYS | EXTENSION_DETAIL_KEYS
    assert detail["attack_sources"] == ["203.0.113.7"]
    assert set(detail["entity"]) == {"device_ip", "username", "common_name"}
    assert set(detail["window"]) == {"start", "end"}
    assert set(detail["counts"]) == {"failures", "distinct_users", "distinct_ips"}
    assert json.loads(json.dumps(detail)) == detail  # JSON-serialisable as is


def test_event_detail_values() -> None:
    finding = detected_r1()
    detail = finding.event_detail()

    assert detail["schema_version"] == "1.0"
    assert detail["finding_id"] == finding.finding_id
    assert detail["rule_id"] == "R1"
    assert detail["severity"] == "MEDIUM"
    assert detail["mitre"] == ["T1110.001"]
    assert detail["title"] == "Brute force from one source: 203.0.113.7"
    assert detail["entity"] == {"device_ip": "203.0.113.7", "username": None, "common_name": None}
    assert detail["endpoint_id"] == "cvpn-endpoint-aaa111bbb222ccc33"
    assert detail["window"] == {"start": "2026-03-26T20:00:00.000Z", "end": "2026-03-26T20:02:30.000Z"}
    assert detail["first_seen"] == "2026-03-26T20:00:00.000Z"
    assert detail["last_seen"] == "2026-03-26T20:02:30.000Z"
    assert detail["counts"] == {"failures": 6, "distinct_users": 2, "distinct_ips": 1}
    assert detail["failure_reasons"] == ["authentication-failed"]
    assert len(detail["sample_connection_ids"]) == 6
    assert detail["allowlisted"] is False
    assert detail["runbook_url"] == "https://wiki.example.com/runbooks/cvpn-r1"


def test_asff_has_the_required_fields_and_maps_the_finding() -> None:
    finding = detected_r1()

    asff = finding.to_asff(
        account_id="123456789012",
        region="eu-west-1",
        product_arn=PRODUCT_ARN,
        endpoint_arn=ENDPOINT_ARN,
        now=NOW,
    )

    required = {
        "SchemaVersion",
        "Id",
        "ProductArn",
        "GeneratorId",
        "AwsAccountId",
        "Types",
        "CreatedAt",
        "UpdatedAt",
        "Severity",
        "Title",
        "Description",
        "Resources",
    }
    assert required <= set(asff)
    assert asff["SchemaVersion"] == "2018-10-08"
    assert asff["Id"] == finding.finding_id
    assert asff["GeneratorId"] == "R1"
    assert asff["ProductArn"] == PRODUCT_ARN
    assert asff["AwsAccountId"] == "123456789012"
    assert asff["Severity"] == {"Label": "MEDIUM", "Original": "MEDIUM"}
    assert asff["Types"] == ["TTPs/Credential Access/Brute Force"]
    assert asff["UpdatedAt"] == "2026-03-27T08:00:00.000Z"
    assert asff["CreatedAt"] == asff["FirstObservedAt"] == "2026-03-26T20:00:00.000Z"
    assert asff["LastObservedAt"] == "2026-03-26T20:02:30.000Z"
    assert asff["Resources"] == [
        {"Type": "AwsEc2ClientVpnEndpoint", "Id": ENDPOINT_ARN, "Partition": "aws", "Region": "eu-west-1"}
    ]
    assert asff["Network"] == {"Direction": "IN", "SourceIpV4": "203.0.113.7"}
    assert asff["Remediation"]["Recommendation"]["Url"] == "https://wiki.example.com/runbooks/cvpn-r1"
    assert all(isinstance(value, str) for value in asff["ProductFields"].values())
    assert len(asff["ProductFields"]) <= 50
    assert len(asff["Title"]) <= 256 and len(asff["Description"]) <= 1024
    assert json.loads(json.dumps(asff)) == asff


def build(**changes: object) -> Finding:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    values: dict[str, object] = {
        "finding_id": finding_id("R4", "cvpn-endpoint-1", "device_ip:2001:db8::1", start),
        "rule_id": "R4",
        "title": "Password spray from one source: 2001:db8::1",
        "severity": "HIGH",
        "mitre": ["T1110.003"],
        "entity": FindingEntity(device_ip="2001:db8::1"),
        "entity_key": "device_ip:2001:db8::1",
        "endpoint_id": "cvpn-endpoint-1",
        "window": FindingWindow(start=start, end=start + timedelta(minutes=5)),
        "first_seen": start,
        "last_seen": start + timedelta(minutes=5),
        "counts": FindingCounts(failures=9, distinct_users=6, distinct_ips=1),
        "failure_reasons": ["authentication-failed"],
        "sample_connection_ids": ["cvpn-connection-1"],
        "allowlisted": False,
        "runbook_url": "",
    }
    values.update(changes)
    return Finding.model_validate(values)


def test_asff_of_an_allowlisted_finding_is_informational() -> None:
    asff = build(allowlisted=True).to_asff(
        account_id="123456789012",
        region="eu-west-1",
        product_arn=PRODUCT_ARN,
        endpoint_arn=ENDPOINT_ARN,
        now=NOW,
    )

    assert asff["Severity"] == {"Label": "INFORMATIONAL", "Original": "HIGH"}


def test_asff_ipv6_source_and_other_partition() -> None:
    arn = "arn:aws-cn:ec2:cn-north-1:123456789012:client-vpn-endpoint/cvpn-endpoint-1"
    asff = build().to_asff(account_id="1", region="cn-north-1", product_arn="p", endpoint_arn=arn, now=NOW)

    assert asff["Network"] == {"Direction": "IN", "SourceIpV6": "2001:db8::1"}
    assert asff["Resources"][0]["Partition"] == "aws-cn"
    assert asff["Types"] == ["TTPs/Credential Access/Password Spraying"]
    assert "Remediation" not in asff


def test_finding_id_is_deterministic_and_distinguishes_its_parts() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    base = finding_id("R1", "cvpn-endpoint-1", "device_ip:192.0.2.1", start)

    assert base == finding_id("R1", "cvpn-endpoint-1", "device_ip:192.0.2.1", start)
    material = b"R1|cvpn-endpoint-1|device_ip:192.0.2.1|2026-01-01T00:00:00.000Z"
    assert base == hashlib.sha256(material).hexdigest()
    others = {
        finding_id("R2", "cvpn-endpoint-1", "device_ip:192.0.2.1", start),
        finding_id("R1", "cvpn-endpoint-2", "device_ip:192.0.2.1", start),
        finding_id("R1", "cvpn-endpoint-1", "device_ip:192.0.2.2", start),
        finding_id("R1", "cvpn-endpoint-1", "device_ip:192.0.2.1", start + timedelta(milliseconds=1)),
    }
    assert base not in others and len(others) == 4


def test_handler_malfunctions_are_health_reasons_but_client_connect_failed_is_not() -> None:
    assert "client-connect-failed" not in HEALTH_REASONS
    assert not is_health_reason("client-connect-failed")
    assert all(is_health_reason(reason) for reason in HEALTH_REASONS)
    assert is_health_reason("client-connect-handler-some-new-error")
    assert not is_health_reason("authorization-policy-deny")
    assert not is_health_reason(None)


def test_a_finding_comes_back_from_its_event_detail() -> None:
    finding = detected_r1()

    again = Finding.from_event_detail(json.loads(json.dumps(finding.event_detail())))

    assert again.model_dump(exclude={"escalated", "occurrence"}) == finding.model_dump(
        exclude={"escalated", "occurrence"}
    )
    assert again.entity_key == "device_ip:203.0.113.7"
