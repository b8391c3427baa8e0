"""The same Client VPN API over HTTP: moto's ThreadedMotoServer with install() applied."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from localcloud.clientvpn import install
from localcloud.clientvpn.models import DEFAULT_TIMINGS
from localcloud.clock import Clock
from localcloud.faults import FaultInjector, api_call_counts, reset_api_call_counts
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


def _raw_call(server_url: str, action: str) -> tuple[int, str]:
    """POST one EC2 query action without an SDK: the status and body exactly as the server sent them."""
    body = urllib.parse.urlencode({"Action": action, "Version": "2016-11-15"}).encode()
    request = urllib.request.Request(
        server_url,
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential=testing/20240101/{REGION}/ec2/aws4_request, "
                "SignedHeaders=host, Signature=0"
            ),
        },
    )
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


# EC2 API reference, "Error codes for the Amazon EC2 API": server errors come with a 5xx status.
AWS_STATUS = {
    "InternalError": 500,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "Unavailable": 503,
    "RequestLimitExceeded": 503,
    "UnauthorizedOperation": 400,
    "InvalidParameterValue": 400,
}


@pytest.mark.parametrize("code", list(AWS_STATUS))
def test_an_injected_error_is_answered_with_the_status_aws_uses(
    server_url: str, http_clients: dict[str, Any], fault_injector: FaultInjector, code: str
) -> None:
    """Given the next two DescribeClientVpnEndpoints calls fail with an EC2 error code,
    when one is sent as a raw query request and one through botocore,
    then both get AWS's status for the code (5xx for a server error, 400 for a client error) and
    the EC2 query error body naming the code."""
    fault_injector.configure("DescribeClientVpnEndpoints", fail_with=code, fail_count=2)

    status, body = _raw_call(server_url, "DescribeClientVpnEndpoints")
    with pytest.raises(ClientError) as excinfo:
        http_clients["ec2"].describe_client_vpn_endpoints()

    assert status == AWS_STATUS[code]
    error = ElementTree.fromstring(body).find("{*}Errors/{*}Error")
    assert error is not None
    assert error.findtext("{*}Code") == code
    assert error.findtext("{*}Message")
    assert error_code(excinfo) == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == AWS_STATUS[code]


@pytest.fixture
def standard_ec2(server_url: str, http_clients: dict[str, Any]) -> Any:
    """An EC2 client retrying as the product's clients do (standard mode, 3 attempts)."""
    config = Config(retries={"total_max_attempts": 3, "mode": "standard"})
    return boto3.client("ec2", region_name=REGION, endpoint_url=server_url, config=config)


@pytest.mark.parametrize("code", ["InternalError", "ServiceUnavailable"])
def test_the_sdk_retries_a_transient_server_error(
    standard_ec2: Any, fault_injector: FaultInjector, code: str
) -> None:
    """Given the next two DescribeClientVpnEndpoints calls answer a server error,
    when a client with standard retries (3 attempts) calls it once,
    then the SDK retried twice by itself and the call succeeded on the third request."""
    fault_injector.configure("DescribeClientVpnEndpoints", fail_with=code, fail_count=2)

    answer = standard_ec2.describe_client_vpn_endpoints()

    assert answer["ClientVpnEndpoints"] == []
    assert answer["ResponseMetadata"]["RetryAttempts"] == 2
    assert api_call_counts() == {"DescribeClientVpnEndpoints": 3}
    assert fault_injector.injected_counts() == {"DescribeClientVpnEndpoints": {code: 2}}


def test_a_server_error_outlasting_the_sdk_attempts_reaches_the_caller(
    standard_ec2: Any, fault_injector: FaultInjector
) -> None:
    """Given four calls in a row answer InternalError, a 3-attempt client gives up after three
    requests and raises InternalError (status 500); a client error is never retried."""
    fault_injector.configure("DescribeClientVpnEndpoints", fail_with="InternalError", fail_count=4)
    with pytest.raises(ClientError) as excinfo:
        standard_ec2.describe_client_vpn_endpoints()
    assert error_code(excinfo) == "InternalError"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert api_call_counts() == {"DescribeClientVpnEndpoints": 3}

    fault_injector.clear()
    reset_api_call_counts()
    fault_injector.configure("DescribeClientVpnEndpoints", fail_with="UnauthorizedOperation")
    with pytest.raises(ClientError) as excinfo:
        standard_ec2.describe_client_vpn_endpoints()
    assert error_code(excinfo) == "UnauthorizedOperation"
    assert api_call_counts() == {"DescribeClientVpnEndpoints": 1}
