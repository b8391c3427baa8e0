"""Pre-flight rules over a stand-in inventory: every problem is named, nothing is created."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from cvpn_shared.provisioning.dal.inventory import NetworkFacts, SubnetInfo, VpcInfo
from cvpn_shared.provisioning.errors import PreflightFailed, RequestInvalid
from cvpn_shared.provisioning.models.request import ProvisionRequest
from cvpn_shared.provisioning.preflight import run_preflight
from cvpn_shared.provisioning.tags import REQUEST_ID_TAG
from cvpn_shared.provisioning.validation import validate_request
from tests.fixtures import REPO_ROOT

SEED = REPO_ROOT / "events" / "requests" / "seed-active-directory.json"
VPC = "vpc-0a1b2c3d4e5f60718"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0d36a9e8-e764-4cd4-886d-5aef5f4cd28f"


@dataclass
class FakeInventory:
    """What exists in a pretend account."""

    vpcs: dict[str, VpcInfo] = field(default_factory=lambda: {VPC: VpcInfo(VPC, ("10.0.0.0/16",), "default")})
    subnet_map: dict[str, SubnetInfo] = field(
        default_factory=lambda: {
            "subnet-0a1b2c3d4e5f60001": SubnetInfo(
                "subnet-0a1b2c3d4e5f60001", VPC, "us-east-1a", "10.0.1.0/24"
            ),
            "subnet-0a1b2c3d4e5f60002": SubnetInfo(
                "subnet-0a1b2c3d4e5f60002", VPC, "us-east-1b", "10.0.2.0/24"
            ),
            "subnet-0a1b2c3d4e5f60003": SubnetInfo(
                "subnet-0a1b2c3d4e5f60003", VPC, "us-east-1b", "10.0.3.0/24"
            ),
        }
    )
    groups: dict[str, str] = field(default_factory=lambda: {"sg-0a1b2c3d4e5f60718": VPC})
    certificates: dict[str, str] = field(default_factory=lambda: {CERT: "ISSUED"})
    directories: dict[str, str] = field(default_factory=lambda: {"d-0613d679c7": "Active"})
    saml: set[str] = field(default_factory=set)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    facts: NetworkFacts | None = None

    def vpc(self, vpc_id: str) -> VpcInfo | None:
        return self.vpcs.get(vpc_id)

    def subnets(self, subnet_ids: list[str]) -> dict[str, SubnetInfo]:
        return {i: self.subnet_map[i] for i in subnet_ids if i in self.subnet_map}

    def security_groups(self, group_ids: list[str]) -> dict[str, str]:
        return {i: self.groups[i] for i in group_ids if i in self.groups}

    def certificate_status(self, arn: str) -> str | None:
        return self.certificates.get(arn)

    def directory_stage(self, directory_id: str) -> str | None:
        return self.directories.get(directory_id)

    def saml_provider_exists(self, arn: str) -> bool:
        return arn in self.saml

    def client_vpn_endpoints(self) -> list[dict[str, Any]]:
        return self.endpoints

    def network_facts(self, vpc_id: str, subnet_ids: list[str]) -> NetworkFacts | None:
        return self.facts


def seed(**changes: Any) -> dict[str, Any]:
    return json.loads(SEED.read_text()) | changes


def test_seed_request_passes_and_maps_subnets_to_zones() -> None:
    report = run_preflight(ProvisionRequest.model_validate(seed()), FakeInventory())
    assert report.ok, report.problems
    assert report.availability_zones == {
        "subnet-0a1b2c3d4e5f60001": "us-east-1a",
        "subnet-0a1b2c3d4e5f60002": "us-east-1b",
    }


def test_client_cidr_overlapping_the_vpc_is_named() -> None:
    report = run_preflight(
        ProvisionRequest.model_validate(seed(client_cidr_block="10.0.0.0/22")), FakeInventory()
    )
    assert any(
        p.startswith("client_cidr_block: 10.0.0.0/22 overlaps the VPC CIDR 10.0.0.0/16")
        for p in report.problems
    )


def test_route_overlapping_the_client_cidr_is_named_but_default_route_is_fine() -> None:
    routes = [{"destination_cidr": "0.0.0.0/0"}, {"destination_cidr": "172.16.2.0/24"}]
    report = run_preflight(ProvisionRequest.model_validate(seed(routes=routes)), FakeInventory())
    assert report.problems == [
        "routes[1].destination_cidr: 172.16.2.0/24 overlaps the client CIDR 172.16.0.0/22"
    ]


def test_two_subnets_in_one_zone_and_missing_subnet() -> None:
    subnets = ["subnet-0a1b2c3d4e5f60002", "subnet-0a1b2c3d4e5f60003", "subnet-0a1b2c3d4e5f60009"]
    report = run_preflight(ProvisionRequest.model_validate(seed(subnet_ids=subnets)), FakeInventory())
    assert any("subnet_ids[1]" in p and "one subnet per Availability Zone" in p for p in report.problems)
    assert "subnet_ids[2]: subnet-0a1b2c3d4e5f60009 does not exist" in report.problems


def test_subnet_and_group_in_another_vpc() -> None:
    inventory = FakeInventory()
    inventory.subnet_map["subnet-0a1b2c3d4e5f60002"] = SubnetInfo(
        "subnet-0a1b2c3d4e5f60002", "vpc-0ffffffffffffffff", "us-east-1b", "10.9.2.0/24"
    )
    inventory.groups["sg-0a1b2c3d4e5f60718"] = "vpc-0ffffffffffffffff"
    report = run_preflight(ProvisionRequest.model_validate(seed()), inventory)
    assert any(
        p.startswith("subnet_ids[1]: subnet-0a1b2c3d4e5f60002 is in vpc-0ffffffffffffffff")
        for p in report.problems
    )
    assert any(p.startswith("security_group_ids[0]") and "not in" in p for p in report.problems)


def test_missing_references_are_all_reported_together() -> None:
    inventory = FakeInventory(certificates={}, directories={}, vpcs={})
    report = run_preflight(ProvisionRequest.model_validate(seed()), inventory)
    fields = {problem.split(":")[0] for problem in report.problems}
    assert {"vpc_id", "server_certificate_arn", "authentication[0].directory_id"} <= fields


def test_dedicated_tenancy_and_pending_certificate() -> None:
    inventory = FakeInventory(
        vpcs={VPC: VpcInfo(VPC, ("10.0.0.0/16",), "dedicated")}, certificates={CERT: "PENDING_VALIDATION"}
    )
    problems = run_preflight(ProvisionRequest.model_validate(seed()), inventory).problems
    assert any("dedicated tenancy" in p for p in problems)
    assert any("PENDING_VALIDATION, not ISSUED" in p for p in problems)


def test_quota_counts_live_endpoints_but_not_this_requests_own() -> None:
    others = [
        {"ClientVpnEndpointId": f"cvpn-endpoint-{i}", "Status": {"Code": "available"}, "Tags": []}
        for i in range(5)
    ]
    problems = run_preflight(
        ProvisionRequest.model_validate(seed()), FakeInventory(endpoints=others)
    ).problems
    assert any(p.startswith("quota: 5 Client VPN endpoints") for p in problems)

    mine = [
        *others[:4],
        {
            "ClientVpnEndpointId": "cvpn-endpoint-mine",
            "Status": {"Code": "available"},
            "Tags": [{"Key": REQUEST_ID_TAG, "Value": "NET-1042"}],
        },
    ]
    report = run_preflight(ProvisionRequest.model_validate(seed()), FakeInventory(endpoints=mine))
    assert report.ok
    assert report.existing_endpoint_id == "cvpn-endpoint-mine"


def test_validate_request_raises_named_errors() -> None:
    with pytest.raises(RequestInvalid) as invalid:
        validate_request(
            seed(vpn_port=22, routes=[{"destination_cidr": "10.0.0.1/8"}]), FakeInventory(), endpoint_quota=5
        )
    fields = [error["field"] for error in invalid.value.errors]
    assert "vpn_port" in fields
    assert "routes[0].destination_cidr" in fields

    with pytest.raises(PreflightFailed) as failed:
        validate_request(seed(client_cidr_block="10.0.0.0/22"), FakeInventory(), endpoint_quota=5)
    assert "client_cidr_block" in str(failed.value)


def test_client_connect_handler_needs_one_deployed() -> None:
    request = ProvisionRequest.model_validate(seed(client_connect_handler=True))
    problems = run_preflight(request, FakeInventory()).problems
    assert any(
        p.startswith("client_connect_handler: this deployment has no client-connect handler")
        for p in problems
    )
    assert run_preflight(request, FakeInventory(), client_connect_available=True).ok


def _facts_without_internet() -> NetworkFacts:
    return NetworkFacts(
        vpc_id=VPC,
        subnet_route_tables={"subnet-0a1b2c3d4e5f60001": "rtb-main", "subnet-0a1b2c3d4e5f60002": "rtb-main"},
        route_tables={"rtb-main": ()},
        internet_gateway_ids=frozenset(),
        egress_only_internet_gateway_ids=frozenset(),
        nat_gateways={},
        default_security_group_id="sg-0000000000000d3fa",
    )


def test_warnings_across_rules_and_routes_are_reported_without_failing() -> None:
    answer = validate_request(
        seed(security_group_ids=[]), FakeInventory(facts=_facts_without_internet()), endpoint_quota=5
    )
    fields = sorted(warning["field"] for warning in answer["warnings"])
    assert fields == ["routes[0].destination_cidr", "routes[0].destination_cidr", "security_group_ids"]
    assert answer["request"]["request_id"] == "NET-1042"


def test_an_error_across_rules_and_routes_fails_validation_with_its_field() -> None:
    routes = [{"destination_cidr": "10.200.0.0/24"}, {"destination_cidr": "10.200.0.0/24"}]
    with pytest.raises(PreflightFailed) as failed:
        validate_request(seed(routes=routes), FakeInventory(), endpoint_quota=5)
    assert "routes[1].destination_cidr: 10.200.0.0/24 is also routes[0]" in str(failed.value)


def test_no_warning_when_the_request_fits_its_vpc() -> None:
    assert validate_request(seed(), FakeInventory(), endpoint_quota=5)["warnings"] == []
