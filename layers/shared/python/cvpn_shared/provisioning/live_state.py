"""What a Client VPN endpoint is right now, read with Describe calls only, in the request document's terms.

``read_live_endpoint`` is what ``cvpn plan``, the update workflow, drift and adopt read: the endpoint's
options, its associations, authorization rules and routes, each normalised so the planner compares
like with like (CIDRs as written by ``ipaddress``, authentication as the document's method types).
``desired_state_from_live`` turns it back into a request document (``cvpn adopt``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import BaseModel, ConfigDict

from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi
from cvpn_shared.provisioning.errors import ProvisioningError
from cvpn_shared.provisioning.models.request import ProvisionRequest
from cvpn_shared.provisioning.tags import MANAGED_BY_TAG, REQUEST_ID_TAG, REQUESTER_TAG

__all__ = [
    "PRODUCT_TAGS",
    "CannotAdopt",
    "LiveAssociation",
    "LiveEndpoint",
    "LiveRoute",
    "LiveRule",
    "adoption_notes",
    "desired_state_from_live",
    "live_connection_count",
    "read_live_endpoint",
]

# Tags the product manages itself: never part of a document's ``tags`` and never changed by a plan.
PRODUCT_TAGS = frozenset({"Name", MANAGED_BY_TAG, REQUEST_ID_TAG, REQUESTER_TAG})

# Association states that hold (or will hold) a subnet; the others are on their way out or failed.
ASSOCIATION_PRESENT = frozenset({"associating", "associated"})
_RULE_GONE = frozenset({"revoking"})
_ROUTE_GONE = frozenset({"deleting"})

_AUTHENTICATION_TYPES = {
    "certificate-authentication": "mutual-tls",
    "directory-service-authentication": "active-directory",
    "federated-authentication": "saml",
}


class CannotAdopt(ProvisioningError):
    """The endpoint cannot be described by a request document (a required part is missing)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LiveAssociation(_Model):
    association_id: str
    subnet_id: str
    status: str
    vpc_id: str = ""

    @property
    def present(self) -> bool:
        return self.status in ASSOCIATION_PRESENT


class LiveRule(_Model):
    """An authorization rule; ``access_group_id`` is None for a rule that authorizes all groups."""

    target_network_cidr: str
    access_group_id: str | None
    description: str = ""
    status: str = "active"

    @property
    def key(self) -> tuple[str, str]:
        return (self.target_network_cidr, self.access_group_id or "*")


class LiveRoute(_Model):
    """A route; ``origin`` is ``add-route`` for routes someone created, ``associate`` for automatic ones."""

    destination_cidr: str
    subnet_id: str
    origin: str = "add-route"
    description: str = ""
    status: str = "active"

    @property
    def key(self) -> tuple[str, str]:
        return (self.destination_cidr, self.subnet_id)


class LiveEndpoint(_Model):
    """Everything the Describe calls tell about one endpoint, in the request document's terms."""

    endpoint_id: str
    status: str
    dns_name: str = ""
    name: str = ""
    description: str = ""
    vpc_id: str = ""
    client_cidr_block: str | None = None
    server_certificate_arn: str
    authentication: list[dict[str, str]]
    dns_servers: list[str] = []
    transport_protocol: str = "udp"
    vpn_port: int = 443
    split_tunnel: bool = False
    session_timeout_hours: int = 24
    login_banner: str | None = None
    self_service_portal: bool = False
    connection_log_enabled: bool = False
    connection_log_group: str | None = None
    connection_log_stream: str | None = None
    connection_log_authorization_context: bool = False
    client_connect_enabled: bool = False
    client_connect_function_arn: str | None = None
    security_group_ids: list[str] = []
    client_route_enforcement: bool = False
    disconnect_on_session_timeout: bool | None = None
    endpoint_ip_address_type: str = "ipv4"
    traffic_ip_address_type: str = "ipv4"
    certificate_revocation_list: str | None = None
    tags: dict[str, str] = {}
    associations: list[LiveAssociation] = []
    authorization_rules: list[LiveRule] = []
    routes: list[LiveRoute] = []

    @property
    def managed_request_id(self) -> str | None:
        """The request that manages this endpoint, from its tags; None when the product does not."""
        if self.tags.get(MANAGED_BY_TAG) != "client-vpn-autopilot":
            return None
        return self.tags.get(REQUEST_ID_TAG) or None

    @property
    def user_tags(self) -> dict[str, str]:
        return {key: value for key, value in self.tags.items() if key not in PRODUCT_TAGS}

    @property
    def associated_subnet_ids(self) -> list[str]:
        return [association.subnet_id for association in self.associations if association.present]


def _cidr(text: str) -> str:
    """A CIDR as ``ipaddress`` writes it, so that live and desired compare equal; as given if invalid."""
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return text


def _client_cidr(text: str) -> str | None:
    return _cidr(text) if text else None


def _authentication(option: dict[str, Any]) -> dict[str, str]:
    kind = _AUTHENTICATION_TYPES.get(option.get("Type", ""), option.get("Type", ""))
    if kind == "mutual-tls":
        return {
            "type": kind,
            "client_root_certificate_chain_arn": option.get("MutualAuthentication", {}).get(
                "ClientRootCertificateChain", ""
            ),
        }
    if kind == "active-directory":
        return {"type": kind, "directory_id": option.get("ActiveDirectory", {}).get("DirectoryId", "")}
    federated = option.get("FederatedAuthentication", {})
    method = {"type": kind, "saml_provider_arn": federated.get("SamlProviderArn", "")}
    if federated.get("SelfServiceSamlProviderArn"):
        method["self_service_saml_provider_arn"] = federated["SelfServiceSamlProviderArn"]
    return method


def read_live_endpoint(api: ClientVpnApi, endpoint_id: str) -> LiveEndpoint:
    """The endpoint as Describe calls tell it (raises EndpointNotYetVisible when it does not exist).

    Read-only calls only: the Describe calls, and for an endpoint with mutual TLS the export of its
    client certificate revocation list (which no Describe call returns).
    """
    endpoint = api.describe_endpoint(endpoint_id)
    authentication = [_authentication(option) for option in endpoint.get("AuthenticationOptions", [])]
    tags = {tag["Key"]: tag["Value"] for tag in endpoint.get("Tags", [])}
    log = endpoint.get("ConnectionLogOptions") or {}
    banner = endpoint.get("ClientLoginBannerOptions") or {}
    connect = endpoint.get("ClientConnectOptions") or {}
    associations = [
        LiveAssociation(
            association_id=network["AssociationId"],
            subnet_id=network["TargetNetworkId"],
            status=network.get("Status", {}).get("Code", ""),
            vpc_id=network.get("VpcId", ""),
        )
        for network in api.target_networks(endpoint_id)
        if network.get("Status", {}).get("Code") != "disassociated"
    ]
    rules = [
        LiveRule(
            target_network_cidr=_cidr(rule["DestinationCidr"]),
            access_group_id=None if rule.get("AccessAll") else (rule.get("GroupId") or None),
            description=rule.get("Description", "") or "",
            status=rule.get("Status", {}).get("Code", "active"),
        )
        for rule in api.authorization_rules(endpoint_id)
        if rule.get("Status", {}).get("Code") not in _RULE_GONE
    ]
    routes = [
        LiveRoute(
            destination_cidr=_cidr(route["DestinationCidr"]),
            subnet_id=route.get("TargetSubnet", ""),
            origin=route.get("Origin", "add-route"),
            description=route.get("Description", "") or "",
            status=route.get("Status", {}).get("Code", "active"),
        )
        for route in api.routes(endpoint_id)
        if route.get("Status", {}).get("Code") not in _ROUTE_GONE
    ]
    return LiveEndpoint(
        endpoint_id=endpoint["ClientVpnEndpointId"],
        status=endpoint.get("Status", {}).get("Code", ""),
        dns_name=endpoint.get("DnsName", ""),
        name=tags.get("Name", ""),
        description=endpoint.get("Description", "") or "",
        vpc_id=endpoint.get("VpcId", "") or "",
        client_cidr_block=_client_cidr(endpoint.get("ClientCidrBlock") or ""),
        server_certificate_arn=endpoint.get("ServerCertificateArn", ""),
        authentication=authentication,
        dns_servers=list(endpoint.get("DnsServers") or []),
        transport_protocol=endpoint.get("TransportProtocol", "udp"),
        vpn_port=int(endpoint.get("VpnPort", 443)),
        split_tunnel=bool(endpoint.get("SplitTunnel", False)),
        session_timeout_hours=int(endpoint.get("SessionTimeoutHours", 24)),
        login_banner=banner.get("BannerText") if banner.get("Enabled") else None,
        # Describe gives the portal's URL only while the portal is enabled.
        self_service_portal=bool(endpoint.get("SelfServicePortalUrl")),
        connection_log_enabled=bool(log.get("Enabled")),
        connection_log_group=log.get("CloudwatchLogGroup") or None,
        connection_log_stream=log.get("CloudwatchLogStream") or None,
        connection_log_authorization_context=bool(log.get("IncludeAuthorizationPolicyContext")),
        client_connect_enabled=bool(connect.get("Enabled")),
        client_connect_function_arn=connect.get("LambdaFunctionArn") or None,
        security_group_ids=list(endpoint.get("SecurityGroupIds") or []),
        client_route_enforcement=bool((endpoint.get("ClientRouteEnforcementOptions") or {}).get("Enforced")),
        disconnect_on_session_timeout=endpoint.get("DisconnectOnSessionTimeout"),
        endpoint_ip_address_type=endpoint.get("EndpointIpAddressType", "ipv4") or "ipv4",
        traffic_ip_address_type=endpoint.get("TrafficIpAddressType", "ipv4") or "ipv4",
        certificate_revocation_list=(
            api.revocation_list(endpoint_id)
            if any(m["type"] == "mutual-tls" for m in authentication)
            else None
        ),
        tags=tags,
        associations=associations,
        authorization_rules=rules,
        routes=routes,
    )


def live_connection_count(api: ClientVpnApi, endpoint_id: str) -> int:
    """How many connections are active now (DescribeClientVpnConnections, status ``active``).

    The API does not say through which association a connection is placed, so a plan can say how
    many connections are live, not how many a given disassociation drops.
    """
    return sum(1 for item in api.connections(endpoint_id) if item.get("Status", {}).get("Code") == "active")


# ---------------------------------------------------------------------------------------- adopt
def _routes_for_document(live: LiveEndpoint) -> list[dict[str, str]]:
    """One route per destination added by hand (the document's routes go through every subnet)."""
    seen: dict[str, str] = {}
    for route in live.routes:
        if route.origin == "add-route" and route.destination_cidr not in seen:
            seen[route.destination_cidr] = route.description
    return [{"destination_cidr": cidr, "description": text} for cidr, text in seen.items()]


def adoption_notes(live: LiveEndpoint) -> list[str]:
    """What the document of ``live`` cannot say exactly, so the first plan after adopt would change it."""
    notes: list[str] = []
    subnets = set(live.associated_subnet_ids)
    by_destination: dict[str, set[str]] = {}
    for route in live.routes:
        if route.origin == "add-route":
            by_destination.setdefault(route.destination_cidr, set()).add(route.subnet_id)
    for cidr, through in sorted(by_destination.items()):
        missing = sorted(subnets - through)
        if missing:
            notes.append(
                f"routes: {cidr} goes through {', '.join(sorted(through))} only; a document's route goes "
                f"through every associated subnet, so a plan would add it through {', '.join(missing)}"
            )
    descriptions: dict[str, set[str]] = {}
    for route in live.routes:
        if route.origin == "add-route":
            descriptions.setdefault(route.destination_cidr, set()).add(route.description)
    for cidr, texts in sorted(descriptions.items()):
        if len(texts) > 1:
            notes.append(f"routes: {cidr} has different descriptions per subnet; the document keeps one")
    if live.client_connect_enabled:
        notes.append(
            "client_connect_handler: the endpoint calls "
            f"{live.client_connect_function_arn or 'a Lambda function'}; the document turns on the product's "
            "own handler, which a plan puts in its place"
        )
    if not live.connection_log_enabled:
        notes.append("connection_log: logging is off, so monitoring has no connection log to read")
    return notes


def desired_state_from_live(live: LiveEndpoint, request_id: str, requester: str) -> ProvisionRequest:
    """The request document that describes ``live`` as it is (``cvpn adopt``).

    Raises CannotAdopt naming what the endpoint lacks for a document (an association, a rule, a VPC),
    and pydantic's ValidationError when a live value is outside what the document accepts.
    """
    missing = []
    if not live.associated_subnet_ids:
        missing.append("subnet_ids: no subnet is associated (associate one first)")
    if not live.authorization_rules:
        missing.append("authorization_rules: no authorization rule (authorize one first)")
    if not live.vpc_id:
        missing.append("vpc_id: the endpoint is in no VPC yet (associate a subnet first)")
    if missing:
        raise CannotAdopt(f"{live.endpoint_id} cannot be adopted: " + "; ".join(missing))
    document: dict[str, Any] = {
        "schema_version": "2",
        "endpoint_id": live.endpoint_id,
        "request_id": request_id,
        "requester": requester,
        "name": live.name or live.endpoint_id,
        "description": live.description,
        "vpc_id": live.vpc_id,
        "subnet_ids": live.associated_subnet_ids,
        "client_cidr_block": live.client_cidr_block,
        "server_certificate_arn": live.server_certificate_arn,
        "authentication": live.authentication,
        "authorization_rules": [
            {
                "target_network_cidr": rule.target_network_cidr,
                **(
                    {"access_group_id": rule.access_group_id}
                    if rule.access_group_id
                    else {"authorize_all_groups": True}
                ),
                "description": rule.description,
            }
            for rule in live.authorization_rules
        ],
        "routes": _routes_for_document(live),
        "security_group_ids": live.security_group_ids,
        "dns_servers": live.dns_servers,
        "transport_protocol": live.transport_protocol,
        "vpn_port": live.vpn_port,
        "split_tunnel": live.split_tunnel,
        "session_timeout_hours": live.session_timeout_hours,
        "disconnect_on_session_timeout": (
            True if live.disconnect_on_session_timeout is None else live.disconnect_on_session_timeout
        ),
        "client_route_enforcement": live.client_route_enforcement,
        "endpoint_ip_address_type": live.endpoint_ip_address_type,
        "traffic_ip_address_type": live.traffic_ip_address_type,
        "certificate_revocation_list": live.certificate_revocation_list,
        "login_banner": live.login_banner,
        "self_service_portal": live.self_service_portal,
        "connection_log": (
            {
                "enabled": True,
                "log_group_name": live.connection_log_group,
                "log_stream_name": live.connection_log_stream,
                "include_authorization_policy_context": live.connection_log_authorization_context,
            }
            if live.connection_log_enabled
            else {"enabled": False}
        ),
        "client_connect_handler": live.client_connect_enabled,
        "tags": live.user_tags,
    }
    return ProvisionRequest.model_validate(document)
