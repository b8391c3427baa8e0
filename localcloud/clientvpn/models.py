"""The Client VPN emulator: endpoints, target-network associations, authorization rules, routes.

Nothing runs in the background. Every state is computed from the emulated clock
(``localcloud.clock.get_clock()``) whenever it is read: an association requested at ``t`` is
``associating`` until ``t + timings.association_seconds`` and ``associated`` from then on, and so
on. Side effects of a transition (purging removed resources, terminating connections when the last
association goes) happen in ``ClientVpnEndpoint.refresh()``, which every access calls first.

Connections belong to the connection simulator (``localcloud/clientvpn/connections.py``). The
contract between the two modules:

- this module creates ``ClientVpnEndpoint.connections`` (``dict[str, Any]``) empty and never adds to
  it; the simulator stores its connection objects there, keyed by connection id;
- a connection object has ``.connection_id``, ``.username`` (str or None), ``.status`` (botocore's
  ClientVpnConnectionStatusCode: active, failed-to-terminate, terminating, terminated),
  ``.to_api() -> dict`` in botocore's ClientVpnConnection shape, and
  ``.terminate(now: datetime) -> {"ConnectionId", "PreviousStatus", "CurrentStatus"}``;
- DescribeClientVpnConnections (filters connection-id, username) and TerminateClientVpnConnections
  (ConnectionId or Username) are answered here over those objects
  (``ClientVpnBackend.describe_connections`` / ``terminate_connections``), so the API does not
  depend on the simulator module being importable;
- when the last association goes (and when DNS servers change) every active connection's
  ``.terminate(get_clock().now())`` is called;
- ``BACKEND_LOCK`` serializes API calls; the simulator may hold it while it changes connections.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from moto.core.base_backend import BackendDict, BaseBackend

from localcloud.clientvpn import references
from localcloud.clientvpn.exceptions import (
    ClientVpnEndpointNotFound,
    ClientVpnError,
    ConcurrentMutationLimitExceeded,
    IdempotentParameterMismatch,
    InvalidParameterValue,
    MissingParameter,
    UnsupportedOperation,
)
from localcloud.clientvpn.paging import apply_filters
from localcloud.clock import get_clock

R = TypeVar("R")

# Status codes from the botocore model.
PENDING_ASSOCIATE = "pending-associate"
AVAILABLE = "available"
DELETING = "deleting"
ASSOCIATING = "associating"
ASSOCIATED = "associated"
ASSOCIATION_FAILED = "association-failed"
DISASSOCIATING = "disassociating"
DISASSOCIATED = "disassociated"
AUTHORIZING = "authorizing"
RULE_OR_ROUTE_FAILED = "failed"
ACTIVE = "active"
REVOKING = "revoking"
CREATING = "creating"
ROUTE_DELETING = "deleting"
ORIGIN_ASSOCIATE = "associate"
ORIGIN_ADD_ROUTE = "add-route"

CERTIFICATE_AUTHENTICATION = "certificate-authentication"
DIRECTORY_AUTHENTICATION = "directory-service-authentication"
FEDERATED_AUTHENTICATION = "federated-authentication"

SESSION_TIMEOUT_HOURS = (8, 10, 12, 24)
VPN_PORTS = (443, 1194)
TRANSPORT_PROTOCOLS = ("tcp", "udp")
MAX_BANNER_CHARACTERS = 1400
IP_ADDRESS_TYPES = ("ipv4", "ipv6", "dual-stack")
# Which address families each traffic IP address type carries through the tunnel.
TRAFFIC_VERSIONS = {"ipv4": frozenset({4}), "ipv6": frozenset({6}), "dual-stack": frozenset({4, 6})}


@dataclass
class ClientVpnTimings:
    """How long (in emulated seconds) each asynchronous Client VPN change takes.

    A change's completion time is fixed when it is requested, so editing these affects later
    requests only. Set ``DEFAULT_TIMINGS`` for every new backend (moto recreates backends on
    reset) or ``backend.timings`` for one account and region.
    """

    association_seconds: float = 240.0
    disassociation_seconds: float = 60.0
    authorization_seconds: float = 30.0
    route_seconds: float = 90.0
    deletion_seconds: float = 30.0
    security_group_seconds: float = 10.0
    client_connect_seconds: float = 30.0


@dataclass
class ClientVpnQuotas:
    """Client VPN service quotas (AWS defaults)."""

    endpoints_per_region: int = 5
    authorization_rules_per_endpoint: int = 200
    routes_per_associated_subnet: int = 100
    concurrent_operations_per_endpoint: int = 10
    certificate_revocation_list_entries: int = 20000


# One lock for every Client VPN API call (moto's HTTP server answers requests on several threads);
# the connection simulator can hold it too while it changes ``endpoint.connections``.
BACKEND_LOCK = threading.RLock()

# New backends (one per account and region, recreated on every moto reset) copy these.
DEFAULT_TIMINGS = ClientVpnTimings()
DEFAULT_QUOTAS = ClientVpnQuotas()


def _now() -> float:
    return get_clock().timestamp()


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _hex_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(9)[:17]}"


@dataclass
class TargetNetworkAssociation:
    """A subnet associated with an endpoint; its state follows the emulated clock."""

    id: str
    endpoint_id: str
    subnet_id: str
    vpc_id: str
    vpc_cidr: str
    availability_zone: str
    requested_at: float
    completes_at: float
    failure_message: str | None = None
    vpc_ipv6_cidr: str | None = None
    disassociation_requested_at: float | None = None
    disassociation_completes_at: float | None = None

    def state_at(self, now: float) -> str:
        if self.disassociation_completes_at is not None:
            return DISASSOCIATING if now < self.disassociation_completes_at else DISASSOCIATED
        if now < self.completes_at:
            return ASSOCIATING
        return ASSOCIATION_FAILED if self.failure_message else ASSOCIATED

    @property
    def state(self) -> str:
        return self.state_at(_now())

    def serves_at(self, now: float) -> bool:
        """Whether clients can land on this subnet (association complete and not yet removed)."""
        if self.failure_message or now < self.completes_at:
            return False
        return self.disassociation_completes_at is None or now < self.disassociation_completes_at

    def in_flight_at(self, now: float) -> bool:
        return self.state_at(now) in (ASSOCIATING, DISASSOCIATING)

    def status(self, now: float) -> dict[str, str]:
        code = self.state_at(now)
        status = {"Code": code}
        if code == ASSOCIATION_FAILED and self.failure_message:
            status["Message"] = self.failure_message
        return status


@dataclass
class AuthorizationRule:
    """An ingress authorization rule (destination CIDR for one group or for all users)."""

    endpoint_id: str
    destination_cidr: str
    group_id: str | None
    access_all: bool
    description: str | None
    requested_at: float
    active_at: float
    fails: bool = False  # ends ``failed`` instead of ``active`` (fault injection)

    def state_at(self, now: float) -> str:
        if now < self.active_at:
            return AUTHORIZING
        return RULE_OR_ROUTE_FAILED if self.fails else ACTIVE

    @property
    def state(self) -> str:
        return self.state_at(_now())

    def matches(self, destination_cidr: str, group_id: str | None, access_all: bool) -> bool:
        if self.destination_cidr != destination_cidr:
            return False
        return self.access_all if access_all else (not self.access_all and self.group_id == group_id)

    def to_api(self, now: float) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "ClientVpnEndpointId": self.endpoint_id,
            "DestinationCidr": self.destination_cidr,
            "AccessAll": self.access_all,
            "Status": {"Code": self.state_at(now)},
        }
        if self.group_id:
            rule["GroupId"] = self.group_id
        if self.description:
            rule["Description"] = self.description
        return rule


@dataclass
class ClientVpnRoute:
    """A route: added by hand (origin add-route) or for an association's VPC (origin associate)."""

    endpoint_id: str
    destination_cidr: str
    target_subnet: str
    origin: str
    description: str | None
    requested_at: float
    active_at: float
    deletion_completes_at: float | None = None
    fails: bool = False  # ends ``failed`` instead of ``active`` (fault injection)

    def state_at(self, now: float) -> str:
        if self.deletion_completes_at is not None:
            return ROUTE_DELETING
        if now < self.active_at:
            return CREATING
        return RULE_OR_ROUTE_FAILED if self.fails else ACTIVE

    @property
    def state(self) -> str:
        return self.state_at(_now())

    def gone_at(self, now: float) -> bool:
        return self.deletion_completes_at is not None and now >= self.deletion_completes_at

    def in_flight_at(self, now: float) -> bool:
        return self.state_at(now) in (CREATING, ROUTE_DELETING) and not self.gone_at(now)

    def to_api(self, now: float) -> dict[str, Any]:
        route: dict[str, Any] = {
            "ClientVpnEndpointId": self.endpoint_id,
            "DestinationCidr": self.destination_cidr,
            "TargetSubnet": self.target_subnet,
            "Type": "Nat",
            "Origin": self.origin,
            "Status": {"Code": self.state_at(now)},
        }
        if self.description:
            route["Description"] = self.description
        elif self.origin == ORIGIN_ASSOCIATE:
            route["Description"] = "Default Route"
        return route


@dataclass
class ClientVpnEndpoint:
    """A Client VPN endpoint and everything attached to it."""

    id: str
    account_id: str
    region: str
    timings: ClientVpnTimings
    quotas: ClientVpnQuotas
    client_cidr_block: str | None  # None when the traffic is IPv6 only
    server_certificate_arn: str
    authentication_options: list[dict[str, Any]]
    connection_log_options: dict[str, Any]
    created_at: float
    description: str | None = None
    dns_servers: list[str] = field(default_factory=list)
    transport_protocol: str = "udp"
    vpn_port: int = 443
    split_tunnel: bool = False
    security_group_ids: list[str] = field(default_factory=list)
    vpc_id: str | None = None
    self_service_portal: str = "enabled"
    client_connect_options: dict[str, Any] = field(default_factory=lambda: {"Enabled": False})
    client_connect_applied_at: float = 0.0
    session_timeout_hours: int = 24
    client_login_banner_options: dict[str, Any] = field(default_factory=lambda: {"Enabled": False})
    client_route_enforcement_options: dict[str, Any] = field(default_factory=lambda: {"Enforced": False})
    disconnect_on_session_timeout: bool = True
    endpoint_ip_address_type: str = "ipv4"
    traffic_ip_address_type: str = "ipv4"
    tags: dict[str, str] = field(default_factory=dict)
    associations: dict[str, TargetNetworkAssociation] = field(default_factory=dict)
    authorization_rules: list[AuthorizationRule] = field(default_factory=list)
    routes: list[ClientVpnRoute] = field(default_factory=list)
    connections: dict[str, Any] = field(default_factory=dict)
    certificate_revocation_list: str | None = None
    security_group_changes_complete_at: list[float] = field(default_factory=list)
    deletion_requested_at: float | None = None
    _serving: bool = False

    # -- identity ----------------------------------------------------------------------------
    @property
    def arn(self) -> str:
        return f"arn:aws:ec2:{self.region}:{self.account_id}:client-vpn-endpoint/{self.id}"

    @property
    def dns_name(self) -> str:
        return f"*.{self.id}.prod.clientvpn.{self.region}.amazonaws.com"

    @property
    def remote_host(self) -> str:
        return f"{self.id}.prod.clientvpn.{self.region}.amazonaws.com"

    @property
    def traffic_versions(self) -> frozenset[int]:
        """The address families the tunnel carries: rules, routes and DNS servers must be of them."""
        return TRAFFIC_VERSIONS[self.traffic_ip_address_type]

    # -- computed state ----------------------------------------------------------------------
    def refresh(self, now: float | None = None) -> float:
        """Apply the transitions due by ``now`` and return ``now``.

        Removes finished disassociations (with their automatic routes and any route through their
        subnet) and finished route deletions; when the endpoint stops serving clients (no
        association complete any more) terminates every active connection.
        """
        now = _now() if now is None else now
        for association_id, association in list(self.associations.items()):
            if association.state_at(now) == DISASSOCIATED:
                del self.associations[association_id]
                self.routes = [route for route in self.routes if route.target_subnet != association.subnet_id]
        self.routes = [route for route in self.routes if not route.gone_at(now)]
        serving = any(association.serves_at(now) for association in self.associations.values())
        if self._serving and not serving:
            self.terminate_all_connections()
        self._serving = serving
        return now

    def state_at(self, now: float) -> str:
        if self.deletion_requested_at is not None:
            return DELETING
        return AVAILABLE if any(a.serves_at(now) for a in self.associations.values()) else PENDING_ASSOCIATE

    @property
    def state(self) -> str:
        return self.state_at(self.refresh())

    def automatic_routes(self, now: float) -> list[ClientVpnRoute]:
        """The route AWS adds for the VPC CIDR through every associated subnet, one per family the
        traffic carries (the VPC's IPv6 CIDR when it has one)."""
        routes: list[ClientVpnRoute] = []
        for association in self.associations.values():
            if not association.serves_at(now):
                continue
            destinations = []
            if 4 in self.traffic_versions:
                destinations.append(association.vpc_cidr)
            if 6 in self.traffic_versions and association.vpc_ipv6_cidr:
                destinations.append(association.vpc_ipv6_cidr)
            routes.extend(
                ClientVpnRoute(
                    endpoint_id=self.id,
                    destination_cidr=destination,
                    target_subnet=association.subnet_id,
                    origin=ORIGIN_ASSOCIATE,
                    description=None,
                    requested_at=association.completes_at,
                    active_at=association.completes_at,
                    deletion_completes_at=association.disassociation_completes_at,
                )
                for destination in destinations
            )
        return routes

    def all_routes(self, now: float) -> list[ClientVpnRoute]:
        return self.automatic_routes(now) + self.routes

    def mutations_in_flight(self, now: float) -> int:
        """Changes still in progress (they count against the 10 concurrent operations quota)."""
        return (
            sum(association.in_flight_at(now) for association in self.associations.values())
            + sum(rule.state_at(now) == AUTHORIZING for rule in self.authorization_rules)
            + sum(route.in_flight_at(now) for route in self.routes)
            + sum(now < done for done in self.security_group_changes_complete_at)
        )

    def ensure_mutation_allowed(self, now: float) -> None:
        limit = self.quotas.concurrent_operations_per_endpoint
        if self.mutations_in_flight(now) >= limit:
            raise ConcurrentMutationLimitExceeded(self.id, limit)

    def active_associations(self, now: float) -> list[TargetNetworkAssociation]:
        return [a for a in self.associations.values() if a.state_at(now) == ASSOCIATED]

    def terminate_all_connections(self) -> list[dict[str, Any]]:
        """Terminate every active connection (the connection simulator owns the objects)."""
        clock_now = get_clock().now()
        return [
            connection.terminate(clock_now)
            for connection in list(self.connections.values())
            if getattr(connection, "status", ACTIVE) == ACTIVE
        ]

    # -- API shape -----------------------------------------------------------------------------
    def to_api(self, now: float) -> dict[str, Any]:
        """The endpoint in botocore's ClientVpnEndpoint shape."""
        associated = [a for a in self.associations.values() if a.state_at(now) != ASSOCIATION_FAILED]
        connect = dict(self.client_connect_options)
        connect["Status"] = {"Code": "applying" if now < self.client_connect_applied_at else "applied"}
        endpoint: dict[str, Any] = {
            "ClientVpnEndpointId": self.id,
            "Status": {"Code": self.state_at(now)},
            "CreationTime": _iso(self.created_at),
            "DnsName": self.dns_name,
            "DnsServers": list(self.dns_servers),
            "SplitTunnel": self.split_tunnel,
            "VpnProtocol": "openvpn",
            "TransportProtocol": self.transport_protocol,
            "VpnPort": self.vpn_port,
            "AssociatedTargetNetworks": [
                {"NetworkId": a.subnet_id, "NetworkType": "vpc"} for a in associated
            ],
            "ServerCertificateArn": self.server_certificate_arn,
            "AuthenticationOptions": [self._authentication_to_api(o) for o in self.authentication_options],
            "ConnectionLogOptions": dict(self.connection_log_options),
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()],
            "SecurityGroupIds": list(self.security_group_ids),
            "ClientConnectOptions": connect,
            "SessionTimeoutHours": self.session_timeout_hours,
            "ClientLoginBannerOptions": dict(self.client_login_banner_options),
            "ClientRouteEnforcementOptions": dict(self.client_route_enforcement_options),
            "DisconnectOnSessionTimeout": self.disconnect_on_session_timeout,
            "EndpointIpAddressType": self.endpoint_ip_address_type,
            "TrafficIpAddressType": self.traffic_ip_address_type,
        }
        if self.client_cidr_block is not None:
            endpoint["ClientCidrBlock"] = self.client_cidr_block
        if self.description:
            endpoint["Description"] = self.description
        if self.vpc_id:
            endpoint["VpcId"] = self.vpc_id
        if self.self_service_portal == "enabled" and self.uses_federated_authentication:
            endpoint["SelfServicePortalUrl"] = (
                f"https://self-service.clientvpn.amazonaws.com/endpoints/{self.id}"
            )
        return endpoint

    @property
    def uses_federated_authentication(self) -> bool:
        return any(o["Type"] == FEDERATED_AUTHENTICATION for o in self.authentication_options)

    @staticmethod
    def _authentication_to_api(option: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {"Type": option["Type"]}
        if option["Type"] == CERTIFICATE_AUTHENTICATION:
            result["MutualAuthentication"] = {
                "ClientRootCertificateChain": option["MutualAuthentication"]["ClientRootCertificateChainArn"]
            }
        elif option["Type"] == DIRECTORY_AUTHENTICATION:
            result["ActiveDirectory"] = {"DirectoryId": option["ActiveDirectory"]["DirectoryId"]}
        else:
            federated = option["FederatedAuthentication"]
            result["FederatedAuthentication"] = {"SamlProviderArn": federated["SAMLProviderArn"]}
            if federated.get("SelfServiceSAMLProviderArn"):
                result["FederatedAuthentication"]["SelfServiceSamlProviderArn"] = federated[
                    "SelfServiceSAMLProviderArn"
                ]
        return result


def target_network_to_api(
    endpoint: ClientVpnEndpoint, association: TargetNetworkAssociation, now: float
) -> dict[str, Any]:
    """An association in botocore's TargetNetwork shape."""
    return {
        "AssociationId": association.id,
        "VpcId": association.vpc_id,
        "TargetNetworkId": association.subnet_id,
        "ClientVpnEndpointId": endpoint.id,
        "Status": association.status(now),
        "SecurityGroups": list(endpoint.security_group_ids),
    }


class ClientVpnBackend(BaseBackend):
    """Client VPN endpoints of one account in one region (reset with moto's own state)."""

    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.endpoints: dict[str, ClientVpnEndpoint] = {}
        self.timings = dataclasses.replace(DEFAULT_TIMINGS)
        self.quotas = dataclasses.replace(DEFAULT_QUOTAS)
        self._client_tokens: dict[tuple[str, str], tuple[str, Any]] = {}

    # -- helpers -------------------------------------------------------------------------------
    def _purge_deleted_endpoints(self, now: float) -> None:
        for endpoint_id, endpoint in list(self.endpoints.items()):
            requested = endpoint.deletion_requested_at
            if requested is not None and now >= requested + self.timings.deletion_seconds:
                del self.endpoints[endpoint_id]

    def get_endpoint(self, endpoint_id: str) -> ClientVpnEndpoint:
        """The endpoint, transitions applied; raises InvalidClientVpnEndpointId.NotFound."""
        now = _now()
        self._purge_deleted_endpoints(now)
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            raise ClientVpnEndpointNotFound(endpoint_id)
        endpoint.refresh(now)
        return endpoint

    def _mutable_endpoint(self, endpoint_id: str) -> tuple[ClientVpnEndpoint, float]:
        endpoint = self.get_endpoint(endpoint_id)
        if endpoint.deletion_requested_at is not None:
            raise ClientVpnError("IncorrectState", f"Client VPN endpoint {endpoint_id} is being deleted.")
        return endpoint, _now()

    def idempotent(
        self, operation: str, token: str | None, arguments: dict[str, Any], run: Callable[[], R]
    ) -> R:
        """Run ``run`` once per ClientToken: same token and arguments give the first result."""
        if not token:
            return run()
        fingerprint = json.dumps(arguments, sort_keys=True, default=str)
        key = (operation, token)
        if key in self._client_tokens:
            first_fingerprint, first_result = self._client_tokens[key]
            if first_fingerprint != fingerprint:
                raise IdempotentParameterMismatch(token)
            return first_result  # type: ignore[no-any-return]
        result = run()
        self._client_tokens[key] = (fingerprint, result)
        return result

    # -- endpoints -----------------------------------------------------------------------------
    def create_endpoint(self, request: dict[str, Any]) -> ClientVpnEndpoint:
        """Validate a CreateClientVpnEndpoint request and create the endpoint (pending-associate)."""
        now = _now()
        self._purge_deleted_endpoints(now)
        _refuse_unimplemented(request)
        endpoint_type = _validate_ip_address_type(
            request.get("EndpointIpAddressType"), "EndpointIpAddressType"
        )
        traffic_type = _validate_ip_address_type(request.get("TrafficIpAddressType"), "TrafficIpAddressType")
        versions = TRAFFIC_VERSIONS[traffic_type]
        if 4 in versions:
            client_cidr: ipaddress.IPv4Network | None = _validate_client_cidr(request.get("ClientCidrBlock"))
        elif request.get("ClientCidrBlock"):
            raise InvalidParameterValue(
                "ClientCidrBlock cannot be specified when TrafficIpAddressType is ipv6: "
                "client IPv6 addresses are assigned from the associated subnets."
            )
        else:
            client_cidr = None
        server_arn = request.get("ServerCertificateArn") or ""
        references.find_certificate(self.account_id, self.region_name, server_arn, "Server")
        authentication = self._validate_authentication(request.get("AuthenticationOptions") or [])
        dns_servers = _validate_dns_servers(request.get("DnsServers") or [], versions)
        transport = request.get("TransportProtocol") or "udp"
        if transport not in TRANSPORT_PROTOCOLS:
            raise InvalidParameterValue(f"Invalid TransportProtocol {transport}; expected tcp or udp.")
        vpn_port = _validate_vpn_port(request.get("VpnPort"))
        session_hours = _validate_session_timeout(request.get("SessionTimeoutHours"))
        vpc_id = request.get("VpcId")
        group_ids = list(request.get("SecurityGroupIds") or [])
        if vpc_id:
            references.ensure_default_tenancy(references.find_vpc(self.account_id, self.region_name, vpc_id))
        references.validate_security_groups(self.account_id, self.region_name, vpc_id, group_ids)
        if vpc_id and not group_ids:
            default_group = references.default_security_group_id(self.account_id, self.region_name, vpc_id)
            group_ids = [default_group] if default_group else []
        portal = _validate_portal(request.get("SelfServicePortal"))
        banner = _validate_banner(request.get("ClientLoginBannerOptions"))
        connect = self._validate_client_connect(request.get("ClientConnectOptions"))
        active = sum(1 for e in self.endpoints.values() if e.deletion_requested_at is None)
        if active >= self.quotas.endpoints_per_region:
            raise ClientVpnError(
                "ClientVpnEndpointLimitExceeded",
                f"You have reached the limit of {self.quotas.endpoints_per_region} Client VPN endpoints.",
            )
        endpoint_id = _hex_id("cvpn-endpoint-")
        log_options = self._validate_log_options(request.get("ConnectionLogOptions"), endpoint_id, now)
        endpoint = ClientVpnEndpoint(
            id=endpoint_id,
            account_id=self.account_id,
            region=self.region_name,
            timings=self.timings,
            quotas=self.quotas,
            client_cidr_block=None if client_cidr is None else str(client_cidr),
            server_certificate_arn=server_arn,
            authentication_options=authentication,
            connection_log_options=log_options,
            created_at=now,
            description=request.get("Description"),
            dns_servers=dns_servers,
            transport_protocol=transport,
            vpn_port=vpn_port,
            split_tunnel=bool(request.get("SplitTunnel", False)),
            security_group_ids=group_ids,
            vpc_id=vpc_id,
            self_service_portal=portal,
            client_connect_options=connect,
            client_connect_applied_at=now
            + (self.timings.client_connect_seconds if connect["Enabled"] else 0),
            session_timeout_hours=session_hours,
            client_login_banner_options=banner,
            client_route_enforcement_options={
                "Enforced": bool((request.get("ClientRouteEnforcementOptions") or {}).get("Enforced", False))
            },
            disconnect_on_session_timeout=bool(request.get("DisconnectOnSessionTimeout", True)),
            endpoint_ip_address_type=endpoint_type,
            traffic_ip_address_type=traffic_type,
            tags=_tags_from_specifications(request.get("TagSpecifications") or []),
        )
        self.endpoints[endpoint_id] = endpoint
        return endpoint

    def modify_endpoint(self, endpoint_id: str, request: dict[str, Any]) -> None:
        """Apply a ModifyClientVpnEndpoint request (ClientCidrBlock cannot change)."""
        endpoint, now = self._mutable_endpoint(endpoint_id)
        account, region = self.account_id, self.region_name
        if request.get("TransitGatewayConfiguration") is not None:
            # The API reference: "This option is currently not supported" for ModifyClientVpnEndpoint.
            raise InvalidParameterValue("TransitGatewayConfiguration cannot be modified.")
        _refuse_unimplemented(request)
        if request.get("ServerCertificateArn"):
            references.find_certificate(account, region, request["ServerCertificateArn"], "Server")
        if request.get("VpnPort") is not None:
            _validate_vpn_port(request["VpnPort"])
        if request.get("SessionTimeoutHours") is not None:
            _validate_session_timeout(request["SessionTimeoutHours"])
        dns = request.get("DnsServers")
        new_dns: list[str] | None = None
        if dns is not None:
            new_dns = (
                _validate_dns_servers(dns.get("CustomDnsServers") or [], endpoint.traffic_versions)
                if dns.get("Enabled", True)
                else []
            )
        group_ids = request.get("SecurityGroupIds")
        vpc_id = request.get("VpcId")
        if group_ids is not None or vpc_id is not None:
            if group_ids and not vpc_id:
                raise InvalidParameterValue("Security Groups cannot be modified without specifying Vpc Id")
            if vpc_id and vpc_id != endpoint.vpc_id and endpoint.associations:
                raise InvalidParameterValue(
                    "The VPC of a Client VPN endpoint can only change when no target network is associated."
                )
            if vpc_id:
                references.ensure_default_tenancy(references.find_vpc(account, region, vpc_id))
            references.validate_security_groups(account, region, vpc_id, list(group_ids or []))
            endpoint.ensure_mutation_allowed(now)
        log_options = (
            self._validate_log_options(request["ConnectionLogOptions"], endpoint.id, now)
            if request.get("ConnectionLogOptions") is not None
            else None
        )
        connect = (
            self._validate_client_connect(request["ClientConnectOptions"])
            if request.get("ClientConnectOptions") is not None
            else None
        )
        banner = (
            _validate_banner(request["ClientLoginBannerOptions"])
            if request.get("ClientLoginBannerOptions") is not None
            else None
        )
        portal = _validate_portal(request["SelfServicePortal"]) if request.get("SelfServicePortal") else None

        # Everything validated: apply.
        if (
            request.get("ServerCertificateArn")
            and request["ServerCertificateArn"] != endpoint.server_certificate_arn
        ):
            endpoint.server_certificate_arn = request["ServerCertificateArn"]
            endpoint.terminate_all_connections()  # AWS: changing the server certificate resets connections
        if request.get("VpnPort") is not None:
            endpoint.vpn_port = int(request["VpnPort"])
        if request.get("SessionTimeoutHours") is not None:
            endpoint.session_timeout_hours = int(request["SessionTimeoutHours"])
        if request.get("Description") is not None:
            endpoint.description = request["Description"]
        if request.get("SplitTunnel") is not None:
            endpoint.split_tunnel = bool(request["SplitTunnel"])
        if request.get("DisconnectOnSessionTimeout") is not None:
            endpoint.disconnect_on_session_timeout = bool(request["DisconnectOnSessionTimeout"])
        if request.get("ClientRouteEnforcementOptions") is not None:
            endpoint.client_route_enforcement_options = {
                "Enforced": bool(request["ClientRouteEnforcementOptions"].get("Enforced", False))
            }
        if new_dns is not None and new_dns != endpoint.dns_servers:
            endpoint.dns_servers = new_dns
            endpoint.terminate_all_connections()  # changing DNS servers resets connections
        if vpc_id is not None or group_ids is not None:
            if vpc_id:
                endpoint.vpc_id = vpc_id
            if group_ids:
                endpoint.security_group_ids = list(group_ids)
            elif vpc_id:
                default_group = references.default_security_group_id(account, region, vpc_id)
                endpoint.security_group_ids = [default_group] if default_group else []
            if endpoint.associations:
                endpoint.security_group_changes_complete_at.append(now + self.timings.security_group_seconds)
        if log_options is not None:
            endpoint.connection_log_options = log_options
        if connect is not None:
            endpoint.client_connect_options = connect
            endpoint.client_connect_applied_at = now + self.timings.client_connect_seconds
        if banner is not None:
            endpoint.client_login_banner_options = banner
        if portal is not None:
            endpoint.self_service_portal = portal

    def delete_endpoint(self, endpoint_id: str) -> ClientVpnEndpoint:
        """Start deleting an endpoint; every association must be gone first.

        AWS answers ``ClientVpnEndpointAssociationExists`` ("The endpoint that you're trying to
        delete has associations ...") while any remains (terraform-provider-aws issue #14115).
        """
        endpoint = self.get_endpoint(endpoint_id)
        if endpoint.associations:
            raise ClientVpnError(
                "ClientVpnEndpointAssociationExists",
                "The endpoint that you're trying to delete has associations "
                + ", ".join(sorted(endpoint.associations)),
            )
        if endpoint.deletion_requested_at is None:
            endpoint.deletion_requested_at = _now()
        return endpoint

    def describe_endpoints(
        self, endpoint_ids: list[str], filters: dict[str, list[str]]
    ) -> list[dict[str, Any]]:
        now = _now()
        self._purge_deleted_endpoints(now)
        for endpoint_id in endpoint_ids:
            if endpoint_id not in self.endpoints:
                raise ClientVpnEndpointNotFound(endpoint_id)
        endpoints = [e for e in self.endpoints.values() if not endpoint_ids or e.id in endpoint_ids]
        for endpoint in endpoints:
            endpoint.refresh(now)
        selected = apply_filters(
            endpoints,
            filters,
            {"endpoint-id": lambda e: [e.id], "transport-protocol": lambda e: [e.transport_protocol]},
        )
        return [endpoint.to_api(now) for endpoint in selected]

    # -- target networks -----------------------------------------------------------------------
    def associate_target_network(
        self,
        endpoint_id: str,
        subnet_id: str | None,
        decide_failure: Callable[[], str | None] | None = None,
    ) -> TargetNetworkAssociation:
        """Start associating a subnet: one VPC, one subnet per AZ, no CIDR overlap, default tenancy.

        ``decide_failure`` (the fault injector) is asked, once the request is valid, whether this
        association will end in ``association-failed``; it returns the status message or None.
        """
        endpoint, now = self._mutable_endpoint(endpoint_id)
        if not subnet_id:
            raise MissingParameter("The request must contain the parameter SubnetId")
        subnet = references.find_subnet(self.account_id, self.region_name, subnet_id)
        vpc = references.find_vpc(self.account_id, self.region_name, subnet.vpc_id)
        references.ensure_default_tenancy(vpc)
        live = [a for a in endpoint.associations.values() if a.state_at(now) != ASSOCIATION_FAILED]
        if any(a.subnet_id == subnet_id for a in live):
            raise ClientVpnError(
                "InvalidClientVpnDuplicateAssociationException",
                f"Subnet {subnet_id} is already associated with Client VPN endpoint {endpoint_id}.",
            )
        if endpoint.vpc_id and subnet.vpc_id != endpoint.vpc_id:
            # AWS: the subnet must be in the endpoint's VPC (set at creation or by the first
            # association); ModifyClientVpnEndpoint changes the VPC.
            raise InvalidParameterValue(
                f"Subnet {subnet_id} is not in VPC {endpoint.vpc_id} of Client VPN endpoint {endpoint_id}."
            )
        if any(a.availability_zone == subnet.availability_zone for a in live):
            raise ClientVpnError(
                "InvalidClientVpnSubnetId.DuplicateAz",
                f"Client VPN endpoint {endpoint_id} already has a subnet in {subnet.availability_zone}.",
            )
        subnet_ipv6 = [
            a["ipv6CidrBlock"]
            for a in subnet.ipv6_cidr_block_associations.values()
            if a.get("ipv6CidrBlockState", {}).get("state", "associated") == "associated"
        ]
        if 6 in endpoint.traffic_versions and not subnet_ipv6:
            # Clients take their IPv6 addresses from the associated subnets (no client IPv6 CIDR exists).
            raise InvalidParameterValue(
                f"Subnet {subnet_id} has no IPv6 CIDR block; Client VPN endpoint {endpoint_id} carries "
                f"{endpoint.traffic_ip_address_type} traffic and assigns client IPv6 addresses from its "
                "subnets."
            )
        if endpoint.client_cidr_block is not None:
            client_network = ipaddress.IPv4Network(endpoint.client_cidr_block)
            if ipaddress.IPv4Network(subnet.cidr_block).overlaps(client_network):
                raise ClientVpnError(
                    "InvalidClientVpnSubnetId.OverlappingCidr",
                    f"Subnet {subnet_id} overlaps the client CIDR {endpoint.client_cidr_block}.",
                )
            vpc_cidrs = [vpc.cidr_block] + [c.get("cidr_block") for c in vpc.cidr_block_association_set]
            for cidr in filter(None, vpc_cidrs):
                if ipaddress.IPv4Network(cidr).overlaps(client_network):
                    raise InvalidParameterValue(
                        f"The client CIDR {endpoint.client_cidr_block} overlaps the CIDR {cidr} of {vpc.id}."
                    )
        vpc_ipv6 = [
            c.get("ipv6CidrBlock") for c in vpc.ipv6_cidr_block_association_set if c.get("ipv6CidrBlock")
        ]
        endpoint.ensure_mutation_allowed(now)
        failure_message = decide_failure() if decide_failure else None
        association = TargetNetworkAssociation(
            id=_hex_id("cvpn-assoc-"),
            endpoint_id=endpoint_id,
            subnet_id=subnet_id,
            vpc_id=subnet.vpc_id,
            vpc_cidr=vpc.cidr_block,
            availability_zone=subnet.availability_zone,
            requested_at=now,
            completes_at=now + self.timings.association_seconds,
            failure_message=failure_message,
            vpc_ipv6_cidr=vpc_ipv6[0] if vpc_ipv6 else None,
        )
        if endpoint.vpc_id is None or not endpoint.security_group_ids:
            # The first association sets the endpoint's VPC and, when no group was given, applies
            # the VPC's default security group.
            endpoint.vpc_id = subnet.vpc_id
            default_group = references.default_security_group_id(self.account_id, self.region_name, vpc.id)
            endpoint.security_group_ids = [default_group] if default_group else []
        endpoint.associations[association.id] = association
        return association

    def disassociate_target_network(self, endpoint_id: str, association_id: str) -> TargetNetworkAssociation:
        """Start disassociating (routes through the subnet go when it completes)."""
        endpoint, now = self._mutable_endpoint(endpoint_id)
        association = endpoint.associations.get(association_id)
        if association is None:
            raise ClientVpnError(
                "InvalidClientVpnAssociationIdNotFound",
                f"Association {association_id} does not exist on Client VPN endpoint {endpoint_id}.",
            )
        if association.disassociation_completes_at is None:
            endpoint.ensure_mutation_allowed(now)
            association.disassociation_requested_at = now
            association.disassociation_completes_at = now + self.timings.disassociation_seconds
        return association

    def describe_target_networks(
        self, endpoint_id: str, association_ids: list[str], filters: dict[str, list[str]]
    ) -> list[dict[str, Any]]:
        endpoint = self.get_endpoint(endpoint_id)
        now = _now()
        associations = [
            a for a in endpoint.associations.values() if not association_ids or a.id in association_ids
        ]
        selected = apply_filters(
            associations,
            filters,
            {
                "association-id": lambda a: [a.id],
                "target-network-id": lambda a: [a.subnet_id],
                "vpc-id": lambda a: [a.vpc_id],
            },
        )
        return [target_network_to_api(endpoint, a, now) for a in selected]

    def apply_security_groups(self, endpoint_id: str, vpc_id: str | None, group_ids: list[str]) -> list[str]:
        """Replace the endpoint's security groups (VpcId required, at most 5, all in that VPC)."""
        endpoint, now = self._mutable_endpoint(endpoint_id)
        if not vpc_id:
            raise InvalidParameterValue("Security Groups cannot be modified without specifying Vpc Id")
        if not group_ids:
            raise MissingParameter("The request must contain the parameter SecurityGroupIds")
        references.validate_security_groups(self.account_id, self.region_name, vpc_id, group_ids)
        if not any(a.state_at(now) in (ASSOCIATING, ASSOCIATED) for a in endpoint.associations.values()):
            raise ClientVpnError(
                "InvalidClientVpnActiveAssociationNotFound",
                f"Client VPN endpoint {endpoint_id} has no target network association to apply groups to.",
            )
        if endpoint.vpc_id and vpc_id != endpoint.vpc_id and endpoint.associations:
            raise InvalidParameterValue(f"VPC {vpc_id} is not the VPC of Client VPN endpoint {endpoint_id}.")
        endpoint.ensure_mutation_allowed(now)
        endpoint.vpc_id = vpc_id
        endpoint.security_group_ids = list(group_ids)
        endpoint.security_group_changes_complete_at.append(now + self.timings.security_group_seconds)
        return list(group_ids)

    # -- authorization rules -------------------------------------------------------------------
    def authorize_ingress(
        self,
        endpoint_id: str,
        target_network_cidr: str,
        access_group_id: str | None,
        authorize_all_groups: bool,
        description: str | None,
    ) -> AuthorizationRule:
        endpoint, now = self._mutable_endpoint(endpoint_id)
        cidr = str(references.ip_network(target_network_cidr, "TargetNetworkCidr", endpoint.traffic_versions))
        if bool(access_group_id) == bool(authorize_all_groups):
            raise InvalidParameterValue(
                "Specify either AccessGroupId or AuthorizeAllGroups, not both or neither."
            )
        if access_group_id and len(access_group_id) > 255:
            raise InvalidParameterValue("AccessGroupId must be at most 255 characters.")
        if any(
            rule.matches(cidr, access_group_id, authorize_all_groups) for rule in endpoint.authorization_rules
        ):
            raise ClientVpnError(
                "InvalidClientVpnDuplicateAuthorizationRule",
                f"An authorization rule for {cidr} and this group already exists on {endpoint_id}.",
            )
        if len(endpoint.authorization_rules) >= self.quotas.authorization_rules_per_endpoint:
            raise ClientVpnError(
                "ClientVpnAuthorizationRuleLimitExceeded",
                f"Client VPN endpoint {endpoint_id} already has "
                f"{self.quotas.authorization_rules_per_endpoint} authorization rules.",
            )
        endpoint.ensure_mutation_allowed(now)
        rule = AuthorizationRule(
            endpoint_id=endpoint_id,
            destination_cidr=cidr,
            group_id=access_group_id,
            access_all=bool(authorize_all_groups),
            description=description,
            requested_at=now,
            active_at=now + self.timings.authorization_seconds,
        )
        endpoint.authorization_rules.append(rule)
        return rule

    def revoke_ingress(
        self, endpoint_id: str, target_network_cidr: str, access_group_id: str | None, revoke_all_groups: bool
    ) -> AuthorizationRule:
        """Remove a rule at once (the answer reports it ``revoking``)."""
        endpoint, _ = self._mutable_endpoint(endpoint_id)
        cidr = str(references.ip_network(target_network_cidr, "TargetNetworkCidr", endpoint.traffic_versions))
        for rule in endpoint.authorization_rules:
            if rule.matches(cidr, access_group_id, bool(revoke_all_groups)):
                endpoint.authorization_rules.remove(rule)
                return rule
        raise ClientVpnError(
            "InvalidClientVpnEndpointAuthorizationRuleNotFound",
            f"No authorization rule for {cidr} and this group on Client VPN endpoint {endpoint_id}.",
        )

    def describe_authorization_rules(
        self, endpoint_id: str, filters: dict[str, list[str]]
    ) -> list[dict[str, Any]]:
        endpoint = self.get_endpoint(endpoint_id)
        now = _now()
        selected = apply_filters(
            endpoint.authorization_rules,
            filters,
            {
                "description": lambda r: [r.description or ""],
                "destination-cidr": lambda r: [r.destination_cidr],
                "group-id": lambda r: [r.group_id or ""],
            },
        )
        return [rule.to_api(now) for rule in selected]

    # -- routes --------------------------------------------------------------------------------
    def create_route(
        self, endpoint_id: str, destination_cidr: str, target_subnet: str | None, description: str | None
    ) -> ClientVpnRoute:
        """Add a route through an associated subnet (``creating`` until it propagates)."""
        endpoint, now = self._mutable_endpoint(endpoint_id)
        destination = references.ip_network(
            destination_cidr, "DestinationCidrBlock", endpoint.traffic_versions
        )
        if not target_subnet:
            raise MissingParameter("The request must contain the parameter TargetVpcSubnetId")
        active = endpoint.active_associations(now)
        if not active:
            raise ClientVpnError(
                "InvalidClientVpnActiveAssociationNotFound",
                f"Client VPN endpoint {endpoint_id} has no active target network association.",
            )
        if target_subnet != "local" and all(a.subnet_id != target_subnet for a in active):
            raise ClientVpnError(
                "InvalidClientVpnActiveAssociationNotFound",
                f"Subnet {target_subnet} is not actively associated with Client VPN endpoint {endpoint_id}.",
            )
        # Routes into the client range itself are refused; wider ones (0.0.0.0/0 for internet
        # access) are the common case and allowed.
        if (
            isinstance(destination, ipaddress.IPv4Network)
            and endpoint.client_cidr_block is not None
            and destination.subnet_of(ipaddress.IPv4Network(endpoint.client_cidr_block))
        ):
            raise InvalidParameterValue(
                f"Route {destination} overlaps the client CIDR {endpoint.client_cidr_block}."
            )
        cidr = str(destination)
        if any(
            r.destination_cidr == cidr and r.target_subnet == target_subnet for r in endpoint.all_routes(now)
        ):
            raise ClientVpnError(
                "InvalidClientVpnDuplicateRoute",
                f"A route to {cidr} through {target_subnet} already exists on {endpoint_id}.",
            )
        through_subnet = [r for r in endpoint.all_routes(now) if r.target_subnet == target_subnet]
        if len(through_subnet) >= self.quotas.routes_per_associated_subnet:
            raise ClientVpnError(
                "ClientVpnRouteLimitExceeded",
                f"Subnet {target_subnet} already carries {self.quotas.routes_per_associated_subnet} routes.",
            )
        endpoint.ensure_mutation_allowed(now)
        route = ClientVpnRoute(
            endpoint_id=endpoint_id,
            destination_cidr=cidr,
            target_subnet=target_subnet,
            origin=ORIGIN_ADD_ROUTE,
            description=description,
            requested_at=now,
            active_at=now + self.timings.route_seconds,
        )
        endpoint.routes.append(route)
        return route

    def delete_route(
        self, endpoint_id: str, destination_cidr: str, target_subnet: str | None
    ) -> ClientVpnRoute:
        """Start deleting a route added by hand; automatic routes go with their association."""
        endpoint, now = self._mutable_endpoint(endpoint_id)
        cidr = str(references.ip_network(destination_cidr, "DestinationCidrBlock", endpoint.traffic_versions))
        for route in endpoint.routes:
            if route.destination_cidr == cidr and target_subnet in (None, route.target_subnet):
                if route.deletion_completes_at is None:
                    endpoint.ensure_mutation_allowed(now)
                    route.deletion_completes_at = now + self.timings.route_seconds
                return route
        if any(
            r.destination_cidr == cidr and target_subnet in (None, r.target_subnet)
            for r in endpoint.automatic_routes(now)
        ):
            raise InvalidParameterValue(
                f"The route to {cidr} was added by a target network association; "
                "disassociate the subnet instead."
            )
        raise ClientVpnError(
            "InvalidClientVpnRouteNotFound",
            f"No route to {cidr} on Client VPN endpoint {endpoint_id}.",
        )

    def describe_routes(self, endpoint_id: str, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        endpoint = self.get_endpoint(endpoint_id)
        now = _now()
        selected = apply_filters(
            endpoint.all_routes(now),
            filters,
            {
                "destination-cidr": lambda r: [r.destination_cidr],
                "target-subnet": lambda r: [r.target_subnet],
                "origin": lambda r: [r.origin],
            },
        )
        return [route.to_api(now) for route in selected]

    # -- certificate revocation list -----------------------------------------------------------
    def import_certificate_revocation_list(self, endpoint_id: str, crl_pem: str) -> None:
        from cryptography import x509

        endpoint, _ = self._mutable_endpoint(endpoint_id)
        if not crl_pem:
            raise MissingParameter("The request must contain the parameter CertificateRevocationList")
        try:
            crl = x509.load_pem_x509_crl(crl_pem.encode())
        except ValueError as error:
            raise InvalidParameterValue("The certificate revocation list is not a valid PEM CRL.") from error
        if len(list(crl)) > self.quotas.certificate_revocation_list_entries:
            raise ClientVpnError(
                "ClientVpnCertificateRevocationListLimitExceeded",
                f"A certificate revocation list can hold at most "
                f"{self.quotas.certificate_revocation_list_entries} entries.",
            )
        endpoint.certificate_revocation_list = crl_pem
        endpoint.terminate_all_connections()  # AWS: uploading a revocation list resets connections

    def export_certificate_revocation_list(self, endpoint_id: str) -> dict[str, Any]:
        endpoint = self.get_endpoint(endpoint_id)
        if endpoint.certificate_revocation_list is None:
            return {"CertificateRevocationList": "", "Status": {"Code": "pending"}}
        return {
            "CertificateRevocationList": endpoint.certificate_revocation_list,
            "Status": {"Code": "active"},
        }

    # -- connections ---------------------------------------------------------------------------
    def describe_connections(self, endpoint_id: str, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Connections the simulator put in ``endpoint.connections`` (objects with ``to_api()``)."""
        endpoint = self.get_endpoint(endpoint_id)
        selected = apply_filters(
            list(endpoint.connections.values()),
            filters,
            {"connection-id": lambda c: [c.connection_id], "username": lambda c: [c.username or ""]},
        )
        return [connection.to_api() for connection in selected]

    def terminate_connections(
        self, endpoint_id: str, connection_id: str | None, username: str | None
    ) -> list[dict[str, Any]]:
        """Terminate one connection, or every active connection of a user.

        Calls ``.terminate(now)`` on the simulator's connection objects, which answer
        ``{"ConnectionId", "PreviousStatus", "CurrentStatus"}``.
        """
        endpoint = self.get_endpoint(endpoint_id)
        if not connection_id and not username:
            raise MissingParameter("Specify either ConnectionId or Username.")
        if connection_id:
            connection = endpoint.connections.get(connection_id)
            if connection is None:
                raise ClientVpnError(
                    "InvalidClientVpnConnection.IdNotFound",
                    f"Connection {connection_id} does not exist on Client VPN endpoint {endpoint_id}.",
                )
            targets = [connection]
        else:
            targets = [c for c in endpoint.connections.values() if c.username == username]
            if not targets:
                raise ClientVpnError(
                    "InvalidClientVpnConnection.UserNotFound",
                    f"User {username} has no connection on Client VPN endpoint {endpoint_id}.",
                )
            targets = [c for c in targets if c.status == ACTIVE]
        clock_now = get_clock().now()
        return [connection.terminate(clock_now) for connection in targets]

    # -- validation helpers needing this account -----------------------------------------------
    def _validate_authentication(self, options: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not 1 <= len(options) <= 2:
            raise InvalidParameterValue("AuthenticationOptions must have one or two entries.")
        types = [o.get("Type") for o in options]
        if len(options) == 2 and (CERTIFICATE_AUTHENTICATION not in types or len(set(types)) != 2):
            raise InvalidParameterValue(
                "Two authentication options must be mutual (certificate) authentication "
                "plus one user-based method."
            )
        account, region = self.account_id, self.region_name
        for option in options:
            kind = option.get("Type")
            if kind == CERTIFICATE_AUTHENTICATION:
                arn = (option.get("MutualAuthentication") or {}).get("ClientRootCertificateChainArn")
                references.find_certificate(account, region, arn or "", "Client root")
            elif kind == DIRECTORY_AUTHENTICATION:
                references.validate_directory(
                    account, region, (option.get("ActiveDirectory") or {}).get("DirectoryId")
                )
            elif kind == FEDERATED_AUTHENTICATION:
                federated = option.get("FederatedAuthentication") or {}
                references.validate_saml_provider(
                    account, federated.get("SAMLProviderArn"), "SAMLProviderArn"
                )
                if federated.get("SelfServiceSAMLProviderArn"):
                    references.validate_saml_provider(
                        account, federated["SelfServiceSAMLProviderArn"], "SelfServiceSAMLProviderArn"
                    )
            else:
                raise InvalidParameterValue(f"Invalid authentication type {kind}.")
        return [dict(option) for option in options]

    def _validate_log_options(
        self, options: dict[str, Any] | None, endpoint_id: str, now: float
    ) -> dict[str, Any]:
        if options is None or "Enabled" not in options:
            raise MissingParameter("ConnectionLogOptions.Enabled is required.")
        if not options["Enabled"]:
            return {"Enabled": False}
        default_stream = (
            f"{endpoint_id}-{self.region_name}-{datetime.fromtimestamp(now, tz=UTC):%Y/%m/%d}-"
            f"{secrets.token_urlsafe(9)}"
        )
        stream = references.ensure_log_destination(
            self.account_id,
            self.region_name,
            options.get("CloudwatchLogGroup"),
            options.get("CloudwatchLogStream"),
            default_stream,
        )
        answer = {
            "Enabled": True,
            "CloudwatchLogGroup": options["CloudwatchLogGroup"],
            "CloudwatchLogStream": stream,
        }
        if options.get("IncludeAuthorizationPolicyContext") is not None:
            answer["IncludeAuthorizationPolicyContext"] = bool(options["IncludeAuthorizationPolicyContext"])
        return answer

    def _validate_client_connect(self, options: dict[str, Any] | None) -> dict[str, Any]:
        if not options or not options.get("Enabled"):
            return {"Enabled": False}
        arn = options.get("LambdaFunctionArn")
        references.validate_client_connect_function(self.account_id, self.region_name, arn)
        return {"Enabled": True, "LambdaFunctionArn": arn}


def _validate_client_cidr(cidr: str | None) -> ipaddress.IPv4Network:
    if not cidr:
        raise MissingParameter("The request must contain the parameter ClientCidrBlock")
    network = references.ipv4_network(cidr, "ClientCidrBlock")
    if not 12 <= network.prefixlen <= 22:
        raise InvalidParameterValue(
            f"Value ({cidr}) for parameter ClientCidrBlock is invalid. The CIDR must be between /12 and /22."
        )
    return network


def _validate_dns_servers(servers: list[str], versions: frozenset[int] = frozenset({4})) -> list[str]:
    if len(servers) > 2:
        raise InvalidParameterValue("A Client VPN endpoint can have at most 2 DNS servers.")
    for server in servers:
        try:
            address = ipaddress.ip_address(server)
        except ValueError as error:
            raise InvalidParameterValue(f"Invalid DNS server address {server}.") from error
        if address.version not in versions:
            raise InvalidParameterValue(
                f"Invalid DNS server address {server}: "
                f"the endpoint's traffic does not carry IPv{address.version}."
            )
    return list(servers)


def _validate_ip_address_type(value: str | None, parameter: str) -> str:
    kind = value or "ipv4"
    if kind not in IP_ADDRESS_TYPES:
        raise InvalidParameterValue(
            f"Value ({kind}) for parameter {parameter} is invalid. Valid values: ipv4, ipv6, dual-stack."
        )
    return kind


def _refuse_unimplemented(request: dict[str, Any]) -> None:
    """Options the local cloud does not emulate are refused by name, never silently dropped."""
    if request.get("TransitGatewayConfiguration") is not None:
        raise UnsupportedOperation("TransitGatewayConfiguration (Client VPN endpoints on a transit gateway)")
    if request.get("DevicePostureOptions") is not None:
        raise UnsupportedOperation("DevicePostureOptions (device trust providers)")


def _validate_vpn_port(port: Any) -> int:
    value = 443 if port is None else int(port)
    if value not in VPN_PORTS:
        raise InvalidParameterValue(f"Invalid VpnPort {value}; supported ports are 443 and 1194.")
    return value


def _validate_session_timeout(hours: Any) -> int:
    value = 24 if hours is None else int(hours)
    if value not in SESSION_TIMEOUT_HOURS:
        raise InvalidParameterValue(
            f"Invalid SessionTimeoutHours {value}; valid values are 8, 10, 12 and 24."
        )
    return value


def _validate_portal(value: str | None) -> str:
    portal = value or "enabled"
    if portal not in ("enabled", "disabled"):
        raise InvalidParameterValue(f"Invalid SelfServicePortal {portal}.")
    return portal


def _validate_banner(options: dict[str, Any] | None) -> dict[str, Any]:
    if not options or not options.get("Enabled"):
        return {"Enabled": False}
    text = options.get("BannerText") or ""
    if len(text) > MAX_BANNER_CHARACTERS:
        raise InvalidParameterValue(f"BannerText must be at most {MAX_BANNER_CHARACTERS} characters.")
    return {"Enabled": True, "BannerText": text}


def _tags_from_specifications(specifications: list[dict[str, Any]]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for specification in specifications:
        if specification.get("ResourceType") not in (None, "client-vpn-endpoint"):
            raise InvalidParameterValue(
                f"'{specification.get('ResourceType')}' is not a valid taggable resource type "
                "for this operation."
            )
        for tag in specification.get("Tags") or []:
            tags[tag["Key"]] = tag.get("Value", "")
    return tags


clientvpn_backends: BackendDict[ClientVpnBackend] = BackendDict(ClientVpnBackend, "ec2")
