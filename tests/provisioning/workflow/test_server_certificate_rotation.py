"""A server certificate close to expiry is found by the daily check on the local cloud: the endpoint
whose document allows it is rotated to the renewed certificate by the update workflow (a revision,
the same CA, so users keep their configuration); the one that does not is only alarmed."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cvpn.cli import main
from localcloud.scheduler import Scheduler
from tests.provisioning.workflow.harness import NotificationInbox, Provisioning

DETAIL_TYPE = "Client VPN Server Certificate Expiring"
DAY = 86400


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _authority(now: dt.datetime) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name("Rotation test CA"))
        .issuer_name(_name("Rotation test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, certificate)


def _import_server_certificate(
    product: Provisioning, authority: Authority, domain: str, now: dt.datetime, days: int
) -> str:
    """A server certificate for ``domain`` signed by ``authority``, valid ``days`` from ``now``
    (emulated), imported into ACM with its chain; its ARN."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(domain))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(authority.key, hashes.SHA256())
    )
    return str(
        product.cloud.client("acm").import_certificate(
            Certificate=certificate.public_bytes(serialization.Encoding.PEM),
            PrivateKey=key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            CertificateChain=authority.pem,
        )["CertificateArn"]
    )


@pytest.fixture
def cli(product: Provisioning, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """`cvpn ARGS` in-process against the product's local cloud: (exit status, stdout, stderr)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main(
            [
                *args,
                "--endpoint-url",
                product.cloud.endpoint_url,
                "--region",
                product.cloud.region,
                "--stack-name",
                product.stack.stack_name,
            ]
        )
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


@pytest.fixture
def certificate_events(product: Provisioning) -> Iterator[str]:
    """An SQS queue that receives the findings bus's server certificate events."""
    sqs, events = product.cloud.client("sqs"), product.cloud.client("events")
    name = f"certificates-{uuid.uuid4().hex[:8]}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bus = product.stack.outputs["FindingsBusName"]
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"detail-type": [DETAIL_TYPE]}))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
    yield queue_url
    events.remove_targets(Rule=name, EventBusName=bus, Ids=["queue"])
    events.delete_rule(Name=name, EventBusName=bus)


def _received(
    product: Provisioning, queue_url: str, wanted: set[str], since: dt.datetime, timeout: float = 30
) -> dict[str, Any]:
    """The event of each endpoint in ``wanted`` (by endpoint id) from a check made after ``since``,
    waiting until all have come."""
    sqs, found = product.cloud.client("sqs"), {}
    deadline = time.monotonic() + timeout
    while set(found) < wanted and time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            event = json.loads(message["Body"])
            if dt.datetime.fromisoformat(event["detail"]["checked_at"]) >= since:
                found[event["detail"]["endpoint_id"]] = event
    assert set(found) >= wanted, f"events for {sorted(wanted - set(found))} never came"
    return found


def _days_left(detail: dict[str, Any]) -> int:
    """Whole days from the check to the certificate's expiry, from the event's own timestamps."""
    left = dt.datetime.fromisoformat(detail["not_after"]) - dt.datetime.fromisoformat(detail["checked_at"])
    return left // dt.timedelta(days=1)


def _fire_certificate_check(product: Provisioning) -> None:
    """Deliver the check's daily schedule now, as EventBridge would (with the schedule's role)."""
    function_arn = product.stack.functions["CheckServerCertificatesFunction"].arn
    (schedule,) = [s for s in product.stack.schedules if any(t.arn == function_arn for t in s.targets)]
    scheduler = Scheduler(endpoint_url=product.cloud.endpoint_url, region=product.cloud.region)
    scheduler.role_credentials = product.cloud.role_credentials
    scheduler.add_stack(product.stack)
    try:
        assert scheduler.fire_now(schedule.logical_id)
    finally:
        scheduler.stop()  # waits for the delivery in flight


def _notifications(inbox: NotificationInbox, request_id: str, status: str, timeout: float = 30) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [
            n
            for n in inbox.notifications_for(request_id)
            if n["MessageAttributes"]["status"]["Value"] == status
        ]
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {status} notification for {request_id}")


def test_a_server_certificate_close_to_expiry_is_rotated_where_allowed_and_alarmed_elsewhere(
    product: Provisioning, inbox: NotificationInbox, certificate_events: str, cli: Any
) -> None:
    clock = product.cloud.clock
    authority = _authority(clock.now())
    domain = f"vpn-{uuid.uuid4().hex[:8]}.example.internal"
    expiring = _import_server_certificate(product, authority, domain, clock.now(), days=60)

    allowed = product.request(
        schema_version="2",
        server_certificate_arn=expiring,
        server_certificate_rotation={"automatic": True},
    )
    alarm_only = product.request(schema_version="2", server_certificate_arn=expiring)
    executions = [product.start(product.provision_arn, {"request": r}) for r in (allowed, alarm_only)]
    for execution in executions:
        progress = product.wait(execution)
        assert progress.status == "SUCCEEDED", progress.cause
    rotated_id = product.endpoints_for(allowed["request_id"])[0]["ClientVpnEndpointId"]
    kept_id = product.endpoints_for(alarm_only["request_id"])[0]["ClientVpnEndpointId"]
    ec2 = product.cloud.client("ec2")
    profile_before = ec2.export_client_vpn_client_configuration(ClientVpnEndpointId=rotated_id)

    # 60 days left: the check finds nothing to say about either endpoint.
    status, out, err = cli("server-cert", "check", rotated_id)
    assert (status, err) == (0, "") and f"{rotated_id} ({allowed['request_id']}): valid" in out
    _fire_certificate_check(product)
    assert not [
        n
        for r in (allowed, alarm_only)
        for n in inbox.notifications_for(r["request_id"])
        if n["MessageAttributes"]["status"]["Value"] == "SERVER_CERTIFICATE_EXPIRING"
    ]

    # Fifty days on, 10 are left; the operator has imported the renewed certificate (same CA).
    clock.advance(50 * DAY)
    renewed = _import_server_certificate(product, authority, domain, clock.now(), days=395)
    status, out, _ = cli("server-cert", "check", allowed["request_id"])
    assert status == 3 and "EXPIRING" in out and f"renewed certificate {renewed} (users keep" in out
    assert "the daily check applies" in out  # a look on demand starts nothing
    since = clock.now()
    _fire_certificate_check(product)

    found = _received(product, certificate_events, {rotated_id, kept_id}, since)
    for endpoint_id in (rotated_id, kept_id):
        detail = found[endpoint_id]["detail"]
        assert found[endpoint_id]["source"].endswith(".clientvpn.provisioning")
        # Ten days less the emulated time the test itself took (time runs 1200 times faster here).
        assert (detail["certificate_arn"], detail["status"]) == (expiring, "expiring")
        assert detail["days_left"] == _days_left(detail) and 5 <= detail["days_left"] < 10
        assert detail["replacement_arn"] == renewed and detail["new_configuration_needed"] is False
        assert "keep their client configuration" in detail["users"]
    assert found[kept_id]["detail"]["action"] == "alarm-only"
    rotation = found[rotated_id]["detail"]
    assert rotation["action"] == "rotation-started"
    (alarm,) = _notifications(inbox, alarm_only["request_id"], "SERVER_CERTIFICATE_EXPIRING")
    days = found[kept_id]["detail"]["days_left"]
    assert alarm["Subject"] == f"Client VPN server certificate of {kept_id} expires in {days} day(s)"
    assert "cvpn apply" in json.loads(alarm["Message"])["remedy"]

    # The rotation is an apply: the update workflow changes the endpoint and records revision 2.
    progress = product.wait(rotation["execution_arn"])
    assert progress.status == "SUCCEEDED", progress.cause
    assert product.describe_endpoint(rotated_id)["ServerCertificateArn"] == renewed  # type: ignore[index]
    assert product.describe_endpoint(kept_id)["ServerCertificateArn"] == expiring  # type: ignore[index]
    record = product.record(allowed["request_id"])
    assert record is not None and record["revision"]["N"] == "2"
    assert json.loads(record["request"]["S"])["server_certificate_arn"] == renewed
    (updated,) = _notifications(inbox, allowed["request_id"], "UPDATED")
    message = json.loads(updated["Message"])
    assert message["applied_by"] == "server-certificate-rotation" and message["revision"] == 2
    assert "keep their client configuration" in message["users"]
    # Same CA: the profile users hold still trusts the endpoint (its <ca> block is unchanged).
    profile_after = ec2.export_client_vpn_client_configuration(ClientVpnEndpointId=rotated_id)
    ca_block = profile_before["ClientConfiguration"].split("<ca>")[1].split("</ca>")[0]
    assert ca_block == profile_after["ClientConfiguration"].split("<ca>")[1].split("</ca>")[0]

    # The next day's check finds the rotated endpoint fine and still alarms on the other.
    clock.advance(DAY)
    since = clock.now()
    _fire_certificate_check(product)
    later = _received(product, certificate_events, {kept_id}, since)
    assert rotated_id not in later
    status, out, _ = cli("server-cert", "check", "--json")
    reports = {report["endpoint_id"]: report for report in json.loads(out)}
    assert status == 3 and reports[rotated_id]["status"] == "valid"
    assert reports[rotated_id]["certificate_arn"] == renewed and reports[kept_id]["status"] == "expiring"
    assert _days_left(later[kept_id]["detail"]) == later[kept_id]["detail"]["days_left"] < days
