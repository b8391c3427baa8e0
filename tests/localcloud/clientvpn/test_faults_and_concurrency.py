"""Fault injection (deterministic under a seed), API call counters, the 10-operation limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localcloud.clientvpn.models import ClientVpnBackend
from localcloud.clock import Clock
from localcloud.faults import FaultInjector, api_call_counts, reset_api_call_counts
from tests.localcloud.clientvpn.support import Network, association_state, endpoint_state, error_code

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture
def ec2_no_retry(aws: None, aws_clients: dict[str, Any]) -> Any:
    """An EC2 client that does not retry throttles, so every injected fault reaches the test."""
    import boto3

    return boto3.client("ec2", region_name="us-east-1", config=NO_RETRIES)


def test_eleventh_concurrent_operation_is_refused(
    ec2: Any,
    network: Network,
    create_endpoint: Callable[..., str],
    frozen_clock: Clock,
    backend: ClientVpnBackend,
) -> None:
    """3 associations + 7 authorizations in flight = 10; the 11th change is refused."""
    endpoint_id = create_endpoint()
    for subnet in network.subnet_ids:
        ec2.associate_client_vpn_target_network(ClientVpnEndpointId=endpoint_id, SubnetId=subnet)
    for index in range(7):
        ec2.authorize_client_vpn_ingress(
            ClientVpnEndpointId=endpoint_id, TargetNetworkCidr=f"10.{index}.0.0/16", AuthorizeAllGroups=True
        )
    with pytest.raises(ClientError) as excinfo:
        ec2.authorize_client_vpn_ingress(
            ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="10.99.0.0/16", AuthorizeAllGroups=True
        )
    assert error_code(excinfo) == "ConcurrentMutationLimitExceeded"

    frozen_clock.advance(backend.timings.authorization_seconds)  # the rules are active: 3 in flight
    ec2.authorize_client_vpn_ingress(
        ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="10.99.0.0/16", AuthorizeAllGroups=True
    )


def test_same_seed_same_faults(ec2_no_retry: Any, network: Network, fault_injector: FaultInjector) -> None:
    """Throttling at 50 %: the sequence of throttled calls repeats exactly under the same seed."""

    def run(seed: int) -> list[bool]:
        fault_injector.seed = seed
        fault_injector.clear()
        fault_injector.configure("DescribeClientVpnEndpoints", throttle_rate=0.5)
        outcomes = []
        for _ in range(20):
            try:
                ec2_no_retry.describe_client_vpn_endpoints()
                outcomes.append(False)
            except ClientError as error:
                assert error.response["Error"]["Code"] == "RequestLimitExceeded"
                assert error.response["Error"]["Message"] == "Request limit exceeded."
                outcomes.append(True)
        return outcomes

    first, again, other = run(11), run(11), run(12)
    assert first == again
    assert first != other
    assert 0 < sum(first) < 20
    assert fault_injector.injected_counts()["DescribeClientVpnEndpoints"]["RequestLimitExceeded"] == sum(
        other
    )


def test_concurrent_mutation_rate(ec2_no_retry: Any, network: Network, fault_injector: FaultInjector) -> None:
    fault_injector.configure("DescribeClientVpnEndpoints", concurrent_mutation_rate=1.0)
    with pytest.raises(ClientError) as excinfo:
        ec2_no_retry.describe_client_vpn_endpoints()
    assert error_code(excinfo) == "ConcurrentMutationLimitExceeded"


def test_operation_not_permitted_while_another_endpoint_is_created(
    create_endpoint: Callable[..., str], fault_injector: FaultInjector, frozen_clock: Clock
) -> None:
    fault_injector.configure("CreateClientVpnEndpoint", create_window_seconds=60)
    create_endpoint()
    with pytest.raises(ClientError) as excinfo:
        create_endpoint()
    assert error_code(excinfo) == "OperationNotPermitted"
    frozen_clock.advance(60)
    create_endpoint()


def test_forced_operation_not_permitted(
    create_endpoint: Callable[..., str], fault_injector: FaultInjector
) -> None:
    fault_injector.configure("CreateClientVpnEndpoint", force_operation_not_permitted=1)
    with pytest.raises(ClientError) as excinfo:
        create_endpoint()
    assert error_code(excinfo) == "OperationNotPermitted"
    create_endpoint()
    assert fault_injector.injected_counts() == {"CreateClientVpnEndpoint": {"OperationNotPermitted": 1}}


def test_next_association_fails(
    ec2: Any,
    network: Network,
    create_endpoint: Callable[..., str],
    fault_injector: FaultInjector,
    frozen_clock: Clock,
    backend: ClientVpnBackend,
) -> None:
    """association_failures=1: the next association ends association-failed; the endpoint stays pending."""
    fault_injector.configure(
        "AssociateClientVpnTargetNetwork",
        association_failures=1,
        association_failure_message="no ENI capacity",
    )
    endpoint_id = create_endpoint()
    failed = ec2.associate_client_vpn_target_network(
        ClientVpnEndpointId=endpoint_id, SubnetId=network.subnet_ids[0]
    )["AssociationId"]
    assert association_state(ec2, endpoint_id, failed) == "associating"
    frozen_clock.advance(backend.timings.association_seconds)
    target = ec2.describe_client_vpn_target_networks(
        ClientVpnEndpointId=endpoint_id, AssociationIds=[failed]
    )["ClientVpnTargetNetworks"][0]
    assert target["Status"] == {"Code": "association-failed", "Message": "no ENI capacity"}
    assert endpoint_state(ec2, endpoint_id) == "pending-associate"
    assert ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"] == []

    retried = ec2.associate_client_vpn_target_network(
        ClientVpnEndpointId=endpoint_id, SubnetId=network.subnet_ids[0]
    )["AssociationId"]
    frozen_clock.advance(backend.timings.association_seconds)
    assert association_state(ec2, endpoint_id, retried) == "associated"
    assert endpoint_state(ec2, endpoint_id) == "available"


def test_not_found_shortly_after_create(
    ec2: Any, create_endpoint: Callable[..., str], fault_injector: FaultInjector, frozen_clock: Clock
) -> None:
    fault_injector.configure("*", not_found_after_create_seconds=5)
    endpoint_id = create_endpoint()
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])
    assert error_code(excinfo) == "InvalidClientVpnEndpointId.NotFound"
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_client_vpn_target_networks(ClientVpnEndpointId=endpoint_id)
    assert error_code(excinfo) == "InvalidClientVpnEndpointId.NotFound"
    assert ec2.describe_client_vpn_endpoints()["ClientVpnEndpoints"] == []
    frozen_clock.advance(5)
    assert endpoint_state(ec2, endpoint_id) == "pending-associate"
    assert len(ec2.describe_client_vpn_endpoints()["ClientVpnEndpoints"]) == 1


def test_injector_round_trips_through_dict() -> None:
    injector = FaultInjector(seed=3)
    injector.configure("AssociateClientVpnTargetNetwork", association_failure_rate=0.25)
    injector.configure("*", throttle_rate=0.1)
    rebuilt = FaultInjector.from_dict(injector.to_dict())
    assert rebuilt.to_dict() == injector.to_dict()
    assert rebuilt.knobs_for("DescribeClientVpnRoutes").throttle_rate == 0.1
    with pytest.raises(ValueError, match="unknown fault knobs"):
        injector.configure("CreateClientVpnEndpoint", explode=True)
    injector.clear()
    assert injector.to_dict() == {"seed": 3, "operations": {}}


def test_api_call_counts(ec2: Any, network: Network, create_endpoint: Callable[..., str]) -> None:
    reset_api_call_counts()
    endpoint_id = create_endpoint()
    ec2.describe_client_vpn_endpoints()
    ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])
    with pytest.raises(ClientError):
        ec2.describe_client_vpn_routes(ClientVpnEndpointId="cvpn-endpoint-0123456789abcdef0")
    assert api_call_counts() == {
        "CreateClientVpnEndpoint": 1,
        "DescribeClientVpnEndpoints": 2,
        "DescribeClientVpnRoutes": 1,
    }
    reset_api_call_counts()
    assert api_call_counts() == {}


def test_fail_with_answers_the_next_calls(
    ec2_no_retry: Any, network: Network, fault_injector: FaultInjector
) -> None:
    """The next fail_count calls answer the code, with AWS's status for it (InternalError: 500)."""
    fault_injector.configure("DescribeClientVpnEndpoints", fail_with="InternalError", fail_count=2)
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            ec2_no_retry.describe_client_vpn_endpoints()
        assert error_code(excinfo) == "InternalError"
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert ec2_no_retry.describe_client_vpn_endpoints()["ClientVpnEndpoints"] == []
    assert fault_injector.injected_counts() == {"DescribeClientVpnEndpoints": {"InternalError": 2}}
