"""Pre-flight validation: every rule that must hold before anything is created.

The rules come from the Client VPN API (``shared/specs/clientvpn-api.md``): the client CIDR must not
overlap the VPC's CIDRs nor any route added by hand; subnets in the request's VPC, at most one per
Availability Zone; no dedicated-tenancy VPC; at most five security groups, all in that VPC; the
server certificate, client root chain, directory and SAML providers exist; the regional endpoint
quota leaves room. All problems are collected and reported together.

The checks across rules and routes (``cvpn_shared.provisioning.consistency``) run here too: their
errors are problems like any other, their warnings are reported without failing the request.

A ``0.0.0.0/0`` route is not an overlap: AWS allows the default route through the VPN although it
contains every address (it is the common full-tunnel setup).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Protocol

from cvpn_shared.provisioning.consistency import check_rules_and_routes
from cvpn_shared.provisioning.dal.inventory import NetworkFacts, SubnetInfo, VpcInfo
from cvpn_shared.provisioning.models.request import ProvisionRequest
from cvpn_shared.provisioning.tags import REQUEST_ID_TAG

__all__ = ["Inventory", "PreflightReport", "run_preflight"]


class Inventory(Protocol):
    def vpc(self, vpc_id: str) -> VpcInfo | None: ...
    def subnets(self, subnet_ids: list[str]) -> dict[str, SubnetInfo]: ...
    def security_groups(self, group_ids: list[str]) -> dict[str, str]: ...
    def certificate_status(self, certificate_arn: str) -> str | None: ...
    def directory_stage(self, directory_id: str) -> str | None: ...
    def saml_provider_exists(self, provider_arn: str) -> bool: ...
    def client_vpn_endpoints(self) -> list[dict]: ...  # type: ignore[type-arg]
    def network_facts(self, vpc_id: str, subnet_ids: list[str]) -> NetworkFacts | None: ...


@dataclass
class PreflightReport:
    problems: list[str] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)  # [{field, message}]
    availability_zones: dict[str, str] = field(default_factory=dict)
    existing_endpoint_id: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _tag(endpoint: dict, key: str) -> str | None:  # type: ignore[type-arg]
    for tag in endpoint.get("Tags", []):
        if tag.get("Key") == key:
            return str(tag.get("Value"))
    return None


def run_preflight(
    request: ProvisionRequest,
    inventory: Inventory,
    *,
    endpoint_quota: int = 5,
    client_connect_available: bool = False,
) -> PreflightReport:
    """Check ``request`` against what exists; the report lists every problem found."""
    report = PreflightReport()
    problems = report.problems
    if request.client_connect_handler and not client_connect_available:
        problems.append(
            "client_connect_handler: this deployment has no client-connect handler configured "
            "(CLIENT_CONNECT_FUNCTION_ARN is empty); set it to false or deploy the monitoring stack"
        )
    client_cidr = request.client_cidr_block

    vpc = inventory.vpc(request.vpc_id)
    if vpc is None:
        problems.append(f"vpc_id: {request.vpc_id} does not exist")
    else:
        if vpc.tenancy == "dedicated":
            problems.append(
                f"vpc_id: {request.vpc_id} has dedicated tenancy, which Client VPN does not support"
            )
        for cidr in vpc.cidr_blocks:
            if client_cidr is not None and _overlap(client_cidr, cidr):
                problems.append(f"client_cidr_block: {client_cidr} overlaps the VPC CIDR {cidr}")

    for index, route in enumerate(request.routes):
        if (
            client_cidr is not None
            and route.destination_cidr.prefixlen
            and _overlap(client_cidr, route.destination_cidr)
        ):
            problems.append(
                f"routes[{index}].destination_cidr: {route.destination_cidr} "
                f"overlaps the client CIDR {client_cidr}"
            )

    subnets = inventory.subnets(list(request.subnet_ids))
    zones: dict[str, str] = {}
    for index, subnet_id in enumerate(request.subnet_ids):
        subnet = subnets.get(subnet_id)
        if subnet is None:
            problems.append(f"subnet_ids[{index}]: {subnet_id} does not exist")
            continue
        if subnet.vpc_id != request.vpc_id:
            problems.append(
                f"subnet_ids[{index}]: {subnet_id} is in {subnet.vpc_id}, not in {request.vpc_id}"
            )
        if subnet.availability_zone in zones:
            problems.append(
                f"subnet_ids[{index}]: {subnet_id} is in {subnet.availability_zone} like "
                f"{zones[subnet.availability_zone]}; use one subnet per Availability Zone"
            )
        else:
            zones[subnet.availability_zone] = subnet_id
        if client_cidr is not None and _overlap(client_cidr, subnet.cidr_block):
            problems.append(
                f"subnet_ids[{index}]: {subnet_id} ({subnet.cidr_block}) overlaps the client CIDR"
            )
    report.availability_zones = {subnet_id: zone for zone, subnet_id in zones.items()}

    groups = inventory.security_groups(list(request.security_group_ids))
    for index, group_id in enumerate(request.security_group_ids):
        if group_id not in groups:
            problems.append(f"security_group_ids[{index}]: {group_id} does not exist")
        elif groups[group_id] != request.vpc_id:
            problems.append(
                f"security_group_ids[{index}]: {group_id} is in {groups[group_id]}, not in {request.vpc_id}"
            )

    _check_certificate(problems, "server_certificate_arn", request.server_certificate_arn, inventory)
    for index, method in enumerate(request.authentication):
        where = f"authentication[{index}]"
        if method.type == "mutual-tls":
            _check_certificate(
                problems,
                f"{where}.client_root_certificate_chain_arn",
                method.client_root_certificate_chain_arn,
                inventory,
            )
        elif method.type == "active-directory":
            stage = inventory.directory_stage(method.directory_id)
            if stage is None:
                problems.append(f"{where}.directory_id: {method.directory_id} does not exist")
            elif stage not in ("Active", "Created", "Requested", "Creating"):
                problems.append(f"{where}.directory_id: {method.directory_id} is {stage}, not Active")
        else:
            for name in ("saml_provider_arn", "self_service_saml_provider_arn"):
                arn = getattr(method, name)
                if arn and not inventory.saml_provider_exists(arn):
                    problems.append(f"{where}.{name}: {arn} does not exist")

    facts = inventory.network_facts(request.vpc_id, list(request.subnet_ids)) if vpc is not None else None
    for finding in check_rules_and_routes(request, facts):
        if finding.severity == "error":
            problems.append(f"{finding.field}: {finding.message}")
        else:
            report.warnings.append({"field": finding.field, "message": finding.message})

    endpoints = [e for e in inventory.client_vpn_endpoints() if e.get("Status", {}).get("Code") != "deleted"]
    for endpoint in endpoints:
        if endpoint.get("Status", {}).get("Code") == "deleting":
            continue  # e.g. a rolled-back attempt: a re-run creates a new endpoint
        if _tag(endpoint, REQUEST_ID_TAG) == request.request_id:
            report.existing_endpoint_id = endpoint["ClientVpnEndpointId"]
    if report.existing_endpoint_id is None and len(endpoints) >= endpoint_quota:
        problems.append(
            f"quota: {len(endpoints)} Client VPN endpoints already exist in the region "
            f"(quota {endpoint_quota}); "
            "ask AWS for an increase or decommission one"
        )
    return report


def _overlap(
    client_cidr: ipaddress.IPv4Network, other: str | ipaddress.IPv4Network | ipaddress.IPv6Network
) -> bool:
    """Whether ``other`` shares addresses with the client CIDR (an IPv6 network never does)."""
    network = ipaddress.ip_network(other) if isinstance(other, str) else other
    return isinstance(network, ipaddress.IPv4Network) and client_cidr.overlaps(network)


def _check_certificate(problems: list[str], field_name: str, arn: str, inventory: Inventory) -> None:
    status = inventory.certificate_status(arn)
    if status is None:
        problems.append(f"{field_name}: {arn} does not exist in ACM")
    elif status != "ISSUED":
        problems.append(f"{field_name}: {arn} is {status}, not ISSUED")
