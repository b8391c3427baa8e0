"""Provisioning steps: what an administrator does in the console, one idempotent step at a time.

Each function is one Lambda task of the provisioning state machine. They take the data-access
object (``ClientVpnApi``) as an argument, so tests hand in the real one against the local cloud or
any stand-in. Retrying a step is safe: create-style calls carry a ``ClientToken`` derived from the
request, and a ``Duplicate*`` answer counts as success when the existing resource matches.

Waiting is the state machine's job (Wait / check / Choice). The check steps report what is ready and
how long to wait next; they count waited seconds in the execution's state instead of reading a
clock, so the overall timeout holds whatever the clock of the Lambda says.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi
from cvpn_shared.provisioning.dal.log_groups import ConnectionLogGroups
from cvpn_shared.provisioning.errors import (
    AssociationFailed,
    ClientVpnApiError,
    ProvisioningTimedOut,
    RuleOrRouteFailed,
)
from cvpn_shared.provisioning.models.request import AuthorizationRule, ProvisionRequest, Route
from cvpn_shared.provisioning.models.workflow_state import (
    AssociationRef,
    EndpointRef,
    PollState,
    ReadinessReport,
)
from cvpn_shared.provisioning.tags import MANAGED_BY_TAG, REQUEST_ID_TAG, REQUESTER_TAG

__all__ = [
    "apply_security_groups",
    "associate_subnet",
    "authorize_rule",
    "check_associations",
    "check_rules_and_routes",
    "create_endpoint",
    "create_route",
    "endpoint_parameters",
    "import_revocation_list",
    "next_poll",
    "route_targets",
]

DUPLICATE_ASSOCIATION = {
    "InvalidClientVpnDuplicateAssociationException",
    "ClientVpnEndpointAssociationExists",
}


# ---------------------------------------------------------------------------------------- polling
def next_poll(poll: PollState, *, ready: bool) -> PollState:
    """Advance the wait loop's bookkeeping: the next Wait's length and the seconds waited so far.

    The first wait is sized to the typical duration, then polls are short, so the overshoot after
    the resource becomes ready is at most one poll. With ``max_poll_seconds`` each poll lasts twice
    the one before up to that length: a resource that is slow to come costs few checks (Lambda
    invocations and state transitions) for at most that much more overshoot. No wait goes past the
    timeout, so the last check falls on it. Raises ProvisioningTimedOut when the seconds waited
    reach the timeout without the resource being ready.
    """
    waited = poll.waited_seconds + poll.next_wait_seconds  # a Wait of next_wait_seconds precedes each check
    polls = poll.polls + 1
    if not ready and waited >= poll.timeout_seconds:
        raise ProvisioningTimedOut(
            f"{poll.what}: not ready after {waited} s of waiting "
            f"(timeout {poll.timeout_seconds} s, {polls} checks)"
        )
    return poll.model_copy(
        update={
            "polls": polls,
            "waited_seconds": waited,
            "next_wait_seconds": _next_wait(poll, waited),
            "ready": ready,
        }
    )


def _next_wait(poll: PollState, waited: int) -> int:
    """The Wait before the next check, ``waited`` seconds into the loop."""
    wait = poll.poll_seconds
    if poll.max_poll_seconds is not None and poll.polls > 0:
        # The Wait that preceded this check was a poll (the first check follows the first wait).
        wait = min(max(2 * poll.next_wait_seconds, poll.poll_seconds), poll.max_poll_seconds)
    return max(0, min(wait, poll.timeout_seconds - waited))


# ---------------------------------------------------------------------------------------- endpoint
def endpoint_parameters(request: ProvisionRequest, attempt: str = "") -> dict[str, Any]:
    """The CreateClientVpnEndpoint parameters for ``request`` (ClientToken of this ``attempt`` included)."""
    authentication: list[dict[str, Any]] = []
    for method in request.authentication:
        if method.type == "active-directory":
            authentication.append(
                {
                    "Type": "directory-service-authentication",
                    "ActiveDirectory": {"DirectoryId": method.directory_id},
                }
            )
        elif method.type == "mutual-tls":
            authentication.append(
                {
                    "Type": "certificate-authentication",
                    "MutualAuthentication": {
                        "ClientRootCertificateChainArn": method.client_root_certificate_chain_arn
                    },
                }
            )
        else:
            federated: dict[str, str] = {"SAMLProviderArn": method.saml_provider_arn}
            if method.self_service_saml_provider_arn:
                federated["SelfServiceSAMLProviderArn"] = method.self_service_saml_provider_arn
            authentication.append({"Type": "federated-authentication", "FederatedAuthentication": federated})

    log = request.connection_log
    log_options: dict[str, Any] = {"Enabled": log.enabled}
    if log.enabled:
        log_options["CloudwatchLogGroup"] = log.log_group_name
        if log.log_stream_name:
            log_options["CloudwatchLogStream"] = log.log_stream_name
        if log.include_authorization_policy_context:
            log_options["IncludeAuthorizationPolicyContext"] = True

    tags = [
        {"Key": "Name", "Value": request.name},
        {"Key": REQUEST_ID_TAG, "Value": request.request_id},
        {"Key": REQUESTER_TAG, "Value": request.requester},
        {"Key": MANAGED_BY_TAG, "Value": "client-vpn-autopilot"},
        *({"Key": key, "Value": value} for key, value in sorted(request.tags.items())),
    ]
    params: dict[str, Any] = {
        "ServerCertificateArn": request.server_certificate_arn,
        "AuthenticationOptions": authentication,
        "ConnectionLogOptions": log_options,
        "TransportProtocol": request.transport_protocol,
        "VpnPort": request.vpn_port,
        "SplitTunnel": request.split_tunnel,
        "SessionTimeoutHours": request.session_timeout_hours,
        "SelfServicePortal": "enabled" if request.self_service_portal else "disabled",
        "Description": (request.description or request.name)[:255],
        "TagSpecifications": [{"ResourceType": "client-vpn-endpoint", "Tags": tags}],
        "ClientToken": request.client_token("create-endpoint", attempt),
    }
    if request.client_cidr_block is not None:  # absent for IPv6-only traffic
        params["ClientCidrBlock"] = str(request.client_cidr_block)
    if request.schema_version != "1":
        # Version 2 states every newer option, defaults included, so the endpoint is what the
        # document says whatever AWS's defaults become; version 1 calls stay as they always were.
        params["DisconnectOnSessionTimeout"] = request.disconnect_on_session_timeout
        params["ClientRouteEnforcementOptions"] = {"Enforced": request.client_route_enforcement}
        params["EndpointIpAddressType"] = request.endpoint_ip_address_type
        params["TrafficIpAddressType"] = request.traffic_ip_address_type
    if request.dns_servers:
        params["DnsServers"] = [str(server) for server in request.dns_servers]
    if request.security_group_ids:
        params["VpcId"] = request.vpc_id
        params["SecurityGroupIds"] = list(request.security_group_ids)
    if request.login_banner:
        params["ClientLoginBannerOptions"] = {"Enabled": True, "BannerText": request.login_banner}
    return params


def create_endpoint(
    api: ClientVpnApi,
    request: ProvisionRequest,
    log_groups: ConnectionLogGroups,
    *,
    attempt: str,
    existing_endpoint_id: str | None = None,
    client_connect_function_arn: str | None = None,
) -> EndpointRef:
    """Create the connection log group if missing, then the endpoint; or adopt the live endpoint
    already tagged with the request id (``existing_endpoint_id``, found by validation).

    Re-running a request thus finds its endpoint instead of creating a second one. The ClientToken
    is the request's and the ``attempt``'s (the execution): retries of the task within one execution
    get the first result, while a re-run after a rollback creates a new endpoint instead of being
    handed back the deleted one (EC2 answers a known token with its first result, whatever became
    of the endpoint since).
    """
    if existing_endpoint_id:
        endpoint = api.describe_endpoint(existing_endpoint_id)
        return EndpointRef(
            endpoint_id=existing_endpoint_id,
            dns_name=endpoint.get("DnsName", ""),
            status=endpoint["Status"]["Code"],
        )
    log = request.connection_log
    if log.enabled and log.log_group_name:
        log_groups.ensure(log.log_group_name, log.retention_days, {REQUEST_ID_TAG: request.request_id})
    params = endpoint_parameters(request, attempt)
    if request.client_connect_handler:
        if not client_connect_function_arn:
            raise ClientVpnApiError(
                "InvalidParameterValue",
                "client_connect_handler is on but the stack has no client-connect function configured",
                "CreateClientVpnEndpoint",
            )
        params["ClientConnectOptions"] = {"Enabled": True, "LambdaFunctionArn": client_connect_function_arn}
    answer = api.create_endpoint(**params)
    return EndpointRef(
        endpoint_id=answer["ClientVpnEndpointId"],
        dns_name=answer.get("DnsName", ""),
        status=answer.get("Status", {}).get("Code", "pending-associate"),
    )


def import_revocation_list(api: ClientVpnApi, request: ProvisionRequest, endpoint_id: str) -> dict[str, Any]:
    """Import the request's client certificate revocation list; a re-run imports the same list again.

    AWS keeps one list per endpoint and an import replaces it, so a retry cannot leave two.
    """
    if request.certificate_revocation_list is None:
        return {"imported": False}
    api.import_revocation_list(endpoint_id, request.certificate_revocation_list)
    return {"imported": True}


# ---------------------------------------------------------------------------------------- associations
def associate_subnet(
    api: ClientVpnApi, request: ProvisionRequest, endpoint_id: str, subnet_id: str
) -> AssociationRef:
    """Associate one subnet; an existing association of the same subnet counts as success."""
    try:
        answer = api.associate(
            endpoint_id, subnet_id, request.client_token("associate", endpoint_id, subnet_id)
        )
        return AssociationRef(
            association_id=answer["AssociationId"], subnet_id=subnet_id, status=answer["Status"]["Code"]
        )
    except ClientVpnApiError as error:
        if error.code not in DUPLICATE_ASSOCIATION:
            raise
    for network in api.target_networks(endpoint_id):
        if network["TargetNetworkId"] == subnet_id and network["Status"]["Code"] not in (
            "disassociating",
            "disassociated",
        ):
            return AssociationRef(
                association_id=network["AssociationId"], subnet_id=subnet_id, status=network["Status"]["Code"]
            )
    raise ClientVpnApiError(
        "InvalidClientVpnDuplicateAssociationException",
        f"{subnet_id} is reported as associated but no live association was found",
        "AssociateClientVpnTargetNetwork",
    )


def check_associations(api: ClientVpnApi, endpoint_id: str, poll: PollState) -> ReadinessReport:
    """Are all associations `associated` and the endpoint `available`? Raises on association-failed."""
    networks = api.target_networks(endpoint_id)
    failed = [n for n in networks if n["Status"]["Code"] == "association-failed"]
    if failed:
        details = ", ".join(
            f"{n['TargetNetworkId']}: {n['Status'].get('Message', 'association-failed')}" for n in failed
        )
        raise AssociationFailed(f"association failed for {details}")
    pending = [n["TargetNetworkId"] for n in networks if n["Status"]["Code"] != "associated"]
    endpoint_status = api.describe_endpoint(endpoint_id)["Status"]["Code"]
    ready = bool(networks) and not pending and endpoint_status == "available"
    return ReadinessReport(
        ready=ready,
        pending=pending if pending else ([] if ready else [f"endpoint {endpoint_status}"]),
        poll=next_poll(poll, ready=ready),
        associated_subnet_ids=sorted(
            n["TargetNetworkId"] for n in networks if n["Status"]["Code"] == "associated"
        ),
    )


# ---------------------------------------------------------------------------------------- rules and routes
def authorize_rule(
    api: ClientVpnApi, request: ProvisionRequest, endpoint_id: str, rule: AuthorizationRule
) -> dict[str, str]:
    """Authorize one rule; an identical existing rule counts as success."""
    params: dict[str, Any] = {"TargetNetworkCidr": str(rule.target_network_cidr)}
    if rule.access_group_id:
        params["AccessGroupId"] = rule.access_group_id
    else:
        params["AuthorizeAllGroups"] = True
    if rule.description:
        params["Description"] = rule.description
    token = request.client_token(
        "authorize", endpoint_id, str(rule.target_network_cidr), rule.access_group_id or "*"
    )
    try:
        status = api.authorize(endpoint_id, token, **params)["Status"]["Code"]
    except ClientVpnApiError as error:
        if error.code != "InvalidClientVpnDuplicateAuthorizationRule":
            raise
        status = "active"
    return {
        "target_network_cidr": str(rule.target_network_cidr),
        "access_group_id": rule.access_group_id or "",
        "status": status,
    }


def route_targets(routes: list[Route], subnet_ids: list[str]) -> list[dict[str, str]]:
    """Every (route, subnet) pair: a route meant for all clients must exist through every subnet."""
    return [
        {
            "destination_cidr": str(route.destination_cidr),
            "description": route.description,
            "subnet_id": subnet_id,
        }
        for route in routes
        for subnet_id in subnet_ids
    ]


def create_route(
    api: ClientVpnApi,
    request: ProvisionRequest,
    endpoint_id: str,
    destination_cidr: str,
    subnet_id: str,
    description: str,
) -> dict[str, str]:
    """Create one route through one subnet; an identical existing route counts as success."""
    ipaddress.ip_network(destination_cidr)  # already validated by the model; a cheap guard for direct calls
    token = request.client_token("route", endpoint_id, destination_cidr, subnet_id)
    try:
        status = api.create_route(endpoint_id, destination_cidr, subnet_id, description, token)["Status"][
            "Code"
        ]
    except ClientVpnApiError as error:
        if error.code != "InvalidClientVpnDuplicateRoute":
            raise
        status = "active"
    return {"destination_cidr": destination_cidr, "subnet_id": subnet_id, "status": status}


def check_rules_and_routes(api: ClientVpnApi, endpoint_id: str, poll: PollState) -> ReadinessReport:
    """Are every rule and every route `active`? Raises when one `failed`."""
    rules = api.authorization_rules(endpoint_id)
    routes = api.routes(endpoint_id)
    failed = [f"rule {r['DestinationCidr']}" for r in rules if r["Status"]["Code"] == "failed"] + [
        f"route {r['DestinationCidr']} via {r['TargetSubnet']}"
        for r in routes
        if r["Status"]["Code"] == "failed"
    ]
    if failed:
        raise RuleOrRouteFailed("failed: " + ", ".join(failed))
    pending = [f"rule {r['DestinationCidr']}" for r in rules if r["Status"]["Code"] != "active"] + [
        f"route {r['DestinationCidr']} via {r['TargetSubnet']}"
        for r in routes
        if r["Status"]["Code"] != "active"
    ]
    ready = not pending
    return ReadinessReport(ready=ready, pending=pending, poll=next_poll(poll, ready=ready))


def apply_security_groups(api: ClientVpnApi, request: ProvisionRequest, endpoint_id: str) -> dict[str, Any]:
    """Apply the request's security groups (the API replaces the whole set; idempotent).

    Without groups in the request the endpoint keeps what AWS applied on the first association:
    the VPC's default security group.
    """
    if not request.security_group_ids:
        return {"applied": False, "security_group_ids": []}
    applied = api.apply_security_groups(endpoint_id, request.vpc_id, list(request.security_group_ids))
    return {"applied": True, "security_group_ids": applied}
