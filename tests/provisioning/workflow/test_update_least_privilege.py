"""The update's functions act with their own roles: only on managed endpoints, never on the product's
own tags, and a missing grant fails the update where AWS would, with the previous state restored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.provisioning.workflow.harness import Provisioning, failure_message
from tests.provisioning.workflow.test_least_privilege import policy_without_statement  # noqa: F401


@pytest.fixture
def provisioned(product: Provisioning) -> tuple[dict[str, Any], str]:
    document = product.request(zones=1)
    assert product.provision(document).status == "SUCCEEDED"
    return document, product.endpoints_for(document["request_id"])[0]["ClientVpnEndpointId"]


def _apply_change(
    product: Provisioning, document: dict[str, Any], endpoint_id: str, tags: list[dict[str, str]]
) -> dict[str, Any]:
    """Invoke ApplyChangeFunction as the update state machine does, with a tag change."""
    payload = {
        "validated": {"request": document, "endpoint_id": endpoint_id, "revision": 2, "previous_revision": 1},
        "changes": [
            {
                "group": "endpoint-options",
                "action": "update-tags",
                "summary": "tag",
                "field": "tags",
                "forward": {"operation": "CreateTags", "parameters": {"Tags": tags}},
            }
        ],
        "progress": {"index": 0, "applied": []},
    }
    answer = product.cloud.client("lambda").invoke(
        FunctionName=product.stack.functions["ApplyChangeFunction"].name, Payload=json.dumps(payload).encode()
    )
    return {"error": answer.get("FunctionError"), "body": json.loads(answer["Payload"].read())}


def test_a_change_may_set_user_tags_but_never_the_products_own(
    product: Provisioning, provisioned: tuple[dict[str, Any], str]
) -> None:
    document, endpoint_id = provisioned
    allowed = _apply_change(product, document, endpoint_id, [{"Key": "Team", "Value": "network"}])
    assert allowed["error"] is None, allowed
    hijack = _apply_change(
        product, document, endpoint_id, [{"Key": "cvpn-autopilot:request-id", "Value": "NET-SOMEONE-ELSE"}]
    )
    assert hijack["error"] and "UnauthorizedOperation" in hijack["body"]["errorMessage"], hijack
    tags = {t["Key"]: t["Value"] for t in product.describe_endpoint(endpoint_id)["Tags"]}  # type: ignore[index]
    assert tags["cvpn-autopilot:request-id"] == document["request_id"] and tags["Team"] == "network"


@pytest.mark.parametrize(
    "policy_without_statement", [("ApplyChangeFunction", "ChangeManagedEndpoints")], indirect=True
)
def test_an_update_without_its_grant_fails_where_aws_would_and_changes_nothing(
    product: Provisioning,
    provisioned: tuple[dict[str, Any], str],
    policy_without_statement: str,  # noqa: F811
) -> None:
    document, endpoint_id = provisioned
    changed = {**document, "routes": [*document["routes"], {"destination_cidr": "10.60.0.0/16"}]}
    progress = product.run(
        product.stack.outputs["UpdateEndpointStateMachineArn"], {"request": changed, "applied_by": "test"}
    )
    assert progress.status == "FAILED"
    message = failure_message(progress)
    assert "UnauthorizedOperation" in message and "ec2:CreateClientVpnRoute" in message, message
    assert "restored the previous state" in message
    routes = product.cloud.client("ec2").describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"]
    assert "10.60.0.0/16" not in {r["DestinationCidr"] for r in routes}
