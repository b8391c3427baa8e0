"""A request that fails validation or pre-flight creates nothing and is recorded as FAILED."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.provisioning.workflow.harness import Provisioning, failure_message

MISSING_CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def foreign_subnet_id(product: Provisioning) -> str:
    """A subnet of another VPC (10.50.0.0/16) than the sample network's."""
    ec2 = product.cloud.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    zone = product.network.availability_zones[1]
    return str(
        ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.50.1.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
    )


def _assert_nothing_created(product: Provisioning, request_id: str, before: Any) -> None:
    after = product.inventory()
    assert after.endpoint_ids == before.endpoint_ids, "an endpoint was created"
    assert after.association_ids == before.association_ids, "a subnet was associated"
    assert product.endpoints_for(request_id) == []
    assert product.record_status(request_id) == "FAILED"


INVALID: dict[str, tuple[dict[str, Any], str]] = {
    # name: (changes to the seed request, field the error names)
    "client CIDR /24": ({"client_cidr_block": "172.16.0.0/24"}, "client_cidr_block"),
    "group id not a SID": (
        {"authorization_rules": [{"target_network_cidr": "0.0.0.0/0", "access_group_id": "Engineering"}]},
        "authorization_rules[0].access_group_id",
    ),
    "route not a CIDR": (
        {"routes": [{"destination_cidr": "10.200.0.1/24"}]},
        "routes[0].destination_cidr",
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_request_fails_with_request_invalid_and_creates_nothing(
    product: Provisioning, case: str
) -> None:
    """Given a request with one invalid field (a /24 client CIDR, an AD group that is no SID, a route
    with host bits set),
    when it is provisioned,
    then the execution fails with RequestInvalid whose message names the field, Describe shows no new
    endpoint nor association, and the requests table records FAILED."""
    changes, field_name = INVALID[case]
    request = product.request(**changes)
    before = product.inventory()

    progress = product.provision(request)

    assert progress.status == "FAILED"
    assert progress.error == "RequestInvalid"
    assert field_name in failure_message(progress)
    assert "CreateEndpoint" not in progress.steps
    _assert_nothing_created(product, request["request_id"], before)


PREFLIGHT: dict[str, tuple[Callable[[Provisioning, str], dict[str, Any]], str]] = {
    # name: (changes to the seed request, given the product and a foreign subnet; what the error names)
    "client CIDR overlaps the VPC": (
        lambda product, foreign: {"client_cidr_block": "10.0.0.0/20"},
        "client_cidr_block: 10.0.0.0/20 overlaps the VPC CIDR 10.0.0.0/16",
    ),
    "subnet of another VPC": (
        lambda product, foreign: {"subnet_ids": [product.network.subnet_ids[0], foreign]},
        "subnet_ids[1]",
    ),
    "server certificate missing": (
        lambda product, foreign: {"server_certificate_arn": MISSING_CERTIFICATE},
        f"server_certificate_arn: {MISSING_CERTIFICATE} does not exist",
    ),
}


@pytest.mark.parametrize("case", list(PREFLIGHT))
def test_preflight_failure_fails_with_preflight_failed_and_creates_nothing(
    product: Provisioning, foreign_subnet_id: str, case: str
) -> None:
    """Given a well-formed request that cannot work in this account (client CIDR overlapping the VPC
    10.0.0.0/16, a subnet of another VPC, a server certificate ACM does not hold),
    when it is provisioned,
    then the execution fails with PreflightFailed naming the problem, Describe shows no new endpoint
    nor association, and the requests table records FAILED."""
    make_changes, problem = PREFLIGHT[case]
    request = product.request(**make_changes(product, foreign_subnet_id))
    before = product.inventory()

    progress = product.provision(request)

    assert progress.status == "FAILED"
    assert progress.error == "PreflightFailed"
    assert problem in failure_message(progress)
    assert "CreateEndpoint" not in progress.steps
    _assert_nothing_created(product, request["request_id"], before)
