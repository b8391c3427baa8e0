"""The local cloud as a user meets it: one server on loopback, boto3 and the cvpn CLI against it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from cvpn.cli import main as cvpn_main
from localcloud.cloud import LocalCloud
from localcloud.sample_network import SampleNetwork, build_sample_network
from tests.fixtures import FIXTURES


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(time_scale=60.0, fault_seed=7) as running:
        yield running


@pytest.fixture(scope="module")
def network(cloud: LocalCloud) -> SampleNetwork:
    return build_sample_network(cloud.client, region=cloud.region)


def _admin(cloud: LocalCloud, *argv: str, capsys: pytest.CaptureFixture[str]) -> Any:
    assert cvpn_main([*argv, "--url", cloud.endpoint_url]) == 0
    return json.loads(capsys.readouterr().out)


def _available_endpoint(cloud: LocalCloud, network: SampleNetwork, token: str) -> str:
    ec2 = cloud.client("ec2")
    endpoint_id = ec2.create_client_vpn_endpoint(
        ClientCidrBlock="172.20.0.0/22",
        ServerCertificateArn=network.server_certificate_arn,
        AuthenticationOptions=[
            {
                "Type": "directory-service-authentication",
                "ActiveDirectory": {"DirectoryId": network.directory_id},
            }
        ],
        ConnectionLogOptions={"Enabled": True, "CloudwatchLogGroup": network.log_group_name},
        ClientToken=token,
    )["ClientVpnEndpointId"]
    ec2.associate_client_vpn_target_network(ClientVpnEndpointId=endpoint_id, SubnetId=network.subnet_ids[0])
    cloud.clock.advance(300)
    return endpoint_id


def test_health_reports_endpoint_and_time_scale(cloud: LocalCloud) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{cloud.endpoint_url}/_localcloud/health", timeout=10) as response:
        health = json.loads(response.read())
    assert health["endpoint_url"] == cloud.endpoint_url
    assert health["time_scale"] == 60.0


def test_endpoint_reaches_available_over_http(cloud: LocalCloud, network: SampleNetwork) -> None:
    """Given a new endpoint with one association, when 4 emulated minutes pass, it is available
    and AWS's automatic route for the VPC CIDR exists."""
    ec2 = cloud.client("ec2")
    endpoint_id = ec2.create_client_vpn_endpoint(
        ClientCidrBlock="172.16.0.0/22",
        ServerCertificateArn=network.server_certificate_arn,
        AuthenticationOptions=[
            {
                "Type": "directory-service-authentication",
                "ActiveDirectory": {"DirectoryId": network.directory_id},
            }
        ],
        ConnectionLogOptions={"Enabled": False},
    )["ClientVpnEndpointId"]
    ec2.associate_client_vpn_target_network(ClientVpnEndpointId=endpoint_id, SubnetId=network.subnet_ids[0])
    state = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]
    assert state["Status"]["Code"] == "pending-associate"
    cloud.clock.advance(241)
    state = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]
    assert state["Status"]["Code"] == "available"
    routes = ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"]
    assert [(r["DestinationCidr"], r["Origin"]) for r in routes] == [(network.vpc_cidr, "associate")]


def test_cli_connect_writes_the_connection_log(
    cloud: LocalCloud, network: SampleNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cvpn local connect` through the admin API: one successful and one failed attempt land in the
    endpoint's log group in AWS's format, and the live one shows in DescribeClientVpnConnections."""
    endpoint_id = _available_endpoint(cloud, network, "cli-connect")
    ok = _admin(
        cloud,
        "local",
        "connect",
        endpoint_id,
        "--user",
        "alice",
        "--device-ip",
        "198.51.100.7",
        capsys=capsys,
    )
    bad = _admin(
        cloud, "local", "connect", endpoint_id, "--user", "mallory", "--fail", "Auth failed", capsys=capsys
    )
    assert ok["connected"] is True
    assert ok["connection_id"].startswith("cvpn-connection-")
    assert bad["connected"] is False
    assert bad["failure_reason"] == "Auth failed"
    assert bad["record"]["connection-attempt-status"] == "failed"

    ec2 = cloud.client("ec2")
    live = ec2.describe_client_vpn_connections(ClientVpnEndpointId=endpoint_id)["Connections"]
    assert [(c["Username"], c["Status"]["Code"]) for c in live] == [("alice", "active")]

    events = cloud.client("logs").filter_log_events(logGroupName=network.log_group_name)["events"]
    records = [json.loads(event["message"]) for event in events]
    mine = [r for r in records if r["client-vpn-endpoint-id"] == endpoint_id]
    assert {(r["username"], r["connection-attempt-status"]) for r in mine} == {
        ("alice", "successful"),
        ("mallory", "failed"),
    }
    failed = next(r for r in mine if r["username"] == "mallory")
    assert failed["connection-attempt-failure-reason"] == "Auth failed"
    assert failed["client-ip"] == "NA"


def test_injected_throttling_reaches_boto3(
    cloud: LocalCloud, network: SampleNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cvpn local faults` makes DescribeClientVpnEndpoints answer RequestLimitExceeded; --clear ends it."""
    _admin(cloud, "local", "faults", "DescribeClientVpnEndpoints", "--throttle-rate", "1.0", capsys=capsys)
    ec2 = cloud.client("ec2", config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    try:
        with pytest.raises(ClientError) as caught:
            ec2.describe_client_vpn_endpoints()
        assert caught.value.response["Error"]["Code"] == "RequestLimitExceeded"
    finally:
        _admin(cloud, "local", "faults", "--clear", capsys=capsys)
    ec2.describe_client_vpn_endpoints()


def test_admin_rejects_bad_input_with_the_field(cloud: LocalCloud) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{cloud.endpoint_url}/_localcloud/connect",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    assert "endpoint_id" in json.loads(caught.value.read())["message"]


def test_cli_without_a_local_cloud_says_how_to_start_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert cvpn_main(["local", "faults", "--url", "http://127.0.0.1:9"]) == 2
    assert "cvpn local up" in capsys.readouterr().err


def test_state_machine_retries_and_catches_lambda_errors_by_name(cloud: LocalCloud) -> None:
    """The fixture stack's real handler raises TransientError twice (retried by name, 60 s then 120 s
    emulated) and then succeeds; with permanent=true, PermanentError is caught by name."""
    stack = cloud.deploy(FIXTURES / "retry_app" / "template.yaml", stack_name="retry-app", serve=False)
    sfn = cloud.client("stepfunctions")
    machine = stack.outputs["FlowStateMachineArn"]

    def run(payload: dict[str, Any]) -> dict[str, Any]:
        execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload))["executionArn"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.05)
        raise AssertionError("execution still running")

    succeeded = run({"key": "retried", "transient_failures": 2})
    assert succeeded["status"] == "SUCCEEDED", succeeded
    output = json.loads(succeeded["output"])
    assert output["attempts"] == 3
    assert output["function"].startswith("retry-app-FlakyFunction")

    caught = run({"key": "caught", "permanent": True})
    assert caught["status"] == "SUCCEEDED", caught
    result = json.loads(caught["output"])
    assert result["outcome"] == "rolled back"
    assert result["error"]["Error"] == "PermanentError"


def test_cli_clock_changes_scale_and_advances(cloud: LocalCloud, capsys: pytest.CaptureFixture[str]) -> None:
    """`cvpn local clock` steers emulated time; a bad value is refused with the field named."""
    before = cloud.clock.timestamp()
    answer = _admin(cloud, "local", "clock", "--advance", "3600", capsys=capsys)
    assert cloud.clock.timestamp() - before >= 3600
    assert answer["time_scale"] == 60.0
    answer = _admin(cloud, "local", "clock", "--time-scale", "120", capsys=capsys)
    assert cloud.clock.time_scale == 120.0
    cloud.clock.time_scale = 60.0
    with pytest.raises(SystemExit) as refused:
        cvpn_main(["local", "clock", "--time-scale", "0", "--url", cloud.endpoint_url])
    assert refused.value.code == 2
    assert "--time-scale: must be > 0" in capsys.readouterr().err
