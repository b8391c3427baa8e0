"""One local cloud with template.yaml deployed and one endpoint provisioned by the real state machine
(client-connect handler on), shared by the monitoring end-to-end tests.

Provisioning runs at a high time scale (a 4-minute association takes a fraction of a second); then
the clock runs at real speed, so connection-log timestamps, the schedule's time and the Lambda
processes' own clocks agree. The ingest schedule is set far apart and fired by the tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cvpn.monitoring_demo import LocalMonitoring
from localcloud.cloud import LocalCloud
from localcloud.sample_network import build_sample_network
from tests.workflow.harness import ROOT, Provisioning

PROVISIONING_TIME_SCALE = 100.0


@pytest.fixture(scope="package")
def product() -> Iterator[Provisioning]:
    with LocalCloud(time_scale=PROVISIONING_TIME_SCALE, fault_seed=7) as cloud:
        stack = cloud.deploy(
            ROOT / "template.yaml",
            stack_name="cvpn-monitoring",
            parameter_overrides={
                "IngestSchedule": "rate(7 days)",  # the tests fire it
                "OidcIssuerUrl": "https://login.example.com/oauth2/default",
                "OidcAudience": "cvpn-request-form",
            },
        )
        network = build_sample_network(cloud.client, region=cloud.region)
        yield Provisioning(cloud=cloud, stack=stack, network=network)


@pytest.fixture(scope="package")
def monitoring(product: Provisioning) -> LocalMonitoring:
    """The provisioned endpoint, and the operator's view of monitoring on it."""
    request = product.request(zones=2, client_connect_handler=True)
    progress = product.provision(request, timeout=180)
    assert progress.status == "SUCCEEDED", progress.cause
    endpoint_id = progress.output["result"]["endpoint_id"]
    product.cloud.clock.time_scale = 1.0
    return LocalMonitoring(
        product.cloud, product.stack, endpoint_id, request["connection_log"]["log_group_name"]
    )
