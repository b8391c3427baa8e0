"""One local cloud with template.yaml deployed and a sample network, shared by the workflow tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcloud.cloud import LocalCloud
from localcloud.faults import get_fault_injector
from localcloud.sample_network import build_sample_network
from tests.workflow.harness import ROOT, Provisioning

# Fast enough that a 4-minute association takes 0.2 s, slow enough that polls still happen.
TIME_SCALE = 1200.0


@pytest.fixture(scope="package")
def product() -> Iterator[Provisioning]:
    with LocalCloud(time_scale=TIME_SCALE, fault_seed=11) as cloud:
        stack = cloud.deploy(
            ROOT / "template.yaml",
            stack_name="cvpn-autopilot",
            parameter_overrides={"ClientVpnEndpointQuota": "100"},
            serve=False,
        )
        cloud_backend_quota(cloud, 100)
        network = build_sample_network(cloud.client, region=cloud.region)
        yield Provisioning(cloud=cloud, stack=stack, network=network)


def cloud_backend_quota(cloud: LocalCloud, endpoints: int) -> None:
    from localcloud.clientvpn.models import clientvpn_backends
    from localcloud.cloud import DEFAULT_ACCOUNT_ID

    clientvpn_backends[DEFAULT_ACCOUNT_ID][cloud.region].quotas.endpoints_per_region = endpoints


@pytest.fixture(autouse=True)
def no_faults() -> Iterator[None]:
    """Each workflow test starts and ends without injected faults."""
    get_fault_injector().clear()
    yield
    get_fault_injector().clear()
