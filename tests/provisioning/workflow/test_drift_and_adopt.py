"""Drift made out of band is found by the scheduled check and by `cvpn drift`; an endpoint made with
boto3 is adopted, after which `cvpn plan` on its document changes nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cvpn.cli import main
from localcloud.scheduler import Scheduler
from tests.provisioning.workflow.harness import (
    GROUP_SID,
    MANAGED_BY_TAG,
    REQUEST_ID_TAG,
    NotificationInbox,
    Provisioning,
)

DRIFT_DETAIL_TYPE = "Client VPN Drift Detected"


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
def drift_bus_queue(product: Provisioning) -> Iterator[str]:
    """An SQS queue that receives the findings bus's drift events."""
    sqs, events = product.cloud.client("sqs"), product.cloud.client("events")
    name = f"drift-{uuid.uuid4().hex[:8]}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bus = product.stack.outputs["FindingsBusName"]
    events.put_rule(
        Name=name, EventBusName=bus, EventPattern=json.dumps({"detail-type": [DRIFT_DETAIL_TYPE]})
    )
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
    yield queue_url
    events.remove_targets(Rule=name, EventBusName=bus, Ids=["queue"])
    events.delete_rule(Name=name, EventBusName=bus)


def _bus_events(product: Provisioning, queue_url: str, endpoint_id: str, timeout: float = 60) -> list[Any]:
    sqs = product.cloud.client("sqs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        found = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
        mine = [event for event in found if event["detail"]["endpoint_id"] == endpoint_id]
        if mine:
            return mine
    raise AssertionError(f"no drift event for {endpoint_id} on the findings bus")


def _drift_notifications(inbox: NotificationInbox, request_id: str, timeout: float = 30) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [n for n in inbox.notifications_for(request_id) if "drift" in n.get("Subject", "")]
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no drift notification for {request_id}")


def _fire_drift_schedule(product: Provisioning) -> None:
    """Deliver the drift check's schedule now, as EventBridge would (with the schedule's role)."""
    function_arn = product.stack.functions["CheckDriftFunction"].arn
    (schedule,) = [s for s in product.stack.schedules if any(t.arn == function_arn for t in s.targets)]
    scheduler = Scheduler(endpoint_url=product.cloud.endpoint_url, region=product.cloud.region)
    scheduler.role_credentials = product.cloud.role_credentials
    scheduler.add_stack(product.stack)
    try:
        assert scheduler.fire_now(schedule.logical_id)
    finally:
        scheduler.stop()  # waits for the delivery in flight


def _wait_for(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_drift_out_of_band_is_found_by_the_schedule_and_by_cvpn_drift(
    product: Provisioning, inbox: NotificationInbox, drift_bus_queue: str, cli: Any, tmp_path: Path
) -> None:
    request = product.request()
    progress = product.provision(request)
    assert progress.status == "SUCCEEDED", progress.cause
    endpoint_id = progress.output["result"]["endpoint_id"]

    status, out, err = cli("drift", endpoint_id)
    assert (status, err) == (0, ""), out
    assert "in sync" in out
    document = tmp_path / "request.json"
    document.write_text(json.dumps(request))
    status, out, _ = cli("plan", str(document), "--detailed-exitcode")
    assert status == 0 and "No changes" in out

    # Someone changes the endpoint in the console: a route, a revoked rule, a shorter session.
    ec2 = product.cloud.client("ec2")
    subnet = request["subnet_ids"][0]
    ec2.create_client_vpn_route(
        ClientVpnEndpointId=endpoint_id, DestinationCidrBlock="192.168.77.0/24", TargetVpcSubnetId=subnet
    )
    rule = request["authorization_rules"][0]
    ec2.revoke_client_vpn_ingress(
        ClientVpnEndpointId=endpoint_id,
        TargetNetworkCidr=rule["target_network_cidr"],
        **(
            {"AccessGroupId": rule["access_group_id"]}
            if rule.get("access_group_id")
            else {"RevokeAllGroups": True}
        ),
    )
    ec2.modify_client_vpn_endpoint(ClientVpnEndpointId=endpoint_id, SessionTimeoutHours=8)

    _fire_drift_schedule(product)
    (event,) = _bus_events(product, drift_bus_queue, endpoint_id)
    assert event["detail-type"] == DRIFT_DETAIL_TYPE and event["source"].endswith(".clientvpn.provisioning")
    detail = event["detail"]
    assert detail["request_id"] == request["request_id"] and detail["status"] == "drifted"
    summaries = {(d["field"], d["action"]): d["summary"] for d in detail["differences"]}
    hours = request.get("session_timeout_hours", 24)
    assert summaries[("session_timeout_hours", "modify-endpoint")] == f"session timeout: 8 h -> {hours} h"
    assert ("authorization_rules[0]", "authorize-rule") in summaries
    assert summaries[("routes", "delete-route")] == f"delete route 192.168.77.0/24 via {subnet}"
    assert len(detail["differences"]) == 3
    (notification,) = _drift_notifications(inbox, request["request_id"])
    assert endpoint_id in notification["Subject"]
    assert json.loads(notification["Message"])["differences"] == detail["differences"]

    status, out, _ = cli("drift", endpoint_id)
    assert status == 3
    assert (
        "DRIFTED (3 difference(s))" in out
        and "192.168.77.0/24" in out
        and f"session timeout: 8 h -> {hours} h" in out
    )
    status, out, _ = cli("drift", endpoint_id, "--json")
    (report,) = json.loads(out)
    assert report["status"] == "drifted" and len(report["plan"]["changes"]) == 3

    status, out, _ = cli("plan", str(document), "--detailed-exitcode")
    assert status == 3
    assert "Endpoint options:" in out and "Rules authorized:" in out and "Routes deleted:" in out
    assert out.index("Rules authorized:") < out.index("Routes deleted:")

    # `cvpn apply` on the recorded document puts the endpoint back.
    status, out, err = cli("apply", str(document), "--wait", "--poll", "0.2")
    assert status == 0, out + err
    status, out, _ = cli("drift", endpoint_id)
    assert status == 0 and "in sync" in out


def _endpoint_made_elsewhere(product: Provisioning) -> str:
    """An endpoint created, associated, authorized and routed with boto3, as the console would."""
    ec2 = product.cloud.client("ec2")
    network = product.network
    endpoint_id = ec2.create_client_vpn_endpoint(
        ClientCidrBlock="172.30.0.0/22",
        ServerCertificateArn=network.server_certificate_arn,
        AuthenticationOptions=[
            {
                "Type": "directory-service-authentication",
                "ActiveDirectory": {"DirectoryId": network.directory_id},
            }
        ],
        ConnectionLogOptions={"Enabled": False},
        Description="made in the console",
        TagSpecifications=[
            {"ResourceType": "client-vpn-endpoint", "Tags": [{"Key": "Name", "Value": "console"}]}
        ],
    )["ClientVpnEndpointId"]
    for subnet in network.subnet_ids[:2]:
        ec2.associate_client_vpn_target_network(ClientVpnEndpointId=endpoint_id, SubnetId=subnet)
    ec2.authorize_client_vpn_ingress(
        ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="10.0.0.0/16", AccessGroupId=GROUP_SID
    )

    def associated() -> bool:
        networks = ec2.describe_client_vpn_target_networks(ClientVpnEndpointId=endpoint_id)
        return all(n["Status"]["Code"] == "associated" for n in networks["ClientVpnTargetNetworks"])

    _wait_for(associated, f"{endpoint_id} associations")
    for subnet in network.subnet_ids[:2]:
        ec2.create_client_vpn_route(
            ClientVpnEndpointId=endpoint_id,
            DestinationCidrBlock="10.99.0.0/16",
            TargetVpcSubnetId=subnet,
            Description="branch",
        )
    return str(endpoint_id)


def test_adopt_an_endpoint_made_with_boto3_then_plan_changes_nothing(
    product: Provisioning, cli: Any, tmp_path: Path
) -> None:
    endpoint_id = _endpoint_made_elsewhere(product)
    request_id = f"NET-ADOPT-{uuid.uuid4().hex[:6]}"
    document = tmp_path / "adopted.json"

    # Without --yes: the document only, nothing tagged or recorded.
    status, out, err = cli("adopt", endpoint_id, "--request-id", request_id, "--output", str(document))
    assert status == 0, err
    assert "nothing changed" in out and product.record(request_id) is None
    written = json.loads(document.read_text())
    assert written["schema_version"] == "2" and written["endpoint_id"] == endpoint_id
    assert [r["destination_cidr"] for r in written["routes"]] == ["10.99.0.0/16"]
    status, _, err = cli("plan", str(document))
    assert status == 2 and f"cvpn adopt {endpoint_id}" in err

    status, out, err = cli(
        "adopt", endpoint_id, "--request-id", request_id, "--requester", "ops@example.com", "--yes"
    )
    assert status == 0, err
    tags = {t["Key"]: t["Value"] for t in product.describe_endpoint(endpoint_id)["Tags"]}  # type: ignore[index]
    assert tags[MANAGED_BY_TAG] == "client-vpn-autopilot" and tags[REQUEST_ID_TAG] == request_id
    record = product.record(request_id)
    assert record is not None
    assert record["status"]["S"] == "SUCCEEDED" and record["endpoint_id"]["S"] == endpoint_id
    assert record["revision"]["N"] == "1" and json.loads(record["request"]["S"])["endpoint_id"] == endpoint_id

    status, out, err = cli("plan", str(document), "--detailed-exitcode")
    assert status == 0, err
    assert "No changes" in out
    status, out, _ = cli("drift", request_id)
    assert status == 0 and "in sync" in out
    revisions = product.cloud.client("dynamodb").query(
        TableName=product.stack.outputs["EndpointRevisionsTableName"],
        KeyConditionExpression="request_id = :id",
        ExpressionAttributeValues={":id": {"S": request_id}},
    )["Items"]
    assert [(r["revision"]["N"], r["status"]["S"]) for r in revisions] == [("1", "SUCCEEDED")]

    # From now on the product changes it: one more route, applied in place.
    changed = json.loads(document.read_text())
    changed["routes"].append({"destination_cidr": "10.98.0.0/16", "description": "new office"})
    document.write_text(json.dumps(changed))
    status, out, _ = cli("plan", str(document))
    assert status == 0 and "revision 1 -> 2" in out and "add route 10.98.0.0/16" in out
    status, out, err = cli("apply", str(document), "--wait", "--poll", "0.2")
    assert status == 0, out + err
    status, out, _ = cli("plan", str(document), "--detailed-exitcode")
    assert status == 0 and "No changes" in out

    status, _, err = cli("adopt", endpoint_id, "--request-id", "NET-OTHER")
    assert status == 2 and f"already managed by request {request_id}" in err


def test_adopt_refuses_what_a_document_cannot_describe(product: Provisioning, cli: Any) -> None:
    ec2 = product.cloud.client("ec2")
    endpoint_id = ec2.create_client_vpn_endpoint(
        ClientCidrBlock="172.31.0.0/22",
        ServerCertificateArn=product.network.server_certificate_arn,
        AuthenticationOptions=[
            {
                "Type": "directory-service-authentication",
                "ActiveDirectory": {"DirectoryId": product.network.directory_id},
            }
        ],
        ConnectionLogOptions={"Enabled": False},
    )["ClientVpnEndpointId"]
    status, _, err = cli("adopt", endpoint_id, "--request-id", "NET-BARE")
    assert status == 2
    assert "subnet_ids: no subnet is associated" in err and "authorization_rules" in err
    ec2.delete_client_vpn_endpoint(ClientVpnEndpointId=endpoint_id)
