"""CreateClientVpnEndpoint / Modify / Delete / Describe: defaults, validation, quotas, idempotency."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localcloud.clientvpn.models import ClientVpnBackend
from localcloud.clock import Clock
from tests.localcloud.clientvpn.support import (
    REGION,
    Network,
    endpoint_request,
    endpoint_state,
    error_code,
    lambda_zip,
)


def test_create_returns_id_dns_name_and_pending_associate(ec2: Any, network: Network) -> None:
    """Given a valid request, the endpoint starts pending-associate with an AWS-shaped id and DNS name."""
    response = ec2.create_client_vpn_endpoint(**endpoint_request(network))

    endpoint_id = response["ClientVpnEndpointId"]
    assert re.fullmatch(r"cvpn-endpoint-[0-9a-f]{17}", endpoint_id)
    assert response["Status"] == {"Code": "pending-associate"}
    assert response["DnsName"] == f"*.{endpoint_id}.prod.clientvpn.{REGION}.amazonaws.com"


def test_describe_shows_api_defaults(ec2: Any, create_endpoint: Callable[..., str]) -> None:
    """Defaults: udp, port 443, no split tunnel, 24 h sessions, disconnect on timeout, portal enabled."""
    endpoint_id = create_endpoint()

    endpoint = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]

    assert endpoint["TransportProtocol"] == "udp"
    assert endpoint["VpnPort"] == 443
    assert endpoint["SplitTunnel"] is False
    assert endpoint["SessionTimeoutHours"] == 24
    assert endpoint["DisconnectOnSessionTimeout"] is True
    assert endpoint["VpnProtocol"] == "openvpn"
    assert endpoint["ClientRouteEnforcementOptions"] == {"Enforced": False}
    assert endpoint["ConnectionLogOptions"]["Enabled"] is True
    assert endpoint["ConnectionLogOptions"]["CloudwatchLogStream"].startswith(endpoint_id)
    assert "VpcId" not in endpoint
    assert endpoint["AssociatedTargetNetworks"] == []


def test_log_stream_created_when_missing(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    """A named log stream that does not exist yet is created in the log group."""
    create_endpoint(
        ConnectionLogOptions={
            "Enabled": True,
            "CloudwatchLogGroup": network.log_group,
            "CloudwatchLogStream": "vpn-connections",
        }
    )

    streams = boto3.client("logs", region_name=REGION).describe_log_streams(logGroupName=network.log_group)
    assert "vpn-connections" in [s["logStreamName"] for s in streams["logStreams"]]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"ClientCidrBlock": "172.16.0.0/24"}, "InvalidParameterValue"),
        ({"ClientCidrBlock": "172.16.0.0/11"}, "InvalidParameterValue"),
        ({"ClientCidrBlock": "not-a-cidr"}, "InvalidParameterValue"),
        ({"DnsServers": ["10.0.0.2", "8.8.8.8", "1.1.1.1"]}, "InvalidParameterValue"),
        ({"VpnPort": 8443}, "InvalidParameterValue"),
        ({"SessionTimeoutHours": 6}, "InvalidParameterValue"),
        ({"ClientLoginBannerOptions": {"Enabled": True, "BannerText": "x" * 1401}}, "InvalidParameterValue"),
        (
            {"ServerCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/nope"},
            "InvalidParameterValue",
        ),
        (
            {"ConnectionLogOptions": {"Enabled": True, "CloudwatchLogGroup": "/does/not/exist"}},
            "InvalidParameterValue",
        ),
        ({"AuthenticationOptions": []}, "InvalidParameterValue"),
        (
            {
                "AuthenticationOptions": [
                    {
                        "Type": "directory-service-authentication",
                        "ActiveDirectory": {"DirectoryId": "d-0000000000"},
                    }
                ]
            },
            "InvalidParameterValue",
        ),
        (
            {
                "AuthenticationOptions": [
                    {
                        "Type": "federated-authentication",
                        "FederatedAuthentication": {
                            "SAMLProviderArn": "arn:aws:iam::123456789012:saml-provider/x"
                        },
                    }
                ]
            },
            "InvalidParameterValue",
        ),
    ],
)
def test_create_rejects_invalid_parameters(
    ec2: Any, network: Network, overrides: dict[str, Any], code: str
) -> None:
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_endpoint(**endpoint_request(network, **overrides))
    assert error_code(excinfo) == code


def test_security_groups_require_vpc_id(ec2: Any, network: Network) -> None:
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_endpoint(
            **endpoint_request(network, SecurityGroupIds=[network.security_group_id])
        )
    assert error_code(excinfo) == "InvalidParameterValue"
    assert "Vpc Id" in excinfo.value.response["Error"]["Message"]


def test_at_most_five_security_groups(ec2: Any, network: Network) -> None:
    groups = [
        ec2.create_security_group(GroupName=f"g{i}", Description="g", VpcId=network.vpc_id)["GroupId"]
        for i in range(6)
    ]
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_endpoint(
            **endpoint_request(network, VpcId=network.vpc_id, SecurityGroupIds=groups)
        )
    assert error_code(excinfo) == "InvalidParameterValue"


def test_create_with_vpc_and_groups(ec2: Any, network: Network, create_endpoint: Callable[..., str]) -> None:
    endpoint_id = create_endpoint(VpcId=network.vpc_id, SecurityGroupIds=[network.security_group_id])
    endpoint = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]
    assert endpoint["VpcId"] == network.vpc_id
    assert endpoint["SecurityGroupIds"] == [network.security_group_id]


def test_dedicated_tenancy_vpc_rejected(ec2: Any, network: Network) -> None:
    dedicated = ec2.create_vpc(CidrBlock="10.9.0.0/16", InstanceTenancy="dedicated")["Vpc"]["VpcId"]
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_endpoint(**endpoint_request(network, VpcId=dedicated))
    assert error_code(excinfo) == "InvalidParameterValue"


def test_two_authentication_options_mutual_plus_directory(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    endpoint_id = create_endpoint(
        AuthenticationOptions=[
            {
                "Type": "certificate-authentication",
                "MutualAuthentication": {"ClientRootCertificateChainArn": network.certificate_arn},
            },
            {
                "Type": "directory-service-authentication",
                "ActiveDirectory": {"DirectoryId": network.directory_id},
            },
        ]
    )
    options = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0][
        "AuthenticationOptions"
    ]
    assert [o["Type"] for o in options] == ["certificate-authentication", "directory-service-authentication"]
    assert options[1]["ActiveDirectory"] == {"DirectoryId": network.directory_id}


def test_two_user_based_methods_rejected(ec2: Any, network: Network) -> None:
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_endpoint(
            **endpoint_request(
                network,
                AuthenticationOptions=[
                    {
                        "Type": "directory-service-authentication",
                        "ActiveDirectory": {"DirectoryId": network.directory_id},
                    },
                    {
                        "Type": "federated-authentication",
                        "FederatedAuthentication": {"SAMLProviderArn": network.saml_provider_arn},
                    },
                ],
            )
        )
    assert error_code(excinfo) == "InvalidParameterValue"


def test_federated_endpoint_has_self_service_portal(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    endpoint_id = create_endpoint(
        AuthenticationOptions=[
            {
                "Type": "federated-authentication",
                "FederatedAuthentication": {"SAMLProviderArn": network.saml_provider_arn},
            }
        ]
    )
    endpoint = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]
    assert endpoint["AuthenticationOptions"][0]["FederatedAuthentication"] == {
        "SamlProviderArn": network.saml_provider_arn
    }
    assert endpoint["SelfServicePortalUrl"].endswith(endpoint_id)


def test_client_connect_handler_name_and_status(
    ec2: Any,
    network: Network,
    create_endpoint: Callable[..., str],
    frozen_clock: Clock,
    backend: ClientVpnBackend,
) -> None:
    """The handler must be named AWSClientVPN-*; its status moves applying -> applied."""
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="handler", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    awslambda = boto3.client("lambda", region_name=REGION)
    arns = {
        name: awslambda.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": lambda_zip()},
        )["FunctionArn"]
        for name in ("AWSClientVPN-posture", "posture")
    }
    with pytest.raises(ClientError) as excinfo:
        create_endpoint(ClientConnectOptions={"Enabled": True, "LambdaFunctionArn": arns["posture"]})
    assert error_code(excinfo) == "InvalidParameterValue"

    endpoint_id = create_endpoint(
        ClientConnectOptions={"Enabled": True, "LambdaFunctionArn": arns["AWSClientVPN-posture"]}
    )

    def connect_status() -> str:
        endpoint = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])[
            "ClientVpnEndpoints"
        ][0]
        return str(endpoint["ClientConnectOptions"]["Status"]["Code"])

    assert connect_status() == "applying"
    frozen_clock.advance(backend.timings.client_connect_seconds)
    assert connect_status() == "applied"


def test_endpoint_quota_per_region(ec2: Any, create_endpoint: Callable[..., str]) -> None:
    """Five endpoints per region; the sixth answers ClientVpnEndpointLimitExceeded."""
    for _ in range(5):
        create_endpoint()
    with pytest.raises(ClientError) as excinfo:
        create_endpoint()
    assert error_code(excinfo) == "ClientVpnEndpointLimitExceeded"


def test_client_token_idempotency(ec2: Any, network: Network) -> None:
    """Same token and arguments give the first result; different arguments a mismatch."""
    first = ec2.create_client_vpn_endpoint(**endpoint_request(network), ClientToken="create-1")
    again = ec2.create_client_vpn_endpoint(**endpoint_request(network), ClientToken="create-1")
    assert again["ClientVpnEndpointId"] == first["ClientVpnEndpointId"]
    assert len(ec2.describe_client_vpn_endpoints()["ClientVpnEndpoints"]) == 1

    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_endpoint(
            **endpoint_request(network, Description="something else"), ClientToken="create-1"
        )
    assert error_code(excinfo) == "IdempotentParameterMismatch"


def test_tags_from_tag_specifications(ec2: Any, create_endpoint: Callable[..., str]) -> None:
    endpoint_id = create_endpoint(
        TagSpecifications=[
            {"ResourceType": "client-vpn-endpoint", "Tags": [{"Key": "team", "Value": "netops"}]}
        ]
    )
    endpoint = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]
    assert endpoint["Tags"] == [{"Key": "team", "Value": "netops"}]


def test_describe_unknown_endpoint(ec2: Any, network: Network) -> None:
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=["cvpn-endpoint-0123456789abcdef0"])
    assert error_code(excinfo) == "InvalidClientVpnEndpointId.NotFound"


def test_describe_filters_and_pagination(ec2: Any, create_endpoint: Callable[..., str]) -> None:
    udp = [create_endpoint() for _ in range(3)]
    tcp = [create_endpoint(TransportProtocol="tcp") for _ in range(2)]

    by_protocol = ec2.describe_client_vpn_endpoints(
        Filters=[{"Name": "transport-protocol", "Values": ["tcp"]}]
    )
    assert sorted(e["ClientVpnEndpointId"] for e in by_protocol["ClientVpnEndpoints"]) == sorted(tcp)
    by_id = ec2.describe_client_vpn_endpoints(Filters=[{"Name": "endpoint-id", "Values": [udp[0]]}])
    assert [e["ClientVpnEndpointId"] for e in by_id["ClientVpnEndpoints"]] == [udp[0]]

    first = ec2.describe_client_vpn_endpoints(MaxResults=5)
    assert len(first["ClientVpnEndpoints"]) == 5 and "NextToken" not in first

    paginator = ec2.get_paginator("describe_client_vpn_endpoints")
    seen = [
        e["ClientVpnEndpointId"]
        for page in paginator.paginate(PaginationConfig={"PageSize": 5})
        for e in page["ClientVpnEndpoints"]
    ]
    assert sorted(seen) == sorted(udp + tcp)


def test_pagination_tokens(ec2: Any, backend: ClientVpnBackend, create_endpoint: Callable[..., str]) -> None:
    backend.quotas.endpoints_per_region = 12
    ids = [create_endpoint() for _ in range(12)]
    first = ec2.describe_client_vpn_endpoints(MaxResults=5)
    second = ec2.describe_client_vpn_endpoints(MaxResults=5, NextToken=first["NextToken"])
    third = ec2.describe_client_vpn_endpoints(MaxResults=5, NextToken=second["NextToken"])
    pages = [first, second, third]
    assert [len(p["ClientVpnEndpoints"]) for p in pages] == [5, 5, 2]
    assert "NextToken" not in third
    assert sorted(e["ClientVpnEndpointId"] for p in pages for e in p["ClientVpnEndpoints"]) == sorted(ids)


@pytest.mark.parametrize("max_results", [4, 1001])
def test_max_results_bounds(network: Network, max_results: int) -> None:
    """The server checks MaxResults too (client-side validation off, as other SDKs may send anything)."""
    unchecked = boto3.client("ec2", region_name=REGION, config=Config(parameter_validation=False))
    with pytest.raises(ClientError) as excinfo:
        unchecked.describe_client_vpn_endpoints(MaxResults=max_results)
    assert error_code(excinfo) == "InvalidParameterValue"


def test_unknown_filter_rejected(ec2: Any, network: Network) -> None:
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_client_vpn_endpoints(Filters=[{"Name": "color", "Values": ["blue"]}])
    assert error_code(excinfo) == "InvalidParameterValue"


def test_modify_endpoint(ec2: Any, network: Network, create_endpoint: Callable[..., str]) -> None:
    endpoint_id = create_endpoint()
    assert ec2.modify_client_vpn_endpoint(
        ClientVpnEndpointId=endpoint_id,
        Description="remote staff",
        SplitTunnel=True,
        VpnPort=1194,
        SessionTimeoutHours=12,
        DnsServers={"CustomDnsServers": ["10.0.0.2"], "Enabled": True},
        ClientLoginBannerOptions={"Enabled": True, "BannerText": "Authorized use only"},
        VpcId=network.vpc_id,
        SecurityGroupIds=[network.security_group_id],
    )["Return"]
    endpoint = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]
    assert endpoint["Description"] == "remote staff"
    assert endpoint["SplitTunnel"] is True
    assert endpoint["VpnPort"] == 1194
    assert endpoint["SessionTimeoutHours"] == 12
    assert endpoint["DnsServers"] == ["10.0.0.2"]
    assert endpoint["ClientLoginBannerOptions"] == {"Enabled": True, "BannerText": "Authorized use only"}
    assert endpoint["SecurityGroupIds"] == [network.security_group_id]


def test_modify_rejects_groups_without_vpc(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    endpoint_id = create_endpoint()
    with pytest.raises(ClientError) as excinfo:
        ec2.modify_client_vpn_endpoint(
            ClientVpnEndpointId=endpoint_id, SecurityGroupIds=[network.security_group_id]
        )
    assert error_code(excinfo) == "InvalidParameterValue"
    with pytest.raises(ClientError) as excinfo:
        ec2.modify_client_vpn_endpoint(ClientVpnEndpointId=endpoint_id, SessionTimeoutHours=9)
    assert error_code(excinfo) == "InvalidParameterValue"


def test_delete_goes_through_deleting(
    ec2: Any, create_endpoint: Callable[..., str], frozen_clock: Clock, backend: ClientVpnBackend
) -> None:
    endpoint_id = create_endpoint()
    assert ec2.delete_client_vpn_endpoint(ClientVpnEndpointId=endpoint_id)["Status"] == {"Code": "deleting"}
    assert endpoint_state(ec2, endpoint_id) == "deleting"
    frozen_clock.advance(backend.timings.deletion_seconds)
    with pytest.raises(ClientError) as excinfo:
        endpoint_state(ec2, endpoint_id)
    assert error_code(excinfo) == "InvalidClientVpnEndpointId.NotFound"


def test_unknown_endpoint_everywhere(ec2: Any, network: Network) -> None:
    missing = "cvpn-endpoint-0123456789abcdef0"
    calls = [
        lambda: ec2.delete_client_vpn_endpoint(ClientVpnEndpointId=missing),
        lambda: ec2.describe_client_vpn_routes(ClientVpnEndpointId=missing),
        lambda: ec2.describe_client_vpn_target_networks(ClientVpnEndpointId=missing),
        lambda: ec2.describe_client_vpn_authorization_rules(ClientVpnEndpointId=missing),
        lambda: ec2.export_client_vpn_client_configuration(ClientVpnEndpointId=missing),
        lambda: ec2.associate_client_vpn_target_network(
            ClientVpnEndpointId=missing, SubnetId=network.subnet_ids[0]
        ),
    ]
    for call in calls:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "InvalidClientVpnEndpointId.NotFound"


def test_generic_ec2_tagging_covers_endpoints(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    """CreateTags / DescribeTags / DeleteTags accept endpoint ids next to ordinary EC2 ids."""
    endpoint_id = create_endpoint()
    ec2.create_tags(Resources=[endpoint_id, network.vpc_id], Tags=[{"Key": "owner", "Value": "netops"}])

    endpoint = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]
    assert endpoint["Tags"] == [{"Key": "owner", "Value": "netops"}]
    tags = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["owner"]}])["Tags"]
    assert sorted((t["ResourceId"], t["ResourceType"]) for t in tags) == sorted(
        [(endpoint_id, "client-vpn-endpoint"), (network.vpc_id, "vpc")]
    )
    only_endpoints = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["client-vpn-endpoint"]}])
    assert [t["ResourceId"] for t in only_endpoints["Tags"]] == [endpoint_id]

    ec2.delete_tags(Resources=[endpoint_id], Tags=[{"Key": "owner"}])
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [endpoint_id]}])["Tags"] == []
    with pytest.raises(ClientError) as excinfo:
        ec2.create_tags(Resources=["cvpn-endpoint-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}])
    assert error_code(excinfo) == "InvalidClientVpnEndpointId.NotFound"


def test_invalid_next_token(ec2: Any, network: Network) -> None:
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_client_vpn_endpoints(MaxResults=5, NextToken="garbage!")
    assert error_code(excinfo) == "InvalidPaginationToken"


def test_dry_run_answers_dry_run_operation(ec2: Any, network: Network) -> None:
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_endpoint(**endpoint_request(network), DryRun=True)
    assert error_code(excinfo) == "DryRunOperation"
    assert ec2.describe_client_vpn_endpoints()["ClientVpnEndpoints"] == []
