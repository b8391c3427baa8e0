"""Provisioning succeeds end to end on the local cloud: real definition, real handlers."""

from __future__ import annotations

import urllib.request

import pytest

from tests.provisioning.workflow.harness import GROUP_SID, Provisioning


def _assert_ready(product: Provisioning, output: dict, subnet_ids: list[str]) -> str:
    result = output["result"]
    endpoint_id = result["endpoint_id"]
    ec2 = product.cloud.client("ec2")
    endpoint = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]
    assert endpoint["Status"]["Code"] == "available"
    networks = ec2.describe_client_vpn_target_networks(ClientVpnEndpointId=endpoint_id)[
        "ClientVpnTargetNetworks"
    ]
    assert sorted(n["TargetNetworkId"] for n in networks) == sorted(subnet_ids)
    assert {n["Status"]["Code"] for n in networks} == {"associated"}
    routes = ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"]
    manual = sorted((r["DestinationCidr"], r["TargetSubnet"]) for r in routes if r["Origin"] == "add-route")
    assert manual == sorted((cidr, s) for cidr in ("0.0.0.0/0", "10.200.0.0/24") for s in subnet_ids)
    assert {r["Status"]["Code"] for r in routes} == {"active"}
    with urllib.request.urlopen(product.configuration_link(result), timeout=10) as response:
        profile = response.read().decode()
    assert (
        f"remote {endpoint_id}.prod.clientvpn.us-east-1.amazonaws.com 443" in profile
        or endpoint_id in profile
    )
    assert result["cost"]["hourly_usd"] == pytest.approx(0.10 * len(subnet_ids))
    return endpoint_id


@pytest.mark.parametrize("zones", [2, 3])
def test_seed_scenario_provisions_an_available_endpoint(product: Provisioning, zones: int) -> None:
    """Given the seed request (AD group SID for 0.0.0.0/0, default and on-premises routes, /22, UDP 443)
    in 2 or 3 AZs, when it is provisioned, the endpoint is available with every route through every
    subnet, the profile downloads, and the outcome is recorded."""
    request = product.request(zones=zones)
    progress = product.provision(request)
    assert progress.status == "SUCCEEDED", (progress.error, progress.cause)
    endpoint_id = _assert_ready(product, progress.output, product.network.subnet_ids[:zones])
    rules = product.cloud.client("ec2").describe_client_vpn_authorization_rules(
        ClientVpnEndpointId=endpoint_id
    )
    assert [(r["DestinationCidr"], r["GroupId"]) for r in rules["AuthorizationRules"]] == [
        ("0.0.0.0/0", GROUP_SID)
    ]
    record = product.record(request["request_id"])
    assert record is not None
    assert record["status"]["S"] == "SUCCEEDED"
    assert record["endpoint_id"]["S"] == endpoint_id
