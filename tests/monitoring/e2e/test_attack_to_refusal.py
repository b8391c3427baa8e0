"""End to end on the local cloud: simulated connections -> scheduled ingest -> finding on the bus ->
alert on the alerts topic -> blocklist -> the attacker's next attempt refused by the client-connect
handler, with reason client-connect-failed in the connection log."""

from __future__ import annotations

from cvpn.monitoring_demo import LocalMonitoring, run_attack_scenario


def test_a_password_spray_is_detected_alerted_blocked_and_refused(monitoring: LocalMonitoring) -> None:
    """Given a provisioned endpoint with the client-connect handler, when two users connect and an
    attacker fails against six users from one address, then after the scheduled ingest a HIGH
    password-spray finding is on the bus (spec shape), an alert reaches the alerts topic, the address
    is blocklisted, and the attacker's next attempt, though its password is right, is refused."""
    summary = run_attack_scenario(
        monitoring.cloud, monitoring.stack, monitoring.endpoint_id, monitoring=monitoring
    )

    assert summary.normal_connections == 2
    spray = [f for f in summary.findings if f["rule_id"] == "R4"]
    assert spray, summary.findings
    detail = spray[0]
    assert detail["severity"] == "HIGH"
    assert detail["entity"]["device_ip"] == "203.0.113.66"
    assert detail["counts"]["distinct_users"] >= 5 and detail["endpoint_id"] == monitoring.endpoint_id
    event = next(
        e for e in monitoring.bus_tap.received if e["detail"].get("finding_id") == detail["finding_id"]
    )
    assert event["source"] == "example.clientvpn.monitor"
    assert event["detail-type"] == "Client VPN Suspicious Connection Attempts"
    assert event["resources"] == [
        f"arn:aws:ec2:us-east-1:123456789012:client-vpn-endpoint/{monitoring.endpoint_id}"
    ]
    assert any(subject.startswith("[HIGH] Client VPN:") for subject in summary.alerts)
    assert "source#203.0.113.66" in summary.blocked
    assert summary.refused_message and "203.0.113.66" in summary.refused_message
    assert len(summary.refused_message) <= 255
    assert summary.refused_in_log
    recorded = {finding["finding_id"] for finding in monitoring.findings_recorded()}
    assert detail["finding_id"] in recorded

    # Someone else, from another address, still gets in.
    assert monitoring.connect("alice", "198.51.100.99").connected
