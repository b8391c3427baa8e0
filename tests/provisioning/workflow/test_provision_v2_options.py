"""A schema-version-2 request provisions with the newest options; warnings never block it."""

from __future__ import annotations

import json

from localcloud.faults import get_fault_injector
from tests.fixtures.crl import make_crl_pem
from tests.provisioning.workflow.harness import GROUP_SID, Provisioning, failure_message


def _mutual_tls(product: Provisioning) -> list[dict[str, str]]:
    return [
        {
            "type": "mutual-tls",
            "client_root_certificate_chain_arn": product.network.client_root_certificate_arn,
        },
        {"type": "active-directory", "directory_id": product.network.directory_id},
    ]


def test_version_two_options_and_revocation_list_reach_the_endpoint(product: Provisioning) -> None:
    """Given a v2 request with mutual TLS plus AD, route enforcement, no disconnect at the timeout,
    dual-stack endpoint addresses, a CRL and authorization-context logging, the endpoint has each
    option and the CRL exported from it is the one imported."""
    crl = make_crl_pem([7, 8, 9])
    request = product.request(
        schema_version="2",
        authentication=_mutual_tls(product),
        client_route_enforcement=True,
        disconnect_on_session_timeout=False,
        endpoint_ip_address_type="dual-stack",
        certificate_revocation_list=crl,
        connection_log={
            "enabled": True,
            "log_group_name": product.network.log_group_name,
            "include_authorization_policy_context": True,
        },
    )
    progress = product.provision(request)
    assert progress.status == "SUCCEEDED", (progress.error, progress.cause)
    endpoint_id = progress.output["result"]["endpoint_id"]
    ec2 = product.cloud.client("ec2")
    endpoint = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]
    assert endpoint["ClientRouteEnforcementOptions"] == {"Enforced": True}
    assert endpoint["DisconnectOnSessionTimeout"] is False
    assert (endpoint["EndpointIpAddressType"], endpoint["TrafficIpAddressType"]) == ("dual-stack", "ipv4")
    assert endpoint["ConnectionLogOptions"]["IncludeAuthorizationPolicyContext"] is True
    exported = ec2.export_client_vpn_client_certificate_revocation_list(ClientVpnEndpointId=endpoint_id)
    assert exported["CertificateRevocationList"] == crl
    rules = ec2.describe_client_vpn_authorization_rules(ClientVpnEndpointId=endpoint_id)["AuthorizationRules"]
    assert [(r["DestinationCidr"], r["GroupId"]) for r in rules] == [("0.0.0.0/0", GROUP_SID)]


def test_warnings_across_rules_and_routes_are_reported_and_do_not_block(product: Provisioning) -> None:
    """Given a request with no security group of its own and a route no rule covers, provisioning
    succeeds and the output and the outcome record carry both warnings with their fields."""
    request = product.request(
        security_group_ids=[],
        authorization_rules=[{"target_network_cidr": "10.200.0.0/24", "access_group_id": GROUP_SID}],
        routes=[{"destination_cidr": "10.201.0.0/24", "description": "not authorized"}],
    )
    progress = product.provision(request)
    assert progress.status == "SUCCEEDED", (progress.error, progress.cause)
    fields = {warning["field"] for warning in progress.output["warnings"]}
    assert {"security_group_ids", "routes[0].destination_cidr"} <= fields
    record = product.record(request["request_id"])
    assert record is not None
    recorded = {item["field"] for item in json.loads(record["warnings"]["S"])}
    assert recorded == fields
    routes = product.cloud.client("ec2").describe_client_vpn_routes(
        ClientVpnEndpointId=progress.output["result"]["endpoint_id"]
    )["Routes"]
    assert {r["DestinationCidr"] for r in routes if r["Origin"] == "add-route"} == {"10.201.0.0/24"}


def test_a_refused_revocation_list_rolls_the_endpoint_back(product: Provisioning) -> None:
    """Given AWS refusing the import of the request's revocation list, the execution fails naming the
    import, no subnet was associated and the endpoint is gone, recorded as ROLLED_BACK."""
    get_fault_injector().configure(
        "ImportClientVpnClientCertificateRevocationList", fail_with="InvalidParameterValue", fail_count=1
    )
    request = product.request(
        schema_version="2", authentication=_mutual_tls(product), certificate_revocation_list=make_crl_pem()
    )
    before = product.inventory().endpoint_ids
    progress = product.provision(request)
    assert progress.status == "FAILED", progress.output
    assert "ImportClientVpnClientCertificateRevocationList: InvalidParameterValue" in failure_message(
        progress
    )
    assert "ImportRevocationList" in progress.steps and "AssociateSubnet" not in progress.steps
    assert product.endpoints_for(request["request_id"]) == []
    assert product.inventory().endpoint_ids <= before
    assert product.record_status(request["request_id"]) == "ROLLED_BACK"
