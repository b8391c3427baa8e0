"""IP address types, every ModifyClientVpnEndpoint option and CRL rules, with AWS's error codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.clientvpn.models import ClientVpnBackend
from localcloud.clock import Clock
from tests.fixtures.crl import make_crl_pem
from tests.localcloud.clientvpn.support import REGION, FakeConnection, Network, endpoint_request, error_code


@pytest.fixture
def dual_stack_subnets(ec2: Any, network: Network) -> list[str]:
    """Two subnets of the network's VPC given IPv6 CIDRs (the VPC gets an Amazon-provided /56)."""
    association = ec2.associate_vpc_cidr_block(VpcId=network.vpc_id, AmazonProvidedIpv6CidrBlock=True)
    vpc_block = association["Ipv6CidrBlockAssociation"]["Ipv6CidrBlock"]
    prefix = vpc_block.split("::")[0]
    subnets = []
    for index, subnet_id in enumerate(network.subnet_ids[:2]):
        ec2.associate_subnet_cidr_block(SubnetId=subnet_id, Ipv6CidrBlock=f"{prefix[:-1]}{index}::/64")
        subnets.append(subnet_id)
    return subnets


def describe(ec2: Any, endpoint_id: str) -> dict[str, Any]:
    return ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]


def associated(ec2: Any, endpoint_id: str, subnet_id: str, clock: Clock, backend: ClientVpnBackend) -> None:
    ec2.associate_client_vpn_target_network(ClientVpnEndpointId=endpoint_id, SubnetId=subnet_id)
    clock.advance(backend.timings.association_seconds)


# -- IP address types --------------------------------------------------------------------------------
def test_ipv4_is_the_default_of_both_types(ec2: Any, create_endpoint: Callable[..., str]) -> None:
    endpoint = describe(ec2, create_endpoint())
    assert (endpoint["EndpointIpAddressType"], endpoint["TrafficIpAddressType"]) == ("ipv4", "ipv4")
    assert endpoint["ClientCidrBlock"] == "172.16.0.0/22"


@pytest.mark.parametrize("endpoint_type", ["ipv4", "ipv6", "dual-stack"])
@pytest.mark.parametrize("traffic_type", ["ipv4", "dual-stack"])
def test_types_with_ipv4_traffic_keep_the_client_cidr(
    ec2: Any, create_endpoint: Callable[..., str], endpoint_type: str, traffic_type: str
) -> None:
    endpoint = describe(
        ec2, create_endpoint(EndpointIpAddressType=endpoint_type, TrafficIpAddressType=traffic_type)
    )
    assert (endpoint["EndpointIpAddressType"], endpoint["TrafficIpAddressType"]) == (
        endpoint_type,
        traffic_type,
    )
    assert endpoint["ClientCidrBlock"] == "172.16.0.0/22"


def test_ipv6_traffic_takes_no_client_cidr(ec2: Any, network: Network) -> None:
    request = endpoint_request(network, EndpointIpAddressType="dual-stack", TrafficIpAddressType="ipv6")
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_endpoint(**request)
    assert error_code(excinfo) == "InvalidParameterValue"
    assert "ClientCidrBlock cannot be specified" in str(excinfo.value)
    del request["ClientCidrBlock"]
    endpoint = describe(ec2, ec2.create_client_vpn_endpoint(**request)["ClientVpnEndpointId"])
    assert endpoint["TrafficIpAddressType"] == "ipv6"
    assert "ClientCidrBlock" not in endpoint


@pytest.mark.parametrize("traffic_type", ["ipv4", "dual-stack"])
def test_ipv4_traffic_needs_the_client_cidr(ec2: Any, network: Network, traffic_type: str) -> None:
    request = endpoint_request(network, TrafficIpAddressType=traffic_type)
    del request["ClientCidrBlock"]
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_endpoint(**request)
    assert error_code(excinfo) == "MissingParameter"


@pytest.mark.parametrize("parameter", ["EndpointIpAddressType", "TrafficIpAddressType"])
def test_unknown_ip_address_type_is_refused(ec2: Any, network: Network, parameter: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_endpoint(**endpoint_request(network, **{parameter: "ipv5"}))
    assert error_code(excinfo) == "InvalidParameterValue"
    assert parameter in str(excinfo.value)


def test_dns_servers_follow_the_traffic_families(ec2: Any, network: Network) -> None:
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_endpoint(**endpoint_request(network, DnsServers=["fd00::53"]))
    assert error_code(excinfo) == "InvalidParameterValue"
    endpoint_id = ec2.create_client_vpn_endpoint(
        **endpoint_request(network, TrafficIpAddressType="dual-stack", DnsServers=["10.0.0.2", "fd00::53"])
    )["ClientVpnEndpointId"]
    assert describe(ec2, endpoint_id)["DnsServers"] == ["10.0.0.2", "fd00::53"]


def test_dual_stack_association_needs_an_ipv6_subnet_and_routes_both_vpc_cidrs(
    ec2: Any,
    network: Network,
    create_endpoint: Callable[..., str],
    dual_stack_subnets: list[str],
    frozen_clock: Clock,
    backend: ClientVpnBackend,
) -> None:
    endpoint_id = create_endpoint(TrafficIpAddressType="dual-stack")
    with pytest.raises(ClientError) as excinfo:
        ec2.associate_client_vpn_target_network(
            ClientVpnEndpointId=endpoint_id, SubnetId=network.subnet_ids[2]
        )
    assert error_code(excinfo) == "InvalidParameterValue"
    assert "no IPv6 CIDR block" in str(excinfo.value)
    associated(ec2, endpoint_id, dual_stack_subnets[0], frozen_clock, backend)
    routes = ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"]
    ipv4 = [route["DestinationCidr"] for route in routes if ":" not in route["DestinationCidr"]]
    ipv6 = [route["DestinationCidr"] for route in routes if ":" in route["DestinationCidr"]]
    assert ipv4 == [network.vpc_cidr]
    assert len(ipv6) == 1 and ipv6[0].endswith("::/56")


def test_rules_and_routes_take_the_families_the_traffic_carries(
    ec2: Any,
    create_endpoint: Callable[..., str],
    dual_stack_subnets: list[str],
    frozen_clock: Clock,
    backend: ClientVpnBackend,
) -> None:
    ipv4_only = create_endpoint()
    with pytest.raises(ClientError) as excinfo:
        ec2.authorize_client_vpn_ingress(
            ClientVpnEndpointId=ipv4_only, TargetNetworkCidr="2001:db8::/48", AuthorizeAllGroups=True
        )
    assert error_code(excinfo) == "InvalidParameterValue"
    assert "carries IPv4 only" in str(excinfo.value)

    dual = create_endpoint(TrafficIpAddressType="dual-stack")
    associated(ec2, dual, dual_stack_subnets[0], frozen_clock, backend)
    ec2.authorize_client_vpn_ingress(
        ClientVpnEndpointId=dual, TargetNetworkCidr="::/0", AuthorizeAllGroups=True
    )
    ec2.create_client_vpn_route(
        ClientVpnEndpointId=dual, DestinationCidrBlock="::/0", TargetVpcSubnetId=dual_stack_subnets[0]
    )
    rules = ec2.describe_client_vpn_authorization_rules(ClientVpnEndpointId=dual)["AuthorizationRules"]
    assert [rule["DestinationCidr"] for rule in rules] == ["::/0"]
    ec2.delete_client_vpn_route(
        ClientVpnEndpointId=dual, DestinationCidrBlock="::/0", TargetVpcSubnetId=dual_stack_subnets[0]
    )
    ec2.revoke_client_vpn_ingress(ClientVpnEndpointId=dual, TargetNetworkCidr="::/0", RevokeAllGroups=True)


def test_ipv6_only_endpoint_refuses_ipv4_routes(
    ec2: Any, network: Network, dual_stack_subnets: list[str], frozen_clock: Clock, backend: ClientVpnBackend
) -> None:
    request = endpoint_request(network, TrafficIpAddressType="ipv6")
    del request["ClientCidrBlock"]
    endpoint_id = ec2.create_client_vpn_endpoint(**request)["ClientVpnEndpointId"]
    associated(ec2, endpoint_id, dual_stack_subnets[0], frozen_clock, backend)
    routes = ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"]
    assert all(":" in route["DestinationCidr"] for route in routes)  # no IPv4 VPC route
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_route(
            ClientVpnEndpointId=endpoint_id,
            DestinationCidrBlock="0.0.0.0/0",
            TargetVpcSubnetId=dual_stack_subnets[0],
        )
    assert error_code(excinfo) == "InvalidParameterValue"


# -- ModifyClientVpnEndpoint ----------------------------------------------------------------------------
def test_modify_the_newest_options(ec2: Any, network: Network, create_endpoint: Callable[..., str]) -> None:
    endpoint_id = create_endpoint()
    ec2.modify_client_vpn_endpoint(
        ClientVpnEndpointId=endpoint_id,
        DisconnectOnSessionTimeout=False,
        ClientRouteEnforcementOptions={"Enforced": True},
        ConnectionLogOptions={
            "Enabled": True,
            "CloudwatchLogGroup": network.log_group,
            "IncludeAuthorizationPolicyContext": True,
        },
        SelfServicePortal="disabled",
    )
    endpoint = describe(ec2, endpoint_id)
    assert endpoint["DisconnectOnSessionTimeout"] is False
    assert endpoint["ClientRouteEnforcementOptions"] == {"Enforced": True}
    assert endpoint["ConnectionLogOptions"]["IncludeAuthorizationPolicyContext"] is True
    ec2.modify_client_vpn_endpoint(ClientVpnEndpointId=endpoint_id, DisconnectOnSessionTimeout=True)
    assert describe(ec2, endpoint_id)["DisconnectOnSessionTimeout"] is True
    assert describe(ec2, endpoint_id)["ClientRouteEnforcementOptions"] == {"Enforced": True}


def test_modify_dns_servers_off_clears_them(ec2: Any, create_endpoint: Callable[..., str]) -> None:
    endpoint_id = create_endpoint(DnsServers=["10.0.0.2"])
    ec2.modify_client_vpn_endpoint(ClientVpnEndpointId=endpoint_id, DnsServers={"Enabled": False})
    assert describe(ec2, endpoint_id)["DnsServers"] == []


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"SessionTimeoutHours": 9}, "InvalidParameterValue"),
        ({"VpnPort": 8443}, "InvalidParameterValue"),
        ({"ClientLoginBannerOptions": {"Enabled": True, "BannerText": "x" * 1401}}, "InvalidParameterValue"),
        ({"SelfServicePortal": "sometimes"}, "InvalidParameterValue"),
        (
            {"DnsServers": {"Enabled": True, "CustomDnsServers": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}},
            "InvalidParameterValue",
        ),
        ({"DnsServers": {"Enabled": True, "CustomDnsServers": ["fd00::53"]}}, "InvalidParameterValue"),
        (
            {
                "ServerCertificateArn": f"arn:aws:acm:{REGION}:123456789012:certificate/"
                "00000000-0000-0000-0000-000000000000"
            },
            "InvalidParameterValue",
        ),
        ({"ConnectionLogOptions": {"Enabled": True}}, "InvalidParameterValue"),
        (
            {
                "ClientConnectOptions": {
                    "Enabled": True,
                    "LambdaFunctionArn": f"arn:aws:lambda:{REGION}:123456789012:function:not-prefixed",
                }
            },
            "InvalidParameterValue",
        ),
        (
            {"TransitGatewayConfiguration": {"TransitGatewayId": "tgw-0123456789abcdef0"}},
            "InvalidParameterValue",
        ),
        ({"DevicePostureOptions": {"Enabled": False}}, "UnsupportedOperation"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else value,
)
def test_modify_refuses_what_aws_refuses(
    ec2: Any, create_endpoint: Callable[..., str], arguments: dict[str, Any], code: str
) -> None:
    endpoint_id = create_endpoint()
    before = describe(ec2, endpoint_id)
    with pytest.raises(ClientError) as excinfo:
        ec2.modify_client_vpn_endpoint(ClientVpnEndpointId=endpoint_id, **arguments)
    assert error_code(excinfo) == code
    after = describe(ec2, endpoint_id)
    assert {k: v for k, v in after.items() if k != "ConnectionLogOptions"} == {
        k: v for k, v in before.items() if k != "ConnectionLogOptions"
    }


def test_modify_security_groups_needs_the_vpc_and_groups_of_that_vpc(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    endpoint_id = create_endpoint()
    with pytest.raises(ClientError) as excinfo:
        ec2.modify_client_vpn_endpoint(
            ClientVpnEndpointId=endpoint_id, SecurityGroupIds=[network.security_group_id]
        )
    assert error_code(excinfo) == "InvalidParameterValue"
    with pytest.raises(ClientError) as excinfo:
        ec2.modify_client_vpn_endpoint(
            ClientVpnEndpointId=endpoint_id,
            VpcId=network.other_vpc_id,
            SecurityGroupIds=[network.security_group_id],
        )
    assert error_code(excinfo) == "InvalidParameterValue"
    assert "does not belong to VPC" in str(excinfo.value)
    with pytest.raises(ClientError) as excinfo:
        ec2.modify_client_vpn_endpoint(
            ClientVpnEndpointId=endpoint_id, VpcId=network.vpc_id, SecurityGroupIds=["sg-0123456789abcdef0"]
        )
    assert error_code(excinfo) == "InvalidGroup.NotFound"
    ec2.modify_client_vpn_endpoint(
        ClientVpnEndpointId=endpoint_id, VpcId=network.vpc_id, SecurityGroupIds=[network.security_group_id]
    )
    assert describe(ec2, endpoint_id)["SecurityGroupIds"] == [network.security_group_id]


def test_create_refuses_options_the_local_cloud_does_not_emulate(ec2: Any, network: Network) -> None:
    for extra in (
        {"TransitGatewayConfiguration": {"TransitGatewayId": "tgw-0123456789abcdef0"}},
        {"DevicePostureOptions": {"Enabled": False}},
    ):
        with pytest.raises(ClientError) as excinfo:
            ec2.create_client_vpn_endpoint(**endpoint_request(network, **extra))
        assert error_code(excinfo) == "UnsupportedOperation"
    assert ec2.describe_client_vpn_endpoints()["ClientVpnEndpoints"] == []


# -- certificate revocation list ------------------------------------------------------------------------
def test_importing_a_revocation_list_resets_connections_and_replaces_the_last(
    ec2: Any, create_endpoint: Callable[..., str], backend: ClientVpnBackend
) -> None:
    endpoint_id = create_endpoint()
    connection = FakeConnection(endpoint_id, "cvpn-connection-00000000000000001", "alice")
    backend.get_endpoint(endpoint_id).connections[connection.connection_id] = connection
    first, second = make_crl_pem([1]), make_crl_pem([1, 2])
    ec2.import_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint_id, CertificateRevocationList=first
    )
    assert connection.status == "terminated"
    ec2.import_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint_id, CertificateRevocationList=second
    )
    exported = ec2.export_client_vpn_client_certificate_revocation_list(ClientVpnEndpointId=endpoint_id)
    assert exported["CertificateRevocationList"] == second
    assert exported["Status"]["Code"] == "active"


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n",  # PEM around a body that is no CRL
        "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
    ],
)
def test_a_revocation_list_that_does_not_parse_is_refused(
    ec2: Any, create_endpoint: Callable[..., str], text: str
) -> None:
    endpoint_id = create_endpoint()
    with pytest.raises(ClientError) as excinfo:
        ec2.import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint_id, CertificateRevocationList=text
        )
    assert error_code(excinfo) == "InvalidParameterValue"


def test_revocation_list_errors_for_unknown_or_deleting_endpoints(
    ec2: Any, create_endpoint: Callable[..., str]
) -> None:
    with pytest.raises(ClientError) as excinfo:
        ec2.import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId="cvpn-endpoint-0123456789abcdef0", CertificateRevocationList=make_crl_pem()
        )
    assert error_code(excinfo) == "InvalidClientVpnEndpointId.NotFound"
    endpoint_id = create_endpoint()
    ec2.delete_client_vpn_endpoint(ClientVpnEndpointId=endpoint_id)
    with pytest.raises(ClientError) as excinfo:
        ec2.import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint_id, CertificateRevocationList=make_crl_pem()
        )
    assert error_code(excinfo) == "IncorrectState"
