"""Checks across rules and routes: each fires with its severity and field, and stays quiet otherwise."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cvpn_shared.provisioning.consistency import check_rules_and_routes
from cvpn_shared.provisioning.dal.inventory import NatGatewayInfo, NetworkFacts, RouteTableRoute
from cvpn_shared.provisioning.models.plan import PlanFinding
from cvpn_shared.provisioning.models.request import ProvisionRequest
from tests.fixtures import REPO_ROOT

VPC = "vpc-0a1b2c3d4e5f60718"
SUBNET_A = "subnet-0a1b2c3d4e5f60001"
SUBNET_B = "subnet-0a1b2c3d4e5f60002"
OWN_GROUP = "sg-0a1b2c3d4e5f60718"
DEFAULT_GROUP = "sg-0000000000000d3fa"
ENGINEERING = "S-1-5-21-1004336348-1177238915-682003330-512"
FINANCE = "S-1-5-21-1004336348-1177238915-682003330-513"


def request(**changes: Any) -> ProvisionRequest:
    """The seed request: full tunnel, Engineering to 0.0.0.0/0, a default and an on-premises route."""
    seed = json.loads((REPO_ROOT / "events" / "requests" / "seed-active-directory.json").read_text())
    return ProvisionRequest.model_validate(seed | changes)


def rule(cidr: str, group: str | None = None) -> dict[str, Any]:
    return {
        "target_network_cidr": cidr,
        **({"access_group_id": group} if group else {"authorize_all_groups": True}),
    }


def facts(
    routes_a: tuple[RouteTableRoute, ...] = (
        RouteTableRoute("0.0.0.0/0", "nat-0a1b2c3d4e5f60001", "active"),
    ),
    routes_main: tuple[RouteTableRoute, ...] = (RouteTableRoute("0.0.0.0/0", "igw-0a1b2c3d", "active"),),
    nat: NatGatewayInfo | None = None,
) -> NetworkFacts:
    """Subnet A has its own table (through a public NAT gateway); subnet B uses the main table (IGW)."""
    return NetworkFacts(
        vpc_id=VPC,
        subnet_route_tables={SUBNET_A: "rtb-a", SUBNET_B: "rtb-main"},
        route_tables={
            "rtb-a": (RouteTableRoute("10.0.0.0/16", "local", "active"), *routes_a),
            "rtb-main": (RouteTableRoute("10.0.0.0/16", "local", "active"), *routes_main),
        },
        internet_gateway_ids=frozenset({"igw-0a1b2c3d"}),
        egress_only_internet_gateway_ids=frozenset({"eigw-0a1b2c3d4e5f60001"}),
        nat_gateways={
            "nat-0a1b2c3d4e5f60001": nat
            or NatGatewayInfo("nat-0a1b2c3d4e5f60001", state="available", connectivity_type="public")
        },
        default_security_group_id=DEFAULT_GROUP,
    )


def by_field(findings: list[PlanFinding]) -> dict[str, PlanFinding]:
    return {finding.field: finding for finding in findings}


def test_the_seed_request_in_a_working_vpc_has_no_finding() -> None:
    assert check_rules_and_routes(request(), facts()) == []


def test_without_facts_only_the_document_checks_run() -> None:
    assert check_rules_and_routes(request(security_group_ids=[]), None) == []


# -- routes no rule covers ---------------------------------------------------------------------------
def test_a_route_no_rule_covers_is_a_warning() -> None:
    findings = check_rules_and_routes(
        request(
            authorization_rules=[rule("10.0.0.0/16", ENGINEERING)],
            routes=[{"destination_cidr": "10.200.0.0/24"}],
        ),
        facts(),
    )
    assert [(f.severity, f.field) for f in findings] == [("warning", "routes[0].destination_cidr")]
    assert "no authorization rule covers 10.200.0.0/24" in findings[0].message
    assert "drops traffic" in findings[0].message


def test_a_partly_covered_route_names_the_covered_part() -> None:
    findings = by_field(
        check_rules_and_routes(
            request(
                authorization_rules=[rule("10.200.0.0/25", ENGINEERING)],
                routes=[{"destination_cidr": "10.200.0.0/24"}],
            ),
            facts(),
        )
    )
    assert findings["routes[0].destination_cidr"].severity == "warning"
    assert (
        "only part of 10.200.0.0/24 is authorized (10.200.0.0/25)"
        in findings["routes[0].destination_cidr"].message
    )


def test_authorizing_everything_covers_every_route() -> None:
    findings = check_rules_and_routes(
        request(authorization_rules=[rule("0.0.0.0/0")], routes=[{"destination_cidr": "192.168.7.0/24"}]),
        facts(),
    )
    assert findings == []


# -- split tunnel with a default route ----------------------------------------------------------------
def test_split_tunnel_with_a_default_route_is_a_warning() -> None:
    findings = by_field(check_rules_and_routes(request(split_tunnel=True), facts()))
    assert findings["routes[0].destination_cidr"].severity == "warning"
    assert "split_tunnel is true but 0.0.0.0/0 is routed" in findings["routes[0].destination_cidr"].message
    assert "routes[1].destination_cidr" not in findings


def test_split_tunnel_without_a_default_route_is_quiet() -> None:
    assert (
        check_rules_and_routes(
            request(split_tunnel=True, routes=[{"destination_cidr": "10.200.0.0/24"}]), facts()
        )
        == []
    )


# -- default route without a way out ---------------------------------------------------------------------
def test_a_default_route_through_a_subnet_without_internet_path_is_a_warning() -> None:
    findings = check_rules_and_routes(request(), facts(routes_a=()))
    assert [(f.severity, f.field) for f in findings] == [("warning", "routes[0].destination_cidr")]
    assert f"subnet_ids[0] ({SUBNET_A})" in findings[0].message and "rtb-a" in findings[0].message


@pytest.mark.parametrize(
    ("routes_a", "nat"),
    [
        ((RouteTableRoute("0.0.0.0/0", "nat-0a1b2c3d4e5f60001", "blackhole"),), None),
        (
            (RouteTableRoute("0.0.0.0/0", "nat-0a1b2c3d4e5f60001", "active"),),
            NatGatewayInfo("nat-0a1b2c3d4e5f60001", "available", "private"),
        ),
        (
            (RouteTableRoute("0.0.0.0/0", "nat-0a1b2c3d4e5f60001", "active"),),
            NatGatewayInfo("nat-0a1b2c3d4e5f60001", "deleted", "public"),
        ),
        ((RouteTableRoute("0.0.0.0/0", "igw-99999999", "active"),), None),  # not attached to this VPC
        ((RouteTableRoute("10.200.0.0/24", "igw-0a1b2c3d", "active"),), None),  # not a default route
    ],
)
def test_paths_that_do_not_reach_the_internet(
    routes_a: tuple[RouteTableRoute, ...], nat: NatGatewayInfo | None
) -> None:
    findings = check_rules_and_routes(request(), facts(routes_a=routes_a, nat=nat))
    assert [f.field for f in findings] == ["routes[0].destination_cidr"]


def test_a_transit_gateway_default_route_is_not_flagged() -> None:
    routes = (RouteTableRoute("0.0.0.0/0", "tgw-0a1b2c3d4e5f60001", "active"),)
    assert check_rules_and_routes(request(), facts(routes_a=routes)) == []


def test_the_main_table_applies_to_a_subnet_without_its_own() -> None:
    findings = check_rules_and_routes(request(), facts(routes_main=()))
    assert (
        len(findings) == 1
        and f"subnet_ids[1] ({SUBNET_B})" in findings[0].message
        and "rtb-main" in findings[0].message
    )


# -- longest-prefix authorization ---------------------------------------------------------------------
def test_a_longer_prefix_for_another_group_takes_the_network_away() -> None:
    findings = check_rules_and_routes(
        request(
            authorization_rules=[rule("10.0.0.0/16", ENGINEERING), rule("10.0.5.0/24", FINANCE)],
            routes=[],
        ),
        facts(),
    )
    assert [(f.severity, f.field) for f in findings] == [
        ("warning", "authorization_rules[1].target_network_cidr")
    ]
    message = findings[0].message
    assert f"group {ENGINEERING} (authorization_rules[0], 10.0.0.0/16) loses 10.0.5.0/24" in message
    assert "longest prefix" in message


def test_a_longer_prefix_for_one_group_takes_it_from_everyone_else() -> None:
    findings = check_rules_and_routes(
        request(authorization_rules=[rule("10.0.0.0/16"), rule("10.0.5.0/24", FINANCE)], routes=[]), facts()
    )
    assert len(findings) == 1 and "every authenticated user" in findings[0].message


@pytest.mark.parametrize(
    "rules",
    [
        [rule("10.0.0.0/16", ENGINEERING), rule("10.0.5.0/24", FINANCE), rule("10.0.5.0/24", ENGINEERING)],
        [rule("10.0.0.0/16", ENGINEERING), rule("10.0.5.0/24")],  # every user keeps it
        [rule("10.0.0.0/16", ENGINEERING), rule("10.0.5.0/24", ENGINEERING)],
        [rule("10.0.0.0/16", ENGINEERING), rule("10.1.0.0/24", FINANCE)],  # disjoint
    ],
)
def test_nested_rules_that_take_nothing_away_are_quiet(rules: list[dict[str, Any]]) -> None:
    assert check_rules_and_routes(request(authorization_rules=rules, routes=[]), facts()) == []


# -- security groups --------------------------------------------------------------------------------
def test_no_security_group_of_its_own_is_a_warning_naming_the_default_group() -> None:
    findings = check_rules_and_routes(request(security_group_ids=[]), facts())
    assert [(f.severity, f.field) for f in findings] == [("warning", "security_group_ids")]
    assert DEFAULT_GROUP in findings[0].message


def test_listing_the_default_group_is_a_warning_too() -> None:
    findings = check_rules_and_routes(request(security_group_ids=[OWN_GROUP, DEFAULT_GROUP]), facts())
    assert [f.field for f in findings] == ["security_group_ids[1]"]


# -- errors where AWS would refuse ------------------------------------------------------------------
def test_a_second_route_to_the_same_destination_is_an_error() -> None:
    routes = [
        {"destination_cidr": "10.200.0.0/24"},
        {"destination_cidr": "10.200.0.0/24", "description": "again"},
    ]
    findings = check_rules_and_routes(request(routes=routes), facts())
    assert [(f.severity, f.field) for f in findings] == [("error", "routes[1].destination_cidr")]
    assert "InvalidClientVpnDuplicateRoute" in findings[0].message


def test_a_second_rule_for_the_same_network_and_group_is_an_error_listed_before_warnings() -> None:
    rules = [rule("10.0.0.0/16", ENGINEERING), rule("10.0.0.0/16", ENGINEERING), rule("0.0.0.0/0")]
    findings = check_rules_and_routes(request(authorization_rules=rules, security_group_ids=[]), facts())
    assert (findings[0].severity, findings[0].field) == ("error", "authorization_rules[1]")
    assert "InvalidClientVpnDuplicateAuthorizationRule" in findings[0].message
    assert [f.severity for f in findings[1:]] == ["warning"] * (len(findings) - 1)


def test_ipv6_default_route_needs_an_ipv6_way_out() -> None:
    seed = json.loads((REPO_ROOT / "events" / "requests" / "seed-active-directory.json").read_text())
    document = seed | {
        "schema_version": "2",
        "traffic_ip_address_type": "dual-stack",
        "authorization_rules": [rule("0.0.0.0/0", ENGINEERING), rule("::/0", ENGINEERING)],
        "routes": [{"destination_cidr": "::/0"}],
    }
    v6_out = (RouteTableRoute("::/0", "eigw-0a1b2c3d4e5f60001", "active"),)
    request_v2 = ProvisionRequest.model_validate(document)
    assert check_rules_and_routes(request_v2, facts(routes_a=v6_out, routes_main=v6_out)) == []
    findings = check_rules_and_routes(request_v2, facts())  # IPv4 ways out only
    assert [f.field for f in findings] == ["routes[0].destination_cidr"] * 2
    assert "egress-only" in findings[0].message
