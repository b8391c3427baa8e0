"""The same Client VPN API over HTTP: moto's ThreadedMotoServer with install() applied."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from localcloud.clientvpn import install
from localcloud.clientvpn.models import DEFAULT_TIMINGS
from localcloud.clock import Clock
from localcloud.faults import FaultInjector
from tests.localcloud.clientvpn.support import REGION, CertificateMaterial, error_code


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def http_clients(
    server_url: str, frozen_clock: Clock, fault_injector: FaultInjector, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """Clients of the HTTP server; its state is reset after each test."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    yield {
        name: boto3.client(name, region_name=REGION, endpoint_url=server_url, config=config)
        for name in ("ec2", "acm", "logs")
    }
    urllib.request.urlopen(urllib.request.Request(f"{server_url}/moto-api/reset", method="POST")).close()


@pytest.fixture
def http_endpoint(http_clients: dict[str, Any], server_certificate: CertificateMaterial) -> dict[str, str]:
    ec2 = http_clients["ec2"]
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate("ab", start=1)
    ]
    same_az = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.9.0/24", AvailabilityZone=f"{REGION}a")[
        "Subnet"
    ]["SubnetId"]
    arn = http_clients["acm"].import_certificate(
        Certificate=server_certificate.certificate_pem, PrivateKey=server_certificate.private_key_pem
    )["CertificateArn"]
    http_clients["logs"].create_log_group(logGroupName="cvpn")
    endpoint_id = ec2.create_client_vpn_endpoint(
        ClientCidrBlock="172.31.0.0/16",
        ServerCertificateArn=arn,
        AuthenticationOptions=[
            {
                "Type": "certificate-authentication",
                "MutualAuthentication": {"ClientRootCertificateChainArn": arn},
            }
        ],
        ConnectionLogOptions={"Enabled": True, "CloudwatchLogGroup": "cvpn"},
    )["ClientVpnEndpointId"]
    return {"endpoint_id": endpoint_id, "subnet_a": subnets[0], "subnet_b": subnets[1], "same_az": same_az}


def test_association_completes_over_http(
    http_clients: dict[str, Any], http_endpoint: dict[str, str], frozen_clock: Clock
) -> None:
    ec2, endpoint_id = http_clients["ec2"], http_endpoint["endpoint_id"]
    ec2.associate_client_vpn_target_network(
        ClientVpnEndpointId=endpoint_id, SubnetId=http_endpoint["subnet_a"]
    )
    endpoint = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]
    assert endpoint["Status"]["Code"] == "pending-associate"

    frozen_clock.advance(DEFAULT_TIMINGS.association_seconds)
    endpoint = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]
    assert endpoint["Status"]["Code"] == "available"
    routes = ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"]
    assert [(r["DestinationCidr"], r["Origin"]) for r in routes] == [("10.0.0.0/16", "associate")]
    profile = ec2.export_client_vpn_client_configuration(ClientVpnEndpointId=endpoint_id)[
        "ClientConfiguration"
    ]
    assert f"remote {endpoint_id}.prod.clientvpn.{REGION}.amazonaws.com 443" in profile


def test_error_codes_over_http(http_clients: dict[str, Any], http_endpoint: dict[str, str]) -> None:
    ec2, endpoint_id = http_clients["ec2"], http_endpoint["endpoint_id"]
    ec2.associate_client_vpn_target_network(
        ClientVpnEndpointId=endpoint_id, SubnetId=http_endpoint["subnet_a"]
    )
    with pytest.raises(ClientError) as excinfo:
        ec2.associate_client_vpn_target_network(
            ClientVpnEndpointId=endpoint_id, SubnetId=http_endpoint["same_az"]
        )
    assert error_code(excinfo) == "InvalidClientVpnSubnetId.DuplicateAz"
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_client_vpn_routes(ClientVpnEndpointId="cvpn-endpoint-0123456789abcdef0")
    assert error_code(excinfo) == "InvalidClientVpnEndpointId.NotFound"


def test_rules_page_over_http(http_clients: dict[str, Any], http_endpoint: dict[str, str]) -> None:
    ec2, endpoint_id = http_clients["ec2"], http_endpoint["endpoint_id"]
    for index in range(7):
        ec2.authorize_client_vpn_ingress(
            ClientVpnEndpointId=endpoint_id, TargetNetworkCidr=f"10.{index}.0.0/16", AuthorizeAllGroups=True
        )
    paginator = ec2.get_paginator("describe_client_vpn_authorization_rules")
    pages = list(paginator.paginate(ClientVpnEndpointId=endpoint_id, PaginationConfig={"PageSize": 5}))
    assert [len(p["AuthorizationRules"]) for p in pages] == [5, 2]


def test_throttling_over_http(
    http_clients: dict[str, Any], http_endpoint: dict[str, str], fault_injector: FaultInjector
) -> None:
    fault_injector.configure("DescribeClientVpnEndpoints", throttle_rate=1.0)
    with pytest.raises(ClientError) as excinfo:
        http_clients["ec2"].describe_client_vpn_endpoints()
    assert error_code(excinfo) == "RequestLimitExceeded"
