"""Open connections over emulated time: periodic updates, disconnects, session timeout, termination."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from localcloud.clientvpn.connections import (
    UnknownClientVpnConnection,
    advance_connections,
    simulate_connect,
    simulate_disconnect,
)
from localcloud.clock import Clock
from tests.localcloud.connections.support import FakeEndpoint, read_records


def fmt(moment: datetime) -> str:
    """A time as the connection log writes it."""
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def test_active_connection_is_relogged_each_interval(endpoint: FakeEndpoint, clock: Clock) -> None:
    """Every 5 emulated minutes the same connection is logged again with growing counters."""
    connection = simulate_connect(endpoint).connection
    assert connection is not None
    start = connection.established_at

    clock.advance(12 * 60)
    updates = advance_connections(endpoint)

    assert [record["connection-last-update-time"] for record in updates] == [
        fmt(start + timedelta(minutes=5)),
        fmt(start + timedelta(minutes=10)),
    ]
    records = read_records()
    assert len(records) == 3
    assert {record["connection-id"] for record in records} == {connection.connection_id}
    assert {record["connection-attempt-status"] for record in records} == {"successful"}
    assert {record["connection-start-time"] for record in records} == {fmt(start)}
    ingress = [int(record["ingress-bytes"]) for record in records]
    assert ingress[0] == 0 and ingress[0] < ingress[1] < ingress[2]
    assert records[2]["connection-duration-seconds"] == "600"
    assert records[2]["connection-end-time"] == "NA"

    assert advance_connections(endpoint) == [], "nothing more until the next interval"


def test_terminate_writes_the_end_record_once(endpoint: FakeEndpoint, clock: Clock) -> None:
    """terminate ends an active connection with an end record; a second terminate logs nothing."""
    connection = simulate_connect(endpoint).connection
    assert connection is not None
    clock.advance(90)

    first = connection.terminate(clock.now())
    second = connection.terminate(clock.now())

    assert first == {
        "ConnectionId": connection.connection_id,
        "PreviousStatus": {"Code": "active"},
        "CurrentStatus": {"Code": "terminated"},
    }
    assert second["PreviousStatus"] == {"Code": "terminated"}
    records = read_records()
    assert len(records) == 2
    end = records[1]
    assert end["connection-end-time"] == fmt(clock.now())
    assert end["connection-duration-seconds"] == "90"
    assert end["connection-attempt-status"] == "successful"
    assert connection.status == "terminated"
    assert connection.to_api()["ConnectionEndTime"] == fmt(clock.now())
    assert advance_connections(endpoint, clock.now() + timedelta(hours=1)) == []


def test_client_disconnects_after_its_planned_duration(endpoint: FakeEndpoint, clock: Clock) -> None:
    """duration_seconds ends the connection by itself once emulated time passes it."""
    connection = simulate_connect(endpoint, duration_seconds=420).connection
    assert connection is not None

    clock.advance(3600)
    records = advance_connections(endpoint)

    assert [record["connection-end-time"] for record in records] == [
        "NA",
        fmt(connection.established_at + timedelta(seconds=420)),
    ]
    assert records[-1]["connection-duration-seconds"] == "420"
    assert connection.status == "terminated"


def test_session_timeout_ends_the_connection(aws: None, clock: Clock) -> None:
    """SessionTimeoutHours disconnects a connection that nobody ends."""
    endpoint = FakeEndpoint(session_timeout_hours=8)
    connection = simulate_connect(endpoint).connection
    assert connection is not None

    clock.advance(9 * 3600)
    records = advance_connections(endpoint, update_interval_seconds=3600)

    assert len(records) == 8, "seven hourly updates, then the end record at 8 h"
    assert records[-1]["connection-end-time"] == fmt(connection.established_at + timedelta(hours=8))
    assert records[-1]["connection-duration-seconds"] == str(8 * 3600)


def test_terminated_connections_leave_the_listing_after_an_hour(endpoint: FakeEndpoint, clock: Clock) -> None:
    """DescribeClientVpnConnections shows terminated connections for 60 minutes only."""
    result = simulate_connect(endpoint)
    assert result.connection_id is not None
    simulate_disconnect(endpoint, result.connection_id)

    clock.advance(30 * 60)
    advance_connections(endpoint)
    assert result.connection_id in endpoint.connections
    clock.advance(31 * 60)
    advance_connections(endpoint)
    assert result.connection_id not in endpoint.connections


def test_disconnecting_an_unknown_connection_fails(endpoint: FakeEndpoint) -> None:
    with pytest.raises(UnknownClientVpnConnection):
        simulate_disconnect(endpoint, "cvpn-connection-00000000000000000")


def test_terminate_writes_the_missed_updates_first(endpoint: FakeEndpoint, clock: Clock) -> None:
    """A termination 11 minutes in logs the 5- and 10-minute updates before the end record."""
    connection = simulate_connect(endpoint).connection
    assert connection is not None

    clock.advance(11 * 60)
    connection.terminate()

    records = read_records()
    assert [record["connection-duration-seconds"] for record in records] == ["0", "300", "600", "660"]
    assert [record["connection-end-time"] == "NA" for record in records] == [True, True, True, False]


def test_terminating_after_the_session_timeout_finds_it_ended(aws: None, clock: Clock) -> None:
    """The session timeout ended the connection before the termination arrived: nothing left to end."""
    endpoint = FakeEndpoint(session_timeout_hours=8)
    connection = simulate_connect(endpoint).connection
    assert connection is not None
    advance_connections(endpoint, update_interval_seconds=3600)

    clock.advance(10 * 3600)
    status = connection.terminate()

    assert status["PreviousStatus"] == {"Code": "terminated"}
    assert read_records()[-1]["connection-end-time"] == fmt(connection.established_at + timedelta(hours=8))
    assert len(read_records()) == 9, "first record, seven hourly updates, end at 8 h"
