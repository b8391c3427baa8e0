"""End to end on the local cloud, the attacks on monitoring itself: a log group that cannot be read, a
log line made to wedge the ingest, records that claim another endpoint, and a user name made to make
SNS refuse the e-mail alert. Each plays the attack through the deployed stack and the scheduled ingest.

The second endpoint is one "created elsewhere" (straight through the EC2 API, as another team would),
whose log group the operator lists in the watched-log-groups parameter.
"""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cvpn.monitoring_demo import LocalMonitoring, wait_for
from cvpn_shared.monitoring.attempts import MAX_FIELD_CHARS
from cvpn_shared.monitoring.ingest import INGEST_HEALTH_DETAIL_TYPE
from localcloud import logs as local_logs
from tests.fixtures.connection_logs import failed_record
from tests.monitoring.e2e.conftest import WATCHED_LOG_GROUPS_PARAMETER, log_to
from tests.provisioning.workflow.harness import Provisioning

REFUSED_READS = "AccessDeniedException"


@dataclass
class Watched:
    """Two watched log groups: ``first`` (sorts first) owned by the endpoint created elsewhere, and
    ``second`` owned by the product's endpoint."""

    monitoring: LocalMonitoring
    other_endpoint_id: str
    first: str
    second: str

    def put(self, log_group_name: str, records: list[dict[str, Any]]) -> None:
        """Write ``records`` into ``log_group_name``, a second apart, ending a few seconds ago."""
        logs = self.monitoring.cloud.client("logs")
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=log_group_name, logStreamName="written")
        now = self.monitoring.cloud.clock.millis()
        events = [
            {"timestamp": now - 5_000 - (len(records) - i) * 1_000, "message": json.dumps(record)}
            for i, record in enumerate(records)
        ]
        logs.put_log_events(logGroupName=log_group_name, logStreamName="written", logEvents=events)

    def findings_about(self, device_ip: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        def found() -> list[dict[str, Any]]:
            self.monitoring.findings_on_bus()
            return [
                event
                for event in self.monitoring.bus_tap.received
                if event.get("detail-type", "").endswith("Attempts")
                and event["detail"]["entity"].get("device_ip") == device_ip
            ]

        return wait_for(f"a finding about {device_ip}", found, timeout=timeout)


@pytest.fixture
def watched(product: Provisioning, monitoring: LocalMonitoring) -> Iterator[Watched]:
    cloud = product.cloud
    logs, ssm, ec2 = cloud.client("logs"), cloud.client("ssm"), cloud.client("ec2")
    suffix = uuid.uuid4().hex[:8]
    first, second = f"/cvpn-e2e-hardening/a-{suffix}", f"/cvpn-e2e-hardening/b-{suffix}"
    for name in (first, second):
        logs.create_log_group(logGroupName=name)
    other = ec2.create_client_vpn_endpoint(
        ClientCidrBlock="10.250.0.0/22",
        ServerCertificateArn=product.network.server_certificate_arn,
        AuthenticationOptions=[
            {
                "Type": "certificate-authentication",
                "MutualAuthentication": {
                    "ClientRootCertificateChainArn": product.network.client_root_certificate_arn
                },
            }
        ],
        ConnectionLogOptions={"Enabled": True, "CloudwatchLogGroup": first},
    )["ClientVpnEndpointId"]
    ssm.put_parameter(
        Name=WATCHED_LOG_GROUPS_PARAMETER, Value=f"{first},{second}", Type="StringList", Overwrite=True
    )
    log_to(monitoring, second)
    try:
        yield Watched(monitoring, other, first, second)
    finally:
        local_logs.allow_reads(first)
        log_to(monitoring, monitoring.log_group_name)
        ssm.delete_parameter(Name=WATCHED_LOG_GROUPS_PARAMETER)
        ec2.delete_client_vpn_endpoint(ClientVpnEndpointId=other)
        for name in (first, second):
            logs.delete_log_group(logGroupName=name)


def fresh_source() -> str:
    """An address no other test used (detection state outlives a test)."""
    return f"198.18.{random.randrange(1, 255)}.{random.randrange(1, 255)}"


def failures(endpoint_id: str, device_ip: str, users: list[str]) -> list[dict[str, Any]]:
    return [
        failed_record(
            **{
                "client-vpn-endpoint-id": endpoint_id,
                "connection-id": f"cvpn-connection-{uuid.uuid4().hex[:17]}",
                "connection-attempt-failure-reason": "Authentication failed",
                "device-ip": device_ip,
                "username": user,
            }
        )
        for user in users
    ]


def test_a_log_group_that_cannot_be_read_does_not_stop_the_groups_after_it(watched: Watched) -> None:
    """Given two watched groups, reads of the first refused (AccessDeniedException), when an attacker
    sprays five users in the second and the schedule fires, then the spray is detected there, and a
    health event on the findings bus names the refused group and the error."""
    local_logs.refuse_reads(watched.first, REFUSED_READS)
    source = fresh_source()
    watched.put(watched.second, failures(watched.monitoring.endpoint_id, source, [f"u{i}" for i in range(5)]))

    watched.monitoring.run_ingest()

    assert "R4" in {event["detail"]["rule_id"] for event in watched.findings_about(source)}
    issues = [
        event["detail"]
        for event in watched.monitoring.bus_tap.received
        if event.get("detail-type") == INGEST_HEALTH_DETAIL_TYPE
        and event["detail"]["log_group_name"] == watched.first
    ]
    assert issues and REFUSED_READS in issues[-1]["error"]


def test_a_100_kb_user_name_with_control_characters_cannot_wedge_the_ingest(watched: Watched) -> None:
    """Given a failed login whose user name is 100 KB with line breaks and escape sequences, followed by
    a password spray, when the schedule fires, then the spray is detected and the long name is kept
    (in the detection state) as at most MAX_FIELD_CHARS printable characters."""
    source = fresh_source()
    evil = "wedge\r\n\x1b[2J\x00" + "W" * 100_000
    records = failures(watched.monitoring.endpoint_id, fresh_source(), [evil])
    records += failures(watched.monitoring.endpoint_id, source, [f"v{i}" for i in range(5)])
    watched.put(watched.second, records)

    watched.monitoring.run_ingest()

    assert "R4" in {event["detail"]["rule_id"] for event in watched.findings_about(source)}
    dynamodb = watched.monitoring.cloud.client("dynamodb")
    table = watched.monitoring.stack.physical_ids["DetectionStateTable"]
    keys = [item["pk"]["S"] for item in dynamodb.scan(TableName=table, ProjectionExpression="pk")["Items"]]
    (name,) = [key.split("#user#", 1)[1] for key in keys if "#user#wedge" in key]
    assert name.startswith("wedge\\x0d\\x0a\\x1b[2J\\x00W") and len(name) <= MAX_FIELD_CHARS


def test_a_record_claiming_another_endpoint_is_judged_by_the_groups_owner(watched: Watched) -> None:
    """Given records in the product endpoint's group that name the endpoint created elsewhere, when the
    spray they hold is detected, then the finding (and its resource) is the product endpoint's, whose
    group holds the records, not the endpoint they name."""
    source = fresh_source()
    claimed = failures(watched.other_endpoint_id, source, [f"w{i}" for i in range(5)])
    watched.put(watched.second, claimed)

    watched.monitoring.run_ingest()

    spray = [event for event in watched.findings_about(source) if event["detail"]["rule_id"] == "R4"]
    owner = watched.monitoring.endpoint_id
    assert spray[-1]["detail"]["endpoint_id"] == owner
    assert spray[-1]["resources"] == [f"arn:aws:ec2:us-east-1:123456789012:client-vpn-endpoint/{owner}"]


def test_an_alert_about_a_hostile_user_name_reaches_the_alerts_topic(watched: Watched) -> None:
    """Given five failed logins from one address for a 300-character user name that starts with a line
    break and holds control characters and a right-to-left override, when the schedule fires, then the
    e-mail alerts reach the alerts topic (SNS takes their subject): one printable line under 100
    characters, the name escaped in the body."""
    source = fresh_source()
    marker = uuid.uuid4().hex[:8]
    evil = f"\r\nBcc: everyone\x07\x1b[31m\u202em{marker}" + "x" * 300
    watched.put(watched.second, failures(watched.monitoring.endpoint_id, source, [evil] * 5))

    watched.monitoring.run_ingest()

    def alerts() -> list[dict[str, Any]]:
        watched.monitoring.alerts.drain()
        return [e for e in watched.monitoring.alerts.received if f"m{marker}" in e.get("Message", "")]

    envelopes = wait_for("the e-mail alerts", alerts, timeout=90)
    for envelope in envelopes:
        subject = envelope["Subject"]
        assert subject.isascii() and subject.isprintable() and len(subject) < 100
        assert f"user \\x0d\\x0aBcc: everyone\\x07\\x1b[31m\\u202em{marker}x" in envelope["Message"]
