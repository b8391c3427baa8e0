"""The demo's update chapter: a second document adds an office route and a group to the live endpoint.

The plan is made as `cvpn plan` makes it (Describe calls only), the update state machine applies it
as `cvpn apply` starts it, and the endpoint keeps its id and DNS name: nobody needs a new configuration.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["OFFICE_GROUP_SID", "OFFICE_ROUTE", "run_update_chapter", "second_document"]

OFFICE_ROUTE = "10.60.0.0/16"
OFFICE_GROUP_SID = "S-1-5-21-1004336348-1177238915-682003330-1105"


def second_document(first: dict[str, Any]) -> dict[str, Any]:
    """The first document with the new office's route and a group authorized to reach it."""
    document = json.loads(json.dumps(first))
    document["routes"] = [
        *document["routes"],
        {"destination_cidr": OFFICE_ROUTE, "description": "Lyon office"},
    ]
    document["authorization_rules"] = [
        *document["authorization_rules"],
        {
            "target_network_cidr": OFFICE_ROUTE,
            "access_group_id": OFFICE_GROUP_SID,
            "description": "Lyon staff",
        },
    ]
    return document


def run_update_chapter(cloud: Any, stack: Any, request_id: str, say: Callable[..., None]) -> bool:
    """Plan and apply the second document; True when the endpoint changed in place."""
    from cvpn.apply_cli import apply_execution_name
    from cvpn.plan_cli import print_plan
    from cvpn.provision import follow_execution
    from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi
    from cvpn_shared.provisioning.dal.requests_table import RequestRecords
    from cvpn_shared.provisioning.live_state import live_connection_count, read_live_endpoint
    from cvpn_shared.provisioning.models.request import ProvisionRequest
    from cvpn_shared.provisioning.planning import plan_update

    item = RequestRecords(cloud.client("dynamodb"), stack.outputs["RequestsTableName"]).get(request_id)
    assert item is not None, f"no record of {request_id}"
    endpoint_id = str(item["endpoint_id"])
    api = ClientVpnApi(cloud.client("ec2"))
    before = read_live_endpoint(api, endpoint_id)
    desired = ProvisionRequest.model_validate(second_document(item["request"]))
    revision = int(item.get("revision") or 1) + 1

    plan = plan_update(
        desired, before, revision=revision, live_connections=live_connection_count(api, endpoint_id)
    )
    say("cvpn plan", f"{request_id}: what the second document changes, in the order it is done")
    print_plan(plan, previous_revision=revision - 1)

    document = desired.model_dump(mode="json")
    sfn = cloud.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=stack.outputs["UpdateEndpointStateMachineArn"],
        name=apply_execution_name(request_id, revision, document),
        input=json.dumps({"request": document, "applied_by": "demo@example.com", "revision": revision}),
    )["executionArn"]
    say("cvpn apply", execution.rsplit(":", 1)[-1])
    progress = follow_execution(sfn, execution, poll_seconds=0.1, timeout_seconds=600)
    if progress.status != "SUCCEEDED":
        say("apply FAILED", f"{progress.error}: {progress.cause}")
        return False
    after = read_live_endpoint(api, endpoint_id)
    same = after.endpoint_id == before.endpoint_id and after.dns_name == before.dns_name
    routes = sorted({route.destination_cidr for route in after.routes if route.origin == "add-route"})
    say(
        "applied in place",
        f"revision {progress.output['revision']} in {progress.state_transitions} steps; {endpoint_id} "
        f"({after.dns_name}) kept its id and DNS name: {same}; routes now {', '.join(routes)}",
    )
    return same and OFFICE_ROUTE in routes
