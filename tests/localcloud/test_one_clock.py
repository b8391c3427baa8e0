"""Every time rule of the local cloud follows its one emulated clock, hours and days ahead of the wall.

Each test moves the clock (``advance``) as ``cvpn local clock --advance`` does and shows that a
service judges its rule at the new emulated time, not at the machine's time.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from localcloud.clock import Clock
from localcloud.cloud import LocalCloud

HOUR = 3600
DAY = 86400


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(time_scale=1.0) as running:
        yield running


def _now_ms(cloud: LocalCloud) -> int:
    return cloud.clock.millis()


def _next_second() -> None:
    """Wait for the machine's clock to enter a new second: signers stamp whole seconds."""
    time.sleep(1.05 - time.time() % 1)


def _log_group(cloud: LocalCloud, name: str, retention_days: int | None = None) -> Any:
    logs = cloud.client("logs")
    logs.create_log_group(logGroupName=name)
    if retention_days is not None:
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)
    logs.create_log_stream(logGroupName=name, logStreamName="s")
    return logs


def _messages(logs: Any, group: str) -> list[str]:
    return [event["message"] for event in logs.filter_log_events(logGroupName=group)["events"]]


# ------------------------------------------------------------------------------------ CloudWatch Logs
@pytest.mark.parametrize("ahead", [3 * HOUR, 20 * DAY], ids=["hours", "days"])
def test_put_log_events_at_emulated_now_is_kept_and_found(cloud: LocalCloud, ahead: int) -> None:
    """Given the clock advanced hours or days past the wall, when an event stamped with emulated now
    is put, then nothing is rejected and FilterLogEvents finds it."""
    logs = _log_group(cloud, f"/one-clock/now-{ahead}")
    cloud.clock.advance(ahead)
    answer = logs.put_log_events(
        logGroupName=f"/one-clock/now-{ahead}",
        logStreamName="s",
        logEvents=[{"timestamp": _now_ms(cloud), "message": "written at emulated now"}],
    )
    assert "rejectedLogEventsInfo" not in answer
    assert _messages(logs, f"/one-clock/now-{ahead}") == ["written at emulated now"]


def test_put_log_events_judges_age_and_future_at_emulated_now(cloud: LocalCloud) -> None:
    """Too old (over 14 days), expired (over the retention) and too new (over 2 hours ahead) are judged
    against emulated now; the rest are kept."""
    logs = _log_group(cloud, "/one-clock/window", retention_days=7)
    cloud.clock.advance(30 * DAY)
    now = _now_ms(cloud)
    events = [
        {"timestamp": now - 15 * DAY * 1000, "message": "older than 14 days"},
        {"timestamp": now - 8 * DAY * 1000, "message": "older than the retention"},
        {"timestamp": now - 3 * HOUR * 1000, "message": "three hours ago"},
        {"timestamp": now + 1 * HOUR * 1000, "message": "in an hour"},
        {"timestamp": now + 3 * HOUR * 1000, "message": "in three hours"},
    ]
    answer = logs.put_log_events(logGroupName="/one-clock/window", logStreamName="s", logEvents=events)
    assert answer["rejectedLogEventsInfo"] == {
        "tooOldLogEventEndIndex": 1,
        "expiredLogEventEndIndex": 2,
        "tooNewLogEventStartIndex": 4,
    }
    assert _messages(logs, "/one-clock/window") == ["three hours ago", "in an hour"]


def test_events_past_the_retention_at_emulated_time_are_gone(cloud: LocalCloud) -> None:
    """Given a 1-day retention: after 3 hours the event is still read; after 2 days it is gone from
    FilterLogEvents, GetLogEvents and storedBytes."""
    logs = _log_group(cloud, "/one-clock/retention", retention_days=1)
    logs.put_log_events(
        logGroupName="/one-clock/retention",
        logStreamName="s",
        logEvents=[{"timestamp": _now_ms(cloud), "message": "short-lived"}],
    )
    cloud.clock.advance(3 * HOUR)
    assert _messages(logs, "/one-clock/retention") == ["short-lived"]
    cloud.clock.advance(2 * DAY)
    assert _messages(logs, "/one-clock/retention") == []
    assert logs.get_log_events(logGroupName="/one-clock/retention", logStreamName="s")["events"] == []
    groups = logs.describe_log_groups(logGroupNamePrefix="/one-clock/retention")["logGroups"]
    assert groups[0]["storedBytes"] == 0


def test_connection_logs_written_after_an_advance_are_read_back(cloud: LocalCloud) -> None:
    """The Client VPN's connection-log writer goes through the same rules: records of a connection made
    after advancing the clock a week are in the log group."""
    from localcloud.sample_network import build_sample_network

    network = build_sample_network(cloud.client, region=cloud.region)
    ec2 = cloud.client("ec2")
    endpoint_id = ec2.create_client_vpn_endpoint(
        ClientCidrBlock="172.22.0.0/22",
        ServerCertificateArn=network.server_certificate_arn,
        AuthenticationOptions=[
            {
                "Type": "directory-service-authentication",
                "ActiveDirectory": {"DirectoryId": network.directory_id},
            }
        ],
        ConnectionLogOptions={"Enabled": True, "CloudwatchLogGroup": network.log_group_name},
    )["ClientVpnEndpointId"]
    ec2.associate_client_vpn_target_network(ClientVpnEndpointId=endpoint_id, SubnetId=network.subnet_ids[0])
    cloud.clock.advance(7 * DAY)
    started = _now_ms(cloud)
    request = urllib.request.Request(
        f"{cloud.endpoint_url}/_localcloud/connect",
        data=json.dumps({"endpoint_id": endpoint_id, "username": "alice"}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    logs = cloud.client("logs")
    events = logs.filter_log_events(logGroupName=network.log_group_name, startTime=started)["events"]
    assert events, "the connection's records were dropped"
    assert all(event["timestamp"] >= started for event in events)


# ------------------------------------------------------------------------------------ S3
@pytest.fixture(scope="module")
def s3(cloud: LocalCloud) -> Any:
    client = cloud.client("s3", config=Config(signature_version="s3v4"))
    client.create_bucket(Bucket="one-clock")
    client.put_object(Bucket="one-clock", Key="profile.ovpn", Body=b"client\n")
    return client


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _presign(s3: Any, expires_in: int) -> str:
    url: str = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "one-clock", "Key": "profile.ovpn"}, ExpiresIn=expires_in
    )
    return url


def test_presigned_url_lasts_its_lifetime_in_emulated_time(cloud: LocalCloud, s3: Any) -> None:
    """A 1-hour URL still works 30 emulated minutes later and is refused as S3 refuses it once the
    clock has moved 2 hours past its signing."""
    url = _presign(s3, 3600)
    _next_second()
    assert _fetch(url) == (200, b"client\n")
    cloud.clock.advance(30 * 60)
    assert _fetch(url) == (200, b"client\n")
    cloud.clock.advance(90 * 60)
    status, body = _fetch(url)
    assert status == 403
    assert b"<Code>AccessDenied</Code><Message>Request has expired</Message>" in body
    assert b"<X-Amz-Expires>3600</X-Amz-Expires>" in body and b"<ServerTime>" in body


def test_presigned_url_signed_days_after_the_wall_works(cloud: LocalCloud, s3: Any) -> None:
    """Signed after the clock ran days ahead, a URL counts its lifetime from then."""
    cloud.clock.advance(3 * DAY)
    _next_second()
    url = _presign(s3, 900)
    assert _fetch(url) == (200, b"client\n")
    _next_second()
    cloud.clock.advance(DAY)
    assert _fetch(url)[0] == 403


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("soon", b"X-Amz-Expires should be a number"),
        ("-5", b"X-Amz-Expires must be non-negative"),
        ("604801", b"X-Amz-Expires must be less than a week (in seconds) that is; 604800"),
    ],
)
def test_a_malformed_presigned_url_is_refused_naming_the_parameter(
    s3: Any, expires: str, message: bytes
) -> None:
    url = _presign(s3, 60).replace("X-Amz-Expires=60", f"X-Amz-Expires={expires}")
    status, body = _fetch(url)
    assert status == 400
    assert b"<Code>AuthorizationQueryParametersError</Code>" in body and message in body


def test_signature_version_2_expires_is_judged_at_emulated_time(
    cloud: LocalCloud, emulated_clock: Clock
) -> None:
    """A SigV2 URL only says when it ends (on the signer's clock): that end is compared with emulated
    now, so a 1-hour URL is refused once the clock is 2 hours ahead. (A clock still at the wall's time:
    the module's has run days ahead.)"""
    client = cloud.client("s3", config=Config(signature_version="s3"))
    client.create_bucket(Bucket="one-clock-v2")
    client.put_object(Bucket="one-clock-v2", Key="k", Body=b"v2")
    url = client.generate_presigned_url("get_object", Params={"Bucket": "one-clock-v2", "Key": "k"})
    assert "Expires=" in url and "X-Amz-Date" not in url
    assert _fetch(url) == (200, b"v2")
    emulated_clock.advance(2 * HOUR)
    status, body = _fetch(url)
    assert status == 403 and b"Request has expired" in body


# ------------------------------------------------------------------------------------ SQS
def test_sqs_visibility_timeout_and_retention_follow_the_clock(cloud: LocalCloud) -> None:
    """A message hidden for 2 hours is received again 3 emulated hours later; with a 1-day retention it
    is gone 2 emulated days after it was sent."""
    sqs = cloud.client("sqs")
    queue = sqs.create_queue(QueueName="one-clock", Attributes={"MessageRetentionPeriod": str(DAY)})
    queue_url = queue["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="hello")
    first = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=2 * HOUR)["Messages"]
    assert [m["Body"] for m in first] == ["hello"]
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url)
    cloud.clock.advance(3 * HOUR)
    again = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=60)["Messages"]
    assert [m["Body"] for m in again] == ["hello"]
    cloud.clock.advance(2 * DAY)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url)


# ------------------------------------------------------------------------------------ ACM
def _certificate(not_before: dt.datetime, lifetime: dt.timedelta) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "one-clock.example")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def test_acm_judges_certificate_validity_at_emulated_time(cloud: LocalCloud) -> None:
    """A certificate that starts days after the wall clock imports once the clock is there, and is
    EXPIRED once the clock passes its end."""
    acm = cloud.client("acm")
    cloud.clock.advance(10 * DAY)
    certificate, key = _certificate(cloud.clock.now() - dt.timedelta(hours=1), dt.timedelta(days=2))
    arn = acm.import_certificate(Certificate=certificate, PrivateKey=key)["CertificateArn"]
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "ISSUED"
    cloud.clock.advance(12 * HOUR)
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "ISSUED"
    cloud.clock.advance(3 * DAY)
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "EXPIRED"
    with pytest.raises(ClientError, match="expired"):
        acm.import_certificate(Certificate=certificate, PrivateKey=key)


# ------------------------------------------------------------------------------------ Secrets Manager, SSM
def test_secrets_manager_dates_follow_the_clock(cloud: LocalCloud) -> None:
    """Creation, change and scheduled deletion dates are emulated times, days after the wall."""
    secrets = cloud.client("secretsmanager")
    cloud.clock.advance(5 * DAY)
    created = cloud.clock.now()
    secrets.create_secret(Name="one-clock", SecretString="s")
    described = secrets.describe_secret(SecretId="one-clock")
    assert abs((described["CreatedDate"] - created).total_seconds()) < 5
    deleted = secrets.delete_secret(SecretId="one-clock", RecoveryWindowInDays=7)
    assert abs((deleted["DeletionDate"] - (created + dt.timedelta(days=7))).total_seconds()) < 5


def test_ssm_parameter_dates_follow_the_clock(cloud: LocalCloud) -> None:
    ssm = cloud.client("ssm")
    cloud.clock.advance(4 * DAY)
    written = cloud.clock.now()
    ssm.put_parameter(Name="/one-clock/p", Value="v", Type="String")
    modified = ssm.get_parameter(Name="/one-clock/p")["Parameter"]["LastModifiedDate"]
    assert abs((modified - written).total_seconds()) < 5


# ------------------------------------------------------------------------------------ Step Functions
def _start(cloud: LocalCloud, name: str, definition: dict[str, Any]) -> str:
    sfn = cloud.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=name,
        roleArn="arn:aws:iam::123456789012:role/one-clock",
        definition=json.dumps(definition),
    )["stateMachineArn"]
    execution: str = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    return execution


def _described(cloud: LocalCloud, execution: str, *, settle: float = 20.0) -> dict[str, Any]:
    """The execution once it has stopped, or as it is after ``settle`` real seconds."""
    sfn = cloud.client("stepfunctions")
    deadline = time.monotonic() + settle
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def test_wait_until_a_timestamp_ends_when_the_emulated_clock_reaches_it(cloud: LocalCloud) -> None:
    """Days ahead of the wall, a Wait until emulated now + 2 hours is still waiting after 30 emulated
    minutes and ends once the clock passes it."""
    cloud.clock.advance(3 * DAY)
    started = cloud.clock.now()
    until = (started + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Timestamp": until, "End": True}}}
    execution = _start(cloud, "one-clock-wait", definition)
    cloud.clock.advance(30 * 60)
    assert _described(cloud, execution, settle=1.0)["status"] == "RUNNING"
    cloud.clock.advance(2 * HOUR)
    finished = _described(cloud, execution)
    assert finished["status"] == "SUCCEEDED"
    assert abs((finished["startDate"] - started).total_seconds()) < 30


def test_jsonata_now_and_the_context_times_are_emulated(cloud: LocalCloud) -> None:
    """``$now()`` and the execution's start time read the emulated clock, days after the wall."""
    cloud.clock.advance(2 * DAY)
    before = cloud.clock.now()
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Pass",
                "Output": {"now": "{% $now() %}", "started": "{% $states.context.Execution.StartTime %}"},
                "End": True,
            }
        },
    }
    output = json.loads(_described(cloud, _start(cloud, "one-clock-jsonata", definition))["output"])
    for moment in (output["now"], output["started"]):
        seen = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
        assert abs((seen - before).total_seconds()) < 30, moment


# ------------------------------------------------------------------------------------- answer dates
def test_every_answer_is_dated_on_the_emulated_clock(cloud: LocalCloud) -> None:
    """An AWS service dates its answers by its own time; a function that judges an expiry by that
    ``Date`` (the client-connect handler) sees the emulated time, not the machine's."""
    cloud.clock.advance(2 * DAY)
    request = urllib.request.Request(
        cloud.endpoint_url,
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            dated = response.headers["Date"]
    except urllib.error.HTTPError as error:  # unsigned: refused, but dated all the same
        dated = error.headers["Date"]
    answered = dt.datetime.strptime(dated, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.UTC).timestamp()
    assert abs(answered - cloud.clock.timestamp()) < 5
    assert answered - time.time() > DAY
