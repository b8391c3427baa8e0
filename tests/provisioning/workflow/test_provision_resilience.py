"""Provisioning rides out what the real API does under load, and never provisions a request twice."""

from __future__ import annotations

import time
from typing import Any

import pytest

from localcloud.faults import get_fault_injector
from tests.provisioning.workflow.harness import Provisioning

NOT_VISIBLE_FOR_SECONDS = 24 * 3600


def _assert_available(product: Provisioning, progress: Any, request: dict[str, Any]) -> str:
    assert progress.status == "SUCCEEDED", (progress.error, progress.cause)
    endpoint_id = str(progress.output["result"]["endpoint_id"])
    endpoint = product.describe_endpoint(endpoint_id)
    assert endpoint is not None
    assert endpoint["Status"]["Code"] == "available"
    networks = product.cloud.client("ec2").describe_client_vpn_target_networks(
        ClientVpnEndpointId=endpoint_id
    )
    assert sorted(
        (n["TargetNetworkId"], n["Status"]["Code"]) for n in networks["ClientVpnTargetNetworks"]
    ) == [(subnet_id, "associated") for subnet_id in sorted(request["subnet_ids"])]
    assert [e["ClientVpnEndpointId"] for e in product.endpoints_for(request["request_id"])] == [endpoint_id]
    assert product.record_status(request["request_id"]) == "SUCCEEDED"
    return endpoint_id


FAULTS: dict[str, tuple[dict[str, dict[str, Any]], str]] = {
    # name: (knobs per operation, fault code that must have been injected)
    "throttling on every call": ({"*": {"throttle_rate": 0.3}}, "RequestLimitExceeded"),
    "concurrent mutations": (
        {
            operation: {"concurrent_mutation_rate": 0.3}
            for operation in (
                "AuthorizeClientVpnIngress",
                "CreateClientVpnRoute",
                "AssociateClientVpnTargetNetwork",
            )
        },
        "ConcurrentMutationLimitExceeded",
    ),
    "another endpoint being created": (
        {"CreateClientVpnEndpoint": {"force_operation_not_permitted": 2}},
        "OperationNotPermitted",
    ),
}


@pytest.mark.parametrize("case", list(FAULTS))
def test_transient_faults_are_retried_until_the_endpoint_is_available(
    product: Provisioning, case: str
) -> None:
    """Given the API throttles 30 % of all calls, or answers ConcurrentMutationLimitExceeded to 30 % of
    associations, rules and routes, or OperationNotPermitted to the first two creates,
    when a 2-AZ request is provisioned,
    then the faults did happen, the retries (by error name, with backoff and jitter) carry the
    execution to SUCCEEDED, and Describe shows one available endpoint with both subnets associated."""
    knobs, code = FAULTS[case]
    injector = get_fault_injector()
    for operation, settings in knobs.items():
        injector.configure(operation, **settings)
    request = product.request()

    progress = product.provision(request, timeout=180)

    injected = injector.injected_counts()
    injector.clear()  # the assertions' own Describe calls are not under test
    assert sum(counts.get(code, 0) for counts in injected.values()) >= 1, injected
    _assert_available(product, progress, request)


# The product's boto3 clients make 3 attempts; a step sees throttling only when all of them are throttled.
SDK_ATTEMPTS = 3


@pytest.mark.parametrize(
    "operation",
    [
        "DescribeClientVpnEndpoints",  # first used by ValidateRequest (the quota and re-run check)
        "CreateClientVpnEndpoint",
        "CreateClientVpnRoute",
    ],
)
def test_throttling_that_outlasts_the_sdk_retries_is_retried_by_the_workflow(
    product: Provisioning, operation: str
) -> None:
    """Given the first 5 calls of one operation are throttled (RequestLimitExceeded), more than the
    SDK's own 3 attempts,
    when a request is provisioned,
    then the step that made the calls fails with RequestLimitExceeded, the workflow retries it by
    that name, and the execution SUCCEEDS with one available endpoint."""
    injector = get_fault_injector()
    injector.configure(operation, fail_with="RequestLimitExceeded", fail_count=SDK_ATTEMPTS + 2)
    request = product.request()

    progress = product.provision(request)

    assert injector.injected_counts()[operation] == {"RequestLimitExceeded": SDK_ATTEMPTS + 2}
    _assert_available(product, progress, request)


def test_one_off_server_errors_are_retried_by_the_sdk(product: Provisioning) -> None:
    """Given the first CreateClientVpnEndpoint answers InternalError (HTTP 500) and the first
    AssociateClientVpnTargetNetwork answers ServiceUnavailable (HTTP 503), as AWS sometimes does,
    when a 2-AZ request is provisioned,
    then the SDK retries each call itself and the execution SUCCEEDS with one available endpoint."""
    injector = get_fault_injector()
    injector.configure("CreateClientVpnEndpoint", fail_with="InternalError", fail_count=1)
    injector.configure("AssociateClientVpnTargetNetwork", fail_with="ServiceUnavailable", fail_count=1)
    request = product.request()

    progress = product.provision(request)

    injected = injector.injected_counts()
    injector.clear()
    assert injected == {
        "CreateClientVpnEndpoint": {"InternalError": 1},
        "AssociateClientVpnTargetNetwork": {"ServiceUnavailable": 1},
    }
    _assert_available(product, progress, request)


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("DescribeClientVpnEndpoints", "Unavailable"),  # first used by ValidateRequest
        ("CreateClientVpnEndpoint", "InternalError"),
        ("AssociateClientVpnTargetNetwork", "ServiceUnavailable"),
        ("CreateClientVpnRoute", "InternalFailure"),
    ],
)
def test_server_errors_that_outlast_the_sdk_retries_are_retried_by_the_workflow(
    product: Provisioning, operation: str, code: str
) -> None:
    """Given the first 5 calls of one operation answer a server error (5xx), more than the SDK's own
    3 attempts,
    when a request is provisioned,
    then the step that made the calls fails with ServerError, the workflow retries it by that name,
    and the execution SUCCEEDS with one available endpoint."""
    injector = get_fault_injector()
    injector.configure(operation, fail_with=code, fail_count=SDK_ATTEMPTS + 2)
    request = product.request()

    progress = product.provision(request)

    assert injector.injected_counts()[operation] == {code: SDK_ATTEMPTS + 2}
    _assert_available(product, progress, request)


def test_endpoint_not_yet_visible_after_create_is_retried(product: Provisioning) -> None:
    """Given a new endpoint stays invisible to every Client VPN call naming it (NotFound, absent from
    listings) until the first call has been refused, as with eventual consistency after a create,
    when a request is provisioned,
    then the NotFound answers are retried as EndpointNotYetVisible and the execution SUCCEEDS with one
    available endpoint."""
    injector = get_fault_injector()
    injector.configure("*", not_found_after_create_seconds=NOT_VISIBLE_FOR_SECONDS)
    request = product.request()

    execution = product.start(product.provision_arn, {"request": request})
    deadline = time.monotonic() + 60
    while not any("InvalidClientVpnEndpointId.NotFound" in c for c in injector.injected_counts().values()):
        assert time.monotonic() < deadline, "no call was refused"
        time.sleep(0.002)
    product.cloud.clock.advance(NOT_VISIBLE_FOR_SECONDS)  # now the endpoint is visible everywhere
    progress = product.wait(execution)

    assert "AssociateClientVpnTargetNetwork" in injector.injected_counts()
    _assert_available(product, progress, request)


def test_rerunning_a_request_returns_the_same_endpoint(product: Provisioning) -> None:
    """Given a request that was provisioned,
    when a second execution (another execution name) runs the same request,
    then it SUCCEEDS with the same endpoint id, and exactly one endpoint carries the request id."""
    request = product.request()
    first = product.provision(request)
    endpoint_id = _assert_available(product, first, request)

    second = product.provision(request)

    assert second.execution_arn != first.execution_arn
    assert _assert_available(product, second, request) == endpoint_id
    assert second.output["result"]["endpoint_id"] == endpoint_id


def test_rerunning_a_rolled_back_request_provisions_a_new_endpoint(product: Provisioning) -> None:
    """Given a request whose provisioning was rolled back (a subnet association failed),
    when a second execution runs the same request once the cause is gone,
    then it SUCCEEDS with a new, available endpoint (not the deleted one), the only endpoint carrying
    the request id."""
    get_fault_injector().configure("AssociateClientVpnTargetNetwork", association_failures=1)
    request = product.request()
    first = product.provision(request)
    assert first.status == "FAILED"
    assert product.record_status(request["request_id"]) == "ROLLED_BACK"
    record = product.record(request["request_id"])
    assert record is not None
    rolled_back_endpoint_id = record["endpoint_id"]["S"]
    get_fault_injector().clear()

    second = product.provision(request)

    endpoint_id = _assert_available(product, second, request)
    assert endpoint_id != rolled_back_endpoint_id


def test_more_route_placements_than_the_endpoint_allows_in_flight(
    product: Provisioning, timings: Any
) -> None:
    """Given routes that take 15 minutes to become active (slower than AWS) and a request whose routes
    through every subnet make 12 placements (4 routes x 3 AZs, more than the 10 operations an endpoint
    allows in flight), when it is provisioned, the endpoint refuses some placements with
    ConcurrentMutationLimitExceeded, the workflow retries them until earlier routes finish, and every
    placement exists and is active.

    The clock runs 150 times real time meanwhile (not the package's 1200): 15 minutes are then 6 real
    seconds, far more than the placements take. At 1200 they were 0.75 s, and cold Lambda workers
    starting in the first round of placements sometimes let the first route finish before the last
    was placed, so the limit was never reached (a flake, twice in about a dozen full runs)."""
    from localcloud.faults import api_call_counts, reset_api_call_counts

    reset_api_call_counts()
    timings.route_seconds = 900
    routes = [
        {"destination_cidr": cidr, "description": f"route {index}"}
        for index, cidr in enumerate(("0.0.0.0/0", "10.200.0.0/24", "10.201.0.0/24", "10.202.0.0/24"))
    ]
    request = product.request(zones=3, routes=routes)
    clock = product.cloud.clock
    package_scale = clock.time_scale
    clock.time_scale = 150.0
    try:
        progress = product.provision(request, timeout=240)
    finally:
        clock.time_scale = package_scale
    endpoint_id = _assert_available(product, progress, request)
    placed = product.cloud.client("ec2").describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"]
    manual = sorted(
        (r["DestinationCidr"], r["TargetSubnet"], r["Status"]["Code"])
        for r in placed
        if r["Origin"] == "add-route"
    )
    assert manual == sorted(
        (route["destination_cidr"], subnet_id, "active")
        for route in routes
        for subnet_id in request["subnet_ids"]
    )
    assert api_call_counts()["CreateClientVpnRoute"] > 12, "the in-flight limit was never reached"
