"""End to end on the local cloud: when the client-connect handler cannot run (Lambda throttles it),
Client VPN refuses the attempts with reason client-connect-handler-throttled; the ingest reports
that as a health issue, which reaches operations (the notifications topic), not the security alerts."""

from __future__ import annotations

import json

from cvpn.monitoring_demo import LocalMonitoring, wait_for


def test_a_throttled_handler_is_reported_to_operations(monitoring: LocalMonitoring) -> None:
    """Given the handler's reserved concurrency at 0 (every invocation throttled), when a user connects,
    then the attempt is refused with client-connect-handler-throttled, and after the scheduled ingest
    operations receive one notification naming the endpoint and the reason."""
    operations = monitoring.subscribe_to_topic("cvpn-operations-inbox", "NotificationsTopicArn")
    lambda_client = monitoring.cloud.client("lambda")
    handler = monitoring.stack.outputs["ClientConnectFunctionArn"]
    lambda_client.put_function_concurrency(FunctionName=handler, ReservedConcurrentExecutions=0)
    try:
        attempt = monitoring.connect("olivia", "198.51.100.88")
    finally:
        lambda_client.delete_function_concurrency(FunctionName=handler)
    assert not attempt.connected and attempt.failure_reason == "client-connect-handler-throttled"

    monitoring.run_ingest()

    def health_notifications() -> list[dict]:
        return [
            envelope
            for envelope in operations.drain()
            if envelope.get("MessageAttributes", {}).get("kind", {}).get("Value")
            == "client-connect-handler-health"
        ]

    notification = wait_for("a health notification", health_notifications, timeout=60)[0]
    message = json.loads(notification["Message"])
    assert message["endpoint_id"] == monitoring.endpoint_id
    assert message["reason"] == "client-connect-handler-throttled" and message["count"] >= 1
    assert not [e for e in monitoring.alert_envelopes() if "olivia" in e.get("Message", "")]
    assert monitoring.connect("olivia", "198.51.100.88").connected  # the handler runs again
