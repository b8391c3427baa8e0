"""Decommission tears down endpoints the product created, and only those."""

from __future__ import annotations

import pytest

from cvpn_shared.provisioning.monitored_log_groups import MONITORED_LOG_GROUPS_INDEX
from localcloud.faults import get_fault_injector
from tests.provisioning.workflow.harness import MANAGED_BY_TAG, Provisioning, failure_message


def monitored(product: Provisioning) -> dict[str, str]:
    """Request id -> log group, as the deployed requests table's sparse index holds them (what the
    connection-log ingest reads)."""
    items = product.cloud.client("dynamodb").scan(
        TableName=product.stack.outputs["RequestsTableName"], IndexName=MONITORED_LOG_GROUPS_INDEX
    )["Items"]
    return {item["request_id"]["S"]: item["monitored_log_group"]["S"] for item in items}


@pytest.mark.parametrize("by", ["request_id", "endpoint_id"])
def test_decommission_leaves_nothing(product: Provisioning, by: str) -> None:
    """Given an endpoint provisioned for a request (rules, routes, two associations),
    when it is decommissioned by its request id or by its endpoint id,
    then the execution SUCCEEDS, Describe no longer knows the endpoint, no endpoint carries the request
    id, the requests table records DECOMMISSIONED with that endpoint id, and its index of monitored
    log groups, which held the request while it was live, no longer does."""
    request = product.request()
    provisioned = product.provision(request)
    assert provisioned.status == "SUCCEEDED", (provisioned.error, provisioned.cause)
    endpoint_id = provisioned.output["result"]["endpoint_id"]
    assert monitored(product)[request["request_id"]] == request["connection_log"]["log_group_name"]
    target = {"request_id": request["request_id"], "endpoint_id": endpoint_id}[by]

    progress = product.decommission(**{by: target})

    assert progress.status == "SUCCEEDED", (progress.error, progress.cause)
    assert progress.output["endpoint_id"] == endpoint_id
    product.assert_endpoint_gone(endpoint_id)
    assert product.endpoints_for(request["request_id"]) == []
    record = product.record(request["request_id"])
    assert record is not None
    assert record["status"]["S"] == "DECOMMISSIONED"
    assert record["endpoint_id"]["S"] == endpoint_id
    assert request["request_id"] not in monitored(product)


def test_decommission_refuses_an_endpoint_the_product_did_not_create(product: Provisioning) -> None:
    """Given an endpoint created directly through the API (no managed-by tag), associated with a subnet,
    when its endpoint id is decommissioned,
    then the execution fails with EndpointNotManaged and the endpoint, its association and its
    authorization rule are left as they were."""
    ec2 = product.cloud.client("ec2")
    network = product.network
    endpoint_id = ec2.create_client_vpn_endpoint(
        ClientCidrBlock="172.20.0.0/22",
        ServerCertificateArn=network.server_certificate_arn,
        AuthenticationOptions=[
            {
                "Type": "certificate-authentication",
                "MutualAuthentication": {
                    "ClientRootCertificateChainArn": network.client_root_certificate_arn
                },
            }
        ],
        ConnectionLogOptions={"Enabled": False},
        TagSpecifications=[
            {"ResourceType": "client-vpn-endpoint", "Tags": [{"Key": "Name", "Value": "hand-made"}]}
        ],
    )["ClientVpnEndpointId"]
    association_id = ec2.associate_client_vpn_target_network(
        ClientVpnEndpointId=endpoint_id, SubnetId=network.subnet_ids[0]
    )["AssociationId"]
    ec2.authorize_client_vpn_ingress(
        ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="10.0.0.0/16", AuthorizeAllGroups=True
    )

    progress = product.decommission(endpoint_id=endpoint_id)

    assert progress.status == "FAILED"
    assert progress.error == "EndpointNotManaged"
    assert MANAGED_BY_TAG in failure_message(progress)
    assert "TeardownStep" not in progress.steps
    endpoint = product.describe_endpoint(endpoint_id)
    assert endpoint is not None
    assert endpoint["Status"]["Code"] != "deleting"
    networks = ec2.describe_client_vpn_target_networks(ClientVpnEndpointId=endpoint_id)[
        "ClientVpnTargetNetworks"
    ]
    assert [(n["AssociationId"], n["Status"]["Code"]) for n in networks] in (
        [(association_id, "associating")],
        [(association_id, "associated")],
    )
    rules = ec2.describe_client_vpn_authorization_rules(ClientVpnEndpointId=endpoint_id)["AuthorizationRules"]
    assert [r["DestinationCidr"] for r in rules] == ["10.0.0.0/16"]
    assert product.record("unknown") is None, "the refusal was recorded under a made-up request id"
    refusal = product.record(f"endpoint:{endpoint_id}")
    assert refusal is not None
    assert refusal["status"]["S"] == "DECOMMISSION_FAILED"
    assert refusal["error"]["S"] == "EndpointNotManaged"


def test_failed_decommission_keeps_the_provisioning_record(product: Provisioning) -> None:
    """Given a provisioned endpoint whose teardown fails (DisassociateClientVpnTargetNetwork answers
    UnauthorizedOperation: the policy lacks the action),
    when it is decommissioned by request id,
    then the execution fails with ClientVpnApiError, and the request's record still names the endpoint
    (which Describe still shows) and what the provisioning created, with status DECOMMISSION_FAILED
    and the error: the audit trail does not lose a live endpoint."""
    request = product.request()
    provisioned = product.provision(request)
    assert provisioned.status == "SUCCEEDED", (provisioned.error, provisioned.cause)
    endpoint_id = provisioned.output["result"]["endpoint_id"]
    get_fault_injector().configure("DisassociateClientVpnTargetNetwork", fail_with="UnauthorizedOperation")

    progress = product.decommission(request_id=request["request_id"])

    assert progress.status == "FAILED"
    assert progress.error == "ClientVpnApiError"
    assert "DisassociateClientVpnTargetNetwork: UnauthorizedOperation" in failure_message(progress)
    assert product.describe_endpoint(endpoint_id) is not None
    record = product.record(request["request_id"])
    assert record is not None
    assert record["status"]["S"] == "DECOMMISSION_FAILED"
    assert record["endpoint_id"]["S"] == endpoint_id
    assert record["error"]["S"] == "ClientVpnApiError"
    assert endpoint_id in record["created"]["S"]
    assert record["requester"]["S"] == request["requester"]
