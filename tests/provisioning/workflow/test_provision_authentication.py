"""Provisioning succeeds with every authentication the product offers: real definition, real handlers."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest

from tests.provisioning.workflow.harness import GROUP_SID, Provisioning

SAML_GROUP = "vpn-engineering"


def _mutual_tls(product: Provisioning) -> list[dict[str, Any]]:
    return [
        {
            "type": "mutual-tls",
            "client_root_certificate_chain_arn": product.network.client_root_certificate_arn,
        }
    ]


def _saml(product: Provisioning) -> list[dict[str, Any]]:
    return [{"type": "saml", "saml_provider_arn": product.network.saml_provider_arn}]


def _mutual_tls_and_directory(product: Provisioning) -> list[dict[str, Any]]:
    return [
        *_mutual_tls(product),
        {"type": "active-directory", "directory_id": product.network.directory_id},
    ]


CASES = {
    # name: (authentication, authorization rule, API authentication types, rule as Describe shows it,
    #        profile lines the authentication needs)
    "mutual-tls": (
        _mutual_tls,
        {"target_network_cidr": "0.0.0.0/0", "authorize_all_groups": True},
        {"certificate-authentication"},
        ("0.0.0.0/0", None, True),
        ["# <cert>"],
    ),
    "saml": (
        _saml,
        {"target_network_cidr": "0.0.0.0/0", "access_group_id": SAML_GROUP},
        {"federated-authentication"},
        ("0.0.0.0/0", SAML_GROUP, False),
        ["auth-federate"],
    ),
    "mutual-tls+active-directory": (
        _mutual_tls_and_directory,
        {"target_network_cidr": "0.0.0.0/0", "access_group_id": GROUP_SID},
        {"certificate-authentication", "directory-service-authentication"},
        ("0.0.0.0/0", GROUP_SID, False),
        ["auth-user-pass", "# <cert>"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_authentication_type_provisions_an_available_endpoint(product: Provisioning, case: str) -> None:
    """Given a request in 2 AZs authenticating with mutual TLS alone (every user authorized), SAML (a
    group name authorized) or mutual TLS plus Active Directory (a group SID authorized),
    when it is provisioned,
    then the execution succeeds, and Describe shows an available endpoint with exactly those
    authentication options, both subnets associated, the one authorization rule active, every route
    through every subnet; the downloaded profile asks for what that authentication needs; the
    requests table records SUCCEEDED."""
    make_authentication, rule, api_types, described_rule, profile_lines = CASES[case]
    request = product.request(authentication=make_authentication(product), authorization_rules=[rule])

    progress = product.provision(request)

    assert progress.status == "SUCCEEDED", (progress.error, progress.cause)
    result = progress.output["result"]
    endpoint_id = result["endpoint_id"]
    endpoint = product.describe_endpoint(endpoint_id)
    assert endpoint is not None
    assert endpoint["Status"]["Code"] == "available"
    assert {option["Type"] for option in endpoint["AuthenticationOptions"]} == api_types
    ec2 = product.cloud.client("ec2")
    networks = ec2.describe_client_vpn_target_networks(ClientVpnEndpointId=endpoint_id)[
        "ClientVpnTargetNetworks"
    ]
    assert sorted((n["TargetNetworkId"], n["Status"]["Code"]) for n in networks) == sorted(
        (subnet_id, "associated") for subnet_id in product.network.subnet_ids[:2]
    )
    rules = ec2.describe_client_vpn_authorization_rules(ClientVpnEndpointId=endpoint_id)["AuthorizationRules"]
    assert [(r["DestinationCidr"], r.get("GroupId"), r["AccessAll"], r["Status"]["Code"]) for r in rules] == [
        (*described_rule, "active")
    ]
    routes = ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"]
    assert sorted(
        (r["DestinationCidr"], r["TargetSubnet"]) for r in routes if r["Origin"] == "add-route"
    ) == sorted(
        (cidr, subnet_id)
        for cidr in ("0.0.0.0/0", "10.200.0.0/24")
        for subnet_id in product.network.subnet_ids[:2]
    )
    with urllib.request.urlopen(product.configuration_link(result), timeout=10) as response:
        profile = response.read().decode()
    assert f"remote {endpoint_id}.prod.clientvpn.us-east-1.amazonaws.com 443" in profile
    for line in profile_lines:
        assert line in profile.splitlines(), f"{line!r} missing from the {case} profile"
    assert [e["ClientVpnEndpointId"] for e in product.endpoints_for(request["request_id"])] == [endpoint_id]
    assert product.record_status(request["request_id"]) == "SUCCEEDED"
