"""Checks across a request's rules and routes and the VPC's paths out: errors and surprises.

Pure: the facts come from ``AwsInventory.network_facts`` (Describe calls), nothing is called here.
Pre-flight (create) and the planner (update) both run these checks.

Severity follows AWS: an **error** where the Client VPN API would refuse the call the workflow makes,
a **warning** where AWS accepts it and the endpoint works, but not as its author probably expects:

- two routes to the same destination: the workflow creates every route through every associated
  subnet, so the second CreateClientVpnRoute fails with ``InvalidClientVpnDuplicateRoute`` (error);
- two authorization rules for the same network and grantee: ``InvalidClientVpnDuplicateAuthorizationRule``
  (error);
- a route no authorization rule covers: AWS creates it, but Client VPN drops traffic to a destination
  without a rule, so the route carries nothing (warning; a partly covered route is named too);
- split tunnel with a default route: AWS pushes the default route to the clients, so every
  destination goes through the tunnel and split tunnel changes nothing (warning);
- a default route through a subnet whose route table has no path to the internet (no route to an
  attached internet gateway or an available public NAT gateway; blackhole routes do not count):
  AWS creates the route, users reach no internet address (warning). A default route to a transit
  gateway, peering connection, network interface or virtual private gateway may reach the
  internet elsewhere and is not flagged;
- two group rules where one network holds the other: Client VPN authorizes by longest prefix match,
  so for the longer prefix only the grantees of the longest matching rules are allowed and the
  broader rule's grantees silently lose that network (warning);
- no security group of the endpoint's own: AWS applies the VPC's default security group, which
  other resources share and whose rules are changed for them (warning).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from cvpn_shared.provisioning.dal.inventory import NetworkFacts
from cvpn_shared.provisioning.models.plan import PlanFinding
from cvpn_shared.provisioning.models.request import AuthorizationRule, ProvisionRequest

__all__ = ["check_rules_and_routes"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_IPV4_DEFAULT = ipaddress.IPv4Network("0.0.0.0/0")
_IPV6_DEFAULT = ipaddress.IPv6Network("::/0")
_EVERYONE = "every authenticated user"


def check_rules_and_routes(request: ProvisionRequest, facts: NetworkFacts | None) -> list[PlanFinding]:
    """Every finding for ``request``, errors first; ``facts`` None skips the checks that need them."""
    findings = [
        *_duplicate_routes(request),
        *_duplicate_rules(request),
        *_uncovered_routes(request),
        *_split_tunnel_default_route(request),
        *_shadowed_group_rules(request),
    ]
    if facts is not None:
        findings += _default_route_without_internet(request, facts)
        findings += _no_security_group_of_its_own(request, facts)
    return sorted(findings, key=lambda finding: finding.severity != "error")


def _error(field: str, message: str) -> PlanFinding:
    return PlanFinding(severity="error", field=field, message=message)


def _warning(field: str, message: str) -> PlanFinding:
    return PlanFinding(severity="warning", field=field, message=message)


def _duplicate_routes(request: ProvisionRequest) -> Iterable[PlanFinding]:
    first: dict[Network, int] = {}
    for index, route in enumerate(request.routes):
        destination = route.destination_cidr
        if destination in first:
            yield _error(
                f"routes[{index}].destination_cidr",
                f"{destination} is also routes[{first[destination]}]; AWS refuses a second route to the "
                "same destination through a subnet (InvalidClientVpnDuplicateRoute): remove one",
            )
        else:
            first[destination] = index


def _grantee(rule: AuthorizationRule) -> str | None:
    """The group a rule grants, None for every authenticated user."""
    return None if rule.authorize_all_groups else rule.access_group_id


def _describe_grantee(grantee: str | None) -> str:
    return _EVERYONE if grantee is None else f"group {grantee}"


def _duplicate_rules(request: ProvisionRequest) -> Iterable[PlanFinding]:
    first: dict[tuple[Network, str | None], int] = {}
    for index, rule in enumerate(request.authorization_rules):
        key = (rule.target_network_cidr, _grantee(rule))
        if key in first:
            yield _error(
                f"authorization_rules[{index}]",
                f"same network ({rule.target_network_cidr}) and grantee as "
                f"authorization_rules[{first[key]}]; AWS refuses it "
                "(InvalidClientVpnDuplicateAuthorizationRule): remove one",
            )
        else:
            first[key] = index


def _contains(outer: Network, inner: Network) -> bool:
    return outer.version == inner.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _uncovered_routes(request: ProvisionRequest) -> Iterable[PlanFinding]:
    networks = [rule.target_network_cidr for rule in request.authorization_rules]
    for index, route in enumerate(request.routes):
        destination = route.destination_cidr
        if any(_contains(network, destination) for network in networks):
            continue
        inside = sorted(str(n) for n in networks if n != destination and _contains(destination, n))
        if inside:
            yield _warning(
                f"routes[{index}].destination_cidr",
                f"only part of {destination} is authorized ({', '.join(inside)}); Client VPN drops traffic "
                "to the rest. Authorize the whole destination or narrow the route",
            )
        else:
            yield _warning(
                f"routes[{index}].destination_cidr",
                f"no authorization rule covers {destination}: AWS creates the route but Client VPN drops "
                "traffic to a destination without a rule. Add a rule for it (or for "
                f"{_IPV4_DEFAULT if destination.version == 4 else _IPV6_DEFAULT}) or remove the route",
            )


def _split_tunnel_default_route(request: ProvisionRequest) -> Iterable[PlanFinding]:
    if not request.split_tunnel:
        return
    for index, route in enumerate(request.routes):
        if route.destination_cidr.prefixlen == 0:
            yield _warning(
                f"routes[{index}].destination_cidr",
                f"split_tunnel is true but {route.destination_cidr} is routed: AWS pushes it to the "
                "clients, so every destination goes through the VPN as with a full tunnel. Remove the "
                "route or set split_tunnel to false",
            )


def _internet_path(facts: NetworkFacts, table_id: str, version: int) -> bool:
    """Whether the table's default route of this family leads to the internet (or may)."""
    default = _IPV4_DEFAULT if version == 4 else _IPV6_DEFAULT
    for route in facts.route_tables.get(table_id, ()):
        if ipaddress.ip_network(route.destination, strict=False) != default or route.state != "active":
            continue
        target = route.target
        if target.startswith("igw-"):
            if target in facts.internet_gateway_ids:
                return True
        elif target.startswith("eigw-"):
            if version == 6 and target in facts.egress_only_internet_gateway_ids:
                return True
        elif target.startswith("nat-"):
            nat = facts.nat_gateways.get(target)
            if nat is not None and nat.state == "available" and nat.connectivity_type == "public":
                return True
        elif target != "local":
            return True  # a transit gateway, appliance, peering or VPN gateway may lead out elsewhere
    return False


def _default_route_without_internet(request: ProvisionRequest, facts: NetworkFacts) -> Iterable[PlanFinding]:
    for index, route in enumerate(request.routes):
        if route.destination_cidr.prefixlen != 0:
            continue
        for subnet_index, subnet_id in enumerate(request.subnet_ids):
            table_id = facts.subnet_route_tables.get(subnet_id)
            if table_id is None or _internet_path(facts, table_id, route.destination_cidr.version):
                continue
            gateway = (
                "internet or public NAT gateway"
                if route.destination_cidr.version == 4
                else ("internet or egress-only internet gateway")
            )
            yield _warning(
                f"routes[{index}].destination_cidr",
                f"{route.destination_cidr} goes through subnet_ids[{subnet_index}] ({subnet_id}), whose "
                f"route table {table_id} has no active {route.destination_cidr} route to an {gateway}: "
                "clients placed in that subnet reach no internet address. Add the route to the table "
                "or associate a subnet that has one",
            )


def _rules_by_network(request: ProvisionRequest) -> dict[Network, set[str | None]]:
    grants: dict[Network, set[str | None]] = {}
    for rule in request.authorization_rules:
        grants.setdefault(rule.target_network_cidr, set()).add(_grantee(rule))
    return grants


def _shadowed_group_rules(request: ProvisionRequest) -> Iterable[PlanFinding]:
    grants = _rules_by_network(request)
    first_index: dict[Network, int] = {}
    for index, rule in enumerate(request.authorization_rules):
        first_index.setdefault(rule.target_network_cidr, index)
    for narrow, narrow_grantees in grants.items():
        if None in narrow_grantees:
            continue  # every authenticated user keeps the narrower network
        lost: dict[str | None, Network] = {}
        for broad, broad_grantees in grants.items():
            if broad == narrow or not _contains(broad, narrow):
                continue
            for grantee in broad_grantees - narrow_grantees:
                # The broad rule nearest the narrow network is the one its grantee counted on.
                if grantee not in lost or broad.prefixlen > lost[grantee].prefixlen:
                    lost[grantee] = broad
        granted = ", ".join(sorted(_describe_grantee(grantee) for grantee in narrow_grantees))
        for grantee, broad in sorted(lost.items(), key=lambda item: str(item[0])):
            yield _warning(
                f"authorization_rules[{first_index[narrow]}].target_network_cidr",
                f"{narrow} is authorized for {granted} only; Client VPN authorizes by longest prefix, "
                f"so {_describe_grantee(grantee)} "
                f"(authorization_rules[{first_index[broad]}], {broad}) loses {narrow}. Add a rule for "
                f"{narrow} and {_describe_grantee(grantee)} if it should keep it",
            )


def _no_security_group_of_its_own(request: ProvisionRequest, facts: NetworkFacts) -> Iterable[PlanFinding]:
    default = facts.default_security_group_id
    if not request.security_group_ids:
        named = f" ({default})" if default else ""
        yield _warning(
            "security_group_ids",
            f"none given: AWS applies the default security group of {request.vpc_id}{named}, which other "
            "resources share and whose rules change for them too. Give the endpoint a group of its own",
        )
        return
    for index, group_id in enumerate(request.security_group_ids):
        if group_id == default:
            yield _warning(
                f"security_group_ids[{index}]",
                f"{group_id} is the default security group of {request.vpc_id}, shared with other "
                "resources. Give the endpoint a group of its own",
            )
