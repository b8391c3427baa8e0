"""One local cloud with template.yaml deployed and one endpoint provisioned by the real state machine
(client-connect handler on), shared by the monitoring end-to-end tests.

Provisioning runs at a high time scale (a 4-minute association takes a fraction of a second); then
the clock runs at real speed, so connection-log timestamps, the schedule's time and the Lambda
processes' own clocks agree. The ingest schedule is set far apart and fired by the tests.

A test that counts what the ingest reads, or writes a backlog, takes ``own_log_group``: a fresh log
group of its own that the ingest watches (besides the endpoint's) only while that test runs, so
neither its counts nor the ingest's memory of event ids (its overlap, its floor) depend on which
tests ran before it.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator

import pytest

from cvpn.monitoring_demo import LocalMonitoring
from localcloud.cloud import LocalCloud
from localcloud.sample_network import build_sample_network
from tests.provisioning.workflow.harness import ROOT, Provisioning

PROVISIONING_TIME_SCALE = 100.0
# The SSM parameter naming connection log groups created outside the product (the stack reads it).
WATCHED_LOG_GROUPS_PARAMETER = "/cvpn-monitoring-e2e/watched-log-groups"


@pytest.fixture(scope="package")
def product() -> Iterator[Provisioning]:
    # Deployed at real speed: at the provisioning scale, the deploy's real seconds would put emulated
    # time hours ahead of the wall clock, past what CloudWatch Logs accepts from PutLogEvents.
    with LocalCloud(time_scale=1.0, fault_seed=7) as cloud:
        stack = cloud.deploy(
            ROOT / "template.yaml",
            stack_name="cvpn-monitoring",
            parameter_overrides={
                "IngestSchedule": "rate(7 days)",  # the tests fire it
                "OidcIssuerUrl": "https://login.example.com/oauth2/default",
                "OidcAudience": "cvpn-request-form",
                "ConnectionLogGroupsParameter": WATCHED_LOG_GROUPS_PARAMETER,
            },
        )
        network = build_sample_network(cloud.client, region=cloud.region)
        cloud.clock.time_scale = PROVISIONING_TIME_SCALE
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


@pytest.fixture
def own_log_group(monitoring: LocalMonitoring, request: pytest.FixtureRequest) -> Iterator[LocalMonitoring]:
    """The operator's view of the endpoint's monitoring, on a new log group only this test writes to.

    The ingest reads it through the watched-log-groups parameter until the test ends (its records
    still name the provisioned endpoint, whose connection logging goes there meanwhile: the ingest
    reads only groups an endpoint logs to); then logging goes back to the endpoint's own group, and
    the parameter and the log group are deleted.
    """
    name = f"/cvpn-monitoring-e2e/{request.node.originalname}-{uuid.uuid4().hex[:8]}"
    logs, ssm = monitoring.cloud.client("logs"), monitoring.cloud.client("ssm")
    logs.create_log_group(logGroupName=name)
    ssm.put_parameter(Name=WATCHED_LOG_GROUPS_PARAMETER, Value=name, Type="StringList", Overwrite=True)
    log_to(monitoring, name)
    own = copy.copy(monitoring)  # the same inboxes and scheduler; no second subscription
    own.log_group_name = name
    try:
        yield own
    finally:
        log_to(monitoring, monitoring.log_group_name)
        ssm.delete_parameter(Name=WATCHED_LOG_GROUPS_PARAMETER)
        logs.delete_log_group(logGroupName=name)


def log_to(monitoring: LocalMonitoring, log_group_name: str) -> None:
    """Point the provisioned endpoint's connection logging at ``log_group_name``."""
    monitoring.cloud.client("ec2").modify_client_vpn_endpoint(
        ClientVpnEndpointId=monitoring.endpoint_id,
        ConnectionLogOptions={"Enabled": True, "CloudwatchLogGroup": log_group_name},
    )
