"""CreateClientVpnEndpoint parameters: version 1 calls unchanged, version 2 states every new option."""

from __future__ import annotations

import json
from typing import Any

from cvpn_shared.provisioning.models.request import ProvisionRequest
from cvpn_shared.provisioning.steps import endpoint_parameters
from tests.fixtures import REPO_ROOT
from tests.fixtures.crl import make_crl_pem

NEW_OPTIONS = {
    "DisconnectOnSessionTimeout",
    "ClientRouteEnforcementOptions",
    "EndpointIpAddressType",
    "TrafficIpAddressType",
}


def document(name: str = "seed-active-directory.json", **changes: Any) -> dict[str, Any]:
    return json.loads((REPO_ROOT / "events" / "requests" / name).read_text()) | changes


def test_version_one_sends_exactly_the_parameters_it_always_sent() -> None:
    params = endpoint_parameters(ProvisionRequest.model_validate(document()), "attempt-1")
    assert set(params) == {
        "ClientCidrBlock",
        "ServerCertificateArn",
        "AuthenticationOptions",
        "ConnectionLogOptions",
        "TransportProtocol",
        "VpnPort",
        "SplitTunnel",
        "SessionTimeoutHours",
        "SelfServicePortal",
        "Description",
        "TagSpecifications",
        "ClientToken",
        "VpcId",
        "SecurityGroupIds",
        "ClientLoginBannerOptions",
    }
    assert "IncludeAuthorizationPolicyContext" not in params["ConnectionLogOptions"]


def test_version_two_states_every_new_option() -> None:
    log = {"enabled": True, "log_group_name": "/cvpn/x", "include_authorization_policy_context": True}
    request = ProvisionRequest.model_validate(
        document(
            "mutual-tls.json",
            schema_version="2",
            client_route_enforcement=True,
            disconnect_on_session_timeout=False,
            endpoint_ip_address_type="dual-stack",
            traffic_ip_address_type="dual-stack",
            certificate_revocation_list=make_crl_pem(),
            connection_log=log,
        )
    )
    params = endpoint_parameters(request, "attempt-1")
    assert params["DisconnectOnSessionTimeout"] is False
    assert params["ClientRouteEnforcementOptions"] == {"Enforced": True}
    assert (params["EndpointIpAddressType"], params["TrafficIpAddressType"]) == ("dual-stack", "dual-stack")
    assert params["ConnectionLogOptions"]["IncludeAuthorizationPolicyContext"] is True
    assert params["ClientCidrBlock"] == "172.16.0.0/22"
    assert "CertificateRevocationList" not in params  # imported after the endpoint exists


def test_ipv6_only_traffic_sends_no_client_cidr() -> None:
    payload = document(schema_version="2", traffic_ip_address_type="ipv6", endpoint_ip_address_type="ipv6")
    del payload["client_cidr_block"]
    payload["authorization_rules"][0]["target_network_cidr"] = "::/0"
    payload["routes"] = [{"destination_cidr": "::/0"}]
    params = endpoint_parameters(ProvisionRequest.model_validate(payload), "attempt-1")
    assert "ClientCidrBlock" not in params
    assert params["TrafficIpAddressType"] == "ipv6"
    assert set(params) >= NEW_OPTIONS
