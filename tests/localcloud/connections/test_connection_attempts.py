"""Connection attempts: what the simulation logs, allocates and counts, read back through CloudWatch Logs."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime

import boto3
import pytest

from localcloud.clientvpn.connections import (
    CONNECTION_LOG_FIELDS,
    ClientVpnConnection,
    advance_connections,
    authentication_failure_count,
    simulate_connect,
)
from localcloud.clock import Clock
from tests.localcloud.connections.support import (
    DIRECTORY,
    LOG_GROUP,
    REGION,
    FakeEndpoint,
    log_streams,
    read_records,
)

LOG_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
CONNECTION_ID = re.compile(r"^cvpn-connection-[0-9a-f]{17}$")


def log_time(clock: Clock) -> str:
    return clock.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_successful_attempt_is_logged_field_for_field(endpoint: FakeEndpoint, clock: Clock) -> None:
    """An available mutual-TLS endpoint: a successful attempt writes AWS's record, opens a connection."""
    result = simulate_connect(endpoint, common_name="alice.example.com", device_ip="198.51.100.7", port=50096)

    assert result.connected and result.logged
    [record] = read_records()
    assert tuple(record) == CONNECTION_LOG_FIELDS
    assert all(isinstance(value, str) for value in record.values())
    assert record["connection-log-type"] == "connection-attempt"
    assert record["connection-attempt-status"] == "successful"
    assert record["connection-reset-status"] == "NA"
    assert record["connection-attempt-failure-reason"] == "NA"
    assert CONNECTION_ID.match(record["connection-id"])
    assert record["client-vpn-endpoint-id"] == endpoint.id
    assert record["transport-protocol"] == "udp"
    assert record["connection-start-time"] == record["connection-last-update-time"] == log_time(clock)
    assert LOG_TIME.match(record["connection-start-time"])
    client_ip = ipaddress.ip_address(record["client-ip"])
    network = ipaddress.ip_network(endpoint.client_cidr_block)
    assert client_ip in network
    assert client_ip not in (network.network_address, network.network_address + 1)
    assert record["common-name"] == "alice.example.com"
    assert record["device-type"] == "mac"
    assert record["device-ip"] == "198.51.100.7"
    assert record["port"] == "50096"
    for counter in ("ingress-bytes", "egress-bytes", "ingress-packets", "egress-packets"):
        assert record[counter] == "0"
    assert record["connection-end-time"] == "NA"
    assert record["username"] == "NA", "certificate-only endpoints know no username"
    assert record["posture-compliance-statuses"] == "NA"
    assert record["connection-duration-seconds"] == "0"

    connection = endpoint.connections[record["connection-id"]]
    assert isinstance(connection, ClientVpnConnection)
    assert connection.status == "active" and connection.client_ip == record["client-ip"]
    assert result.record == record


def test_log_event_timestamp_comes_from_the_emulated_clock(endpoint: FakeEndpoint, clock: Clock) -> None:
    """Event times are the emulated clock's milliseconds, kept even when it runs days ahead of real time."""
    clock.advance(3 * 86400)
    simulate_connect(endpoint)
    connected_at = clock.millis()
    clock.advance(11 * 60)
    advance_connections(endpoint)

    logs = boto3.client("logs", region_name=REGION)
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName="connections")["events"]
    assert len(events) == 3
    assert abs(events[0]["timestamp"] - connected_at) < 5
    assert [event["timestamp"] - events[0]["timestamp"] for event in events] == [0, 300_000, 600_000]


def test_api_view_of_a_connection(endpoint: FakeEndpoint) -> None:
    """to_api returns botocore's ClientVpnConnection shape with string counters."""
    connection = simulate_connect(endpoint, common_name="client7").connection
    assert connection is not None

    item = connection.to_api()
    assert item["ConnectionId"] == connection.connection_id
    assert item["ClientVpnEndpointId"] == endpoint.id
    assert item["Status"] == {"Code": "active"}
    assert item["CommonName"] == "client7"
    assert item["IngressBytes"] == "0"
    assert LOG_TIME.match(item["ConnectionEstablishedTime"])
    assert "Username" not in item and "ConnectionEndTime" not in item


def test_directory_endpoint_logs_the_username(aws: None) -> None:
    """With Active Directory authentication, the username appears in the record and the connection."""
    endpoint = FakeEndpoint(authentication_options=[dict(DIRECTORY)])
    result = simulate_connect(endpoint, username="joe")

    assert read_records()[0]["username"] == "joe"
    assert result.connection is not None and result.connection.username == "joe"
    assert result.connection.to_api()["Username"] == "joe"
    with pytest.raises(ValueError, match="username"):
        simulate_connect(endpoint)


def test_failed_user_authentication_is_logged(aws: None, clock: Clock) -> None:
    """A failed credential check is logged as failed, with NA start time, client-ip and duration."""
    endpoint = FakeEndpoint(authentication_options=[dict(DIRECTORY)])
    result = simulate_connect(
        endpoint, username="mallory", outcome="failure", failure_reason="invalid-credentials", port=40000
    )

    assert not result.connected and result.logged
    [record] = read_records()
    assert tuple(record) == CONNECTION_LOG_FIELDS
    assert record["connection-attempt-status"] == "failed"
    assert record["connection-attempt-failure-reason"] == "invalid-credentials"
    assert record["connection-start-time"] == "NA"
    assert record["client-ip"] == "NA"
    assert record["connection-duration-seconds"] == "NA"
    assert record["connection-end-time"] == "NA"
    assert record["connection-last-update-time"] == log_time(clock)
    assert record["username"] == "mallory"
    assert CONNECTION_ID.match(record["connection-id"])
    assert endpoint.connections == {}, "a failed attempt never becomes a connection"


def test_failed_mutual_tls_attempt_is_counted_not_logged(endpoint: FakeEndpoint) -> None:
    """AWS does not log refused client certificates; AuthenticationFailures counts them."""
    first = simulate_connect(endpoint, outcome="failure")
    simulate_connect(endpoint, outcome="failure")

    assert first.counted_as_authentication_failure and not first.logged and first.record is None
    assert authentication_failure_count(endpoint) == 2
    assert log_streams() == []
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    [metric] = cloudwatch.list_metrics(Namespace="AWS/ClientVPN")["Metrics"]
    assert metric["MetricName"] == "AuthenticationFailures"
    assert metric["Dimensions"] == [{"Name": "Endpoint", "Value": endpoint.id}]


def test_disabled_connection_logging_writes_nothing(aws: None) -> None:
    """With ConnectionLogOptions disabled the connection opens but no stream or event appears."""
    endpoint = FakeEndpoint(connection_log_options={"Enabled": False})
    result = simulate_connect(endpoint)

    assert result.connected and not result.logged
    assert log_streams() == []


def test_unavailable_endpoint_accepts_no_connection(aws: None) -> None:
    """An endpoint still pending association cannot be reached: failure, nothing logged or counted."""
    endpoint = FakeEndpoint(state="pending-associate", associations={})
    result = simulate_connect(endpoint)

    assert not result.connected and not result.logged
    assert "pending-associate" in result.detail
    assert log_streams() == [] and endpoint.connections == {}
    assert authentication_failure_count(endpoint) == 0


def test_default_log_stream_is_named_after_the_endpoint(aws: None, clock: Clock) -> None:
    """Without a configured stream, one named <endpoint>-<region>-<date>-<token> is created and kept."""
    endpoint = FakeEndpoint(connection_log_options={"Enabled": True, "CloudwatchLogGroup": LOG_GROUP})
    simulate_connect(endpoint)
    simulate_connect(endpoint)

    [stream] = log_streams()
    day = datetime.fromtimestamp(clock.timestamp(), tz=UTC).strftime("%Y/%m/%d")
    assert re.fullmatch(rf"{endpoint.id}-{REGION}-{re.escape(day)}-[A-Za-z0-9]{{12}}", stream)
    assert len(read_records(stream)) == 2


def test_client_ips_are_never_shared_by_active_connections(endpoint: FakeEndpoint) -> None:
    """Each active connection has its own tunnel address; a terminated one frees it."""
    first = simulate_connect(endpoint).connection
    second = simulate_connect(endpoint).connection
    assert first is not None and second is not None
    assert first.client_ip != second.client_ip

    first.terminate()
    third = simulate_connect(endpoint).connection
    assert third is not None and third.client_ip == first.client_ip
