"""Tearing an endpoint down: the rollback of a failed provisioning and the decommission of a live one.

One ``teardown_step`` does what can be done now and says whether the endpoint is gone; the state
machine repeats it after short waits. In order, as the API requires: revoke authorization rules,
delete the routes added by hand (automatic ones go with their association), disassociate every
subnet, and once no association remains, delete the endpoint. Every action is idempotent: an
already-revoked rule, deleted route or finished disassociation is skipped, and throttling, the
per-endpoint concurrency limit or a server error only postpones an action to the next step.

"Not found" right after a create can be eventual consistency, so the endpoint counts as gone only
after two consecutive checks, a wait apart, do not find it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi
from cvpn_shared.provisioning.errors import (
    ClientVpnApiError,
    ConcurrentMutationLimitExceeded,
    EndpointNotYetVisible,
    OperationNotPermitted,
    RequestLimitExceeded,
    ServerError,
)
from cvpn_shared.provisioning.models.workflow_state import PollState
from cvpn_shared.provisioning.steps import next_poll

__all__ = ["TeardownReport", "teardown_step"]

_POSTPONE = (RequestLimitExceeded, ConcurrentMutationLimitExceeded, OperationNotPermitted, ServerError)
_GONE_CODES = {
    "InvalidClientVpnEndpointId.NotFound",
    "InvalidClientVpnEndpointAuthorizationRuleNotFound",
    "InvalidClientVpnRouteNotFound",
    "InvalidClientVpnAssociationIdNotFound",
}


class TeardownReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    endpoint_id: str
    done: bool
    actions: list[str] = []
    remaining: list[str] = []
    absent_checks: int = 0
    poll: PollState


def teardown_step(
    api: ClientVpnApi, endpoint_id: str, poll: PollState, absent_checks: int = 0
) -> TeardownReport:
    """Advance the teardown of ``endpoint_id`` by one step."""
    try:
        endpoint = api.describe_endpoint(endpoint_id)
    except EndpointNotYetVisible:
        absent = absent_checks + 1
        done = absent >= 2
        return TeardownReport(
            endpoint_id=endpoint_id,
            done=done,
            absent_checks=absent,
            remaining=[] if done else ["confirming the endpoint is gone"],
            poll=next_poll(poll, ready=done),
        )
    status = endpoint["Status"]["Code"]
    if status == "deleted":
        return TeardownReport(endpoint_id=endpoint_id, done=True, poll=next_poll(poll, ready=True))

    actions: list[str] = []
    remaining: list[str] = []
    if status != "deleting":
        for rule in api.authorization_rules(endpoint_id):
            label = f"rule {rule['DestinationCidr']} {rule.get('GroupId') or 'all'}"
            if rule["Status"]["Code"] == "revoking":
                remaining.append(label)
                continue
            if _attempt(
                lambda rule=rule: api.revoke(
                    endpoint_id, rule["DestinationCidr"], rule.get("GroupId") or None
                )
            ):
                actions.append(f"revoked {label}")
            remaining.append(label)
        for route in api.routes(endpoint_id):
            if route.get("Origin") != "add-route":
                continue
            label = f"route {route['DestinationCidr']} via {route['TargetSubnet']}"
            if route["Status"]["Code"] == "deleting":
                remaining.append(label)
                continue
            if _attempt(
                lambda route=route: api.delete_route(
                    endpoint_id, route["DestinationCidr"], route["TargetSubnet"]
                )
            ):
                actions.append(f"deleted {label}")
            remaining.append(label)
        live = [n for n in api.target_networks(endpoint_id) if n["Status"]["Code"] != "disassociated"]
        for network in live:
            label = f"association {network['AssociationId']} ({network['TargetNetworkId']})"
            remaining.append(label)
            if network["Status"]["Code"] == "disassociating":
                continue
            if _attempt(lambda network=network: api.disassociate(endpoint_id, network["AssociationId"])):
                actions.append(f"disassociating {network['TargetNetworkId']}")
        if not live and _attempt(lambda: api.delete_endpoint(endpoint_id)):
            actions.append(f"deleting endpoint {endpoint_id}")
    remaining.append(f"endpoint {endpoint_id}")
    return TeardownReport(
        endpoint_id=endpoint_id,
        done=False,
        actions=actions,
        remaining=remaining,
        poll=next_poll(poll, ready=False),
    )


def _attempt(action: object) -> bool:
    """Run ``action``; True when it ran, False when postponed or already done."""
    try:
        action()  # type: ignore[operator]
    except _POSTPONE:
        return False
    except EndpointNotYetVisible:
        return False
    except ClientVpnApiError as error:
        if error.code in _GONE_CODES:
            return False
        raise
    return True
