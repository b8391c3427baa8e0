"""One local cloud with template.yaml deployed and a sample network, shared by the workflow tests."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest

from localcloud.clientvpn.models import ClientVpnTimings
from localcloud.cloud import LocalCloud
from localcloud.faults import get_fault_injector
from localcloud.sample_network import build_sample_network
from tests.provisioning.workflow.harness import ROOT, NotificationInbox, Provisioning

# Fast enough that a 4-minute association takes 0.2 s, slow enough that polls still happen.
TIME_SCALE = 1200.0


@pytest.fixture(scope="package")
def product() -> Iterator[Provisioning]:
    with LocalCloud(time_scale=TIME_SCALE, fault_seed=11) as cloud:
        stack = cloud.deploy(
            ROOT / "template.yaml",
            stack_name="cvpn-autopilot",
            parameter_overrides={
                "ClientVpnEndpointQuota": "100",
                # Presigned links last their lifetime in emulated seconds: the longest one allowed
                # still lasts long enough in real time at this scale for the tests to download it.
                "ConfigUrlTtlSeconds": "43200",
                # The workflows need no sign-in; an external issuer keeps the Cognito user pool out.
                "OidcIssuerUrl": "https://login.example.com/oauth2/default",
                "OidcAudience": "cvpn-request-form",
                # No workflow test reads connection logs or waits for the hourly list refresh. At the
                # defaults and this time scale the ingest alone would fire every few hundredths of a
                # second and take most of the Lambda invocations and processor time of the run.
                "IngestSchedule": "rate(7 days)",
                "RevocationListRefreshSchedule": "rate(7 days)",
            },
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


@pytest.fixture
def timings(product: Provisioning) -> Iterator[ClientVpnTimings]:
    """The Client VPN backend's timings, for one test to change; restored afterwards."""
    backend_timings = product.backend().timings
    saved = dataclasses.replace(backend_timings)
    yield backend_timings
    for item in dataclasses.fields(saved):
        setattr(backend_timings, item.name, getattr(saved, item.name))


@pytest.fixture(scope="package")
def inbox(product: Provisioning) -> NotificationInbox:
    """An SQS queue subscribed to the stack's NotificationsTopic (as an operator's mailbox would be)."""
    sqs = product.cloud.client("sqs")
    queue_url = sqs.create_queue(QueueName="cvpn-notifications-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic_arn = product.stack.outputs["NotificationsTopicArn"]
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sns.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": queue_arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                        }
                    ],
                }
            )
        },
    )
    product.cloud.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return NotificationInbox(sqs=sqs, queue_url=queue_url)
