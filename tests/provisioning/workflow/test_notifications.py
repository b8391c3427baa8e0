"""The notification an operator receives at the end of a provisioning (SNS topic -> SQS queue)."""

from __future__ import annotations

import json
import urllib.request

from localcloud.faults import get_fault_injector
from tests.provisioning.workflow.harness import NotificationInbox, Provisioning


def test_success_notification_carries_the_endpoint_and_where_its_configuration_is(
    product: Provisioning, inbox: NotificationInbox
) -> None:
    """Given an SQS queue subscribed to the stack's NotificationsTopic,
    when a request is provisioned successfully,
    then exactly one notification about it arrives, with status SUCCEEDED, the endpoint id and DNS
    name Describe reports, the hourly cost of two associated subnets, and where the client
    configuration is stored (no link: readers of the topic are not all the requester), from which
    a link made on demand downloads it."""
    request = product.request()

    progress = product.provision(request)

    assert progress.status == "SUCCEEDED", (progress.error, progress.cause)
    notifications = inbox.notifications_for(request["request_id"])
    assert len(notifications) == 1
    envelope = notifications[0]
    assert envelope["Subject"] == f"Client VPN endpoint ready for {request['request_id']}"
    assert envelope["MessageAttributes"]["status"]["Value"] == "SUCCEEDED"
    message = json.loads(envelope["Message"])
    endpoint = product.describe_endpoint(message["endpoint_id"])
    assert endpoint is not None
    assert (
        endpoint["Tags"]
        and {"Key": "cvpn-autopilot:request-id", "Value": request["request_id"]} in endpoint["Tags"]
    )
    assert message["status"] == "SUCCEEDED"
    assert message["request_id"] == request["request_id"]
    assert message["requester"] == request["requester"]
    assert message["dns_name"] == endpoint["DnsName"]
    assert message["hourly_cost_usd"] == 0.2
    assert "client_configuration_url" not in message
    with urllib.request.urlopen(product.configuration_link(message), timeout=10) as response:
        assert f"remote {message['endpoint_id']}.prod.clientvpn" in response.read().decode()


def test_rollback_notification_says_what_failed_and_that_nothing_is_left(
    product: Provisioning, inbox: NotificationInbox
) -> None:
    """Given an SQS queue subscribed to the stack's NotificationsTopic and an association that fails,
    when a request is provisioned,
    then exactly one notification about it arrives, with status ROLLED_BACK, the error
    AssociationFailed and its cause, rolled_back true and the id of the endpoint that was removed."""
    get_fault_injector().configure("AssociateClientVpnTargetNetwork", association_failures=1)
    request = product.request()

    progress = product.provision(request)

    assert progress.status == "FAILED"
    notifications = inbox.notifications_for(request["request_id"])
    assert len(notifications) == 1
    envelope = notifications[0]
    assert envelope["Subject"] == f"Client VPN request {request['request_id']} failed"
    assert envelope["MessageAttributes"]["status"]["Value"] == "ROLLED_BACK"
    message = json.loads(envelope["Message"])
    assert message["status"] == "ROLLED_BACK"
    assert message["rolled_back"] is True
    assert message["error"] == "AssociationFailed"
    assert "association failed for subnet-" in message["cause"]
    assert message["endpoint_id"].startswith("cvpn-endpoint-")
    product.assert_endpoint_gone(message["endpoint_id"])
