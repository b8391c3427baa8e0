"""End to end on the local cloud, by counts only (no timing): the scheduled ingest's DynamoDB writes to
the detection-state table grow with the distinct entities a run sees, not with its events, and its
FilterLogEvents calls grow with the events read divided by the page size.

Detection-state writes are measured exactly by the table itself: every write is a conditional PutItem
that stores the item's version + 1, so the growth of the entities' versions is the number of writes
(the local cloud's API-call counter cannot tell tables apart, and the alert deliveries the findings
start write other tables at the same time). FilterLogEvents calls come from the local cloud's counter
(``LocalCloud.api_calls()``): only the ingest calls it.
"""

from __future__ import annotations

import contextlib
import json
import math
import uuid
from typing import Any

from cvpn.monitoring_demo import LocalMonitoring
from cvpn_shared.monitoring.entities import entity_key

# FilterLogEvents answers at most 10,000 events a page (the ingest asks for no smaller page).
PAGE_SIZE = 10_000
SOURCES = [f"198.18.7.{n + 1}" for n in range(10)]
USERS = [f"counted-user-{n}" for n in range(10)]  # user n fails from SOURCES[n]: 20 entities


def failure_record(endpoint_id: str, user: str, device_ip: str) -> str:
    return json.dumps(
        {
            "connection-log-type": "connection-attempt",
            "connection-attempt-status": "failed",
            "connection-reset-status": "NA",
            "connection-attempt-failure-reason": "Authentication failed",
            "connection-id": f"cvpn-connection-{uuid.uuid4().hex[:17]}",
            "client-vpn-endpoint-id": endpoint_id,
            "transport-protocol": "udp",
            "connection-start-time": "NA",
            "connection-last-update-time": "NA",
            "client-ip": "NA",
            "common-name": "NA",
            "device-type": "mac",
            "device-ip": device_ip,
            "port": "50096",
            "ingress-bytes": "0",
            "egress-bytes": "0",
            "ingress-packets": "0",
            "egress-packets": "0",
            "connection-end-time": "NA",
            "username": user,
        }
    )


def put_failures(monitoring: LocalMonitoring, stream: str, count: int) -> None:
    """``count`` failed logins spread over the 10 (source, user) pairs, each a connection of its own,
    written after everything the ingest has already read (so they are the newest events of the scan)."""
    logs = monitoring.cloud.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=monitoring.log_group_name, logStreamName=stream)
    read_up_to = int(monitoring.checkpoint().get("position_ms", 0))
    start = max(monitoring.cloud.clock.millis() - 60_000, read_up_to + 1)
    events = [
        {
            "timestamp": start + n // 10,  # 10 a millisecond: a few seconds, never ahead of the clock
            "message": failure_record(monitoring.endpoint_id, USERS[n % 10], SOURCES[n % 10]),
        }
        for n in range(count)
    ]
    for offset in range(0, count, 1000):
        batch = events[offset : offset + 1000]
        answer = logs.put_log_events(
            logGroupName=monitoring.log_group_name, logStreamName=stream, logEvents=batch
        )
        assert "rejectedLogEventsInfo" not in answer, answer


def detection_state_versions(monitoring: LocalMonitoring) -> int:
    """The sum of the 20 entities' record versions (0 for a record not written yet)."""
    keys = [entity_key(monitoring.endpoint_id, "device_ip", ip) for ip in SOURCES]
    keys += [entity_key(monitoring.endpoint_id, "user", user) for user in USERS]
    answer = monitoring.cloud.client("dynamodb").batch_get_item(
        RequestItems={
            monitoring.stack.physical_ids["DetectionStateTable"]: {
                "Keys": [{"pk": {"S": key}} for key in keys],
                "ConsistentRead": True,
                "ProjectionExpression": "version",
            }
        }
    )
    return sum(int(item["version"]["N"]) for items in answer["Responses"].values() for item in items)


def last_run(monitoring: LocalMonitoring) -> dict[str, Any]:
    """What the latest ingest run reported for the endpoint's log group (its "connection logs
    ingested" log line)."""
    for line in reversed(monitoring.ingest_logs().splitlines()):
        start = line.find("{")
        if "connection logs ingested" in line and start >= 0:
            groups = json.loads(line[start:])["ingest"]["log_groups"]
            return next(g for g in groups if g["log_group_name"] == monitoring.log_group_name)
    raise AssertionError("no ingest run reported")


def ingest_counted(monitoring: LocalMonitoring) -> tuple[int, int, dict[str, Any]]:
    """One scheduled ingest run: (detection-state writes, FilterLogEvents calls, the run's report)."""
    versions = detection_state_versions(monitoring)
    monitoring.cloud.reset_api_calls()
    monitoring.run_ingest()
    filter_calls = monitoring.cloud.api_calls().get("logs:FilterLogEvents", 0)
    return detection_state_versions(monitoring) - versions, filter_calls, last_run(monitoring)


def test_ten_times_the_events_from_the_same_entities_write_no_more_detection_state(
    monitoring: LocalMonitoring,
) -> None:
    """Given 10 sources each failing for its own user (20 entities), when one run ingests 500 of their
    failures and a later run 5,000 more, then each run writes each entity's record once: the 10x run
    writes no more than 2 records beyond the 500-event run (and never one per event)."""
    monitoring.run_ingest()  # whatever earlier tests left is read first

    put_failures(monitoring, "counted-500", 500)
    writes_500, filter_500, run_500 = ingest_counted(monitoring)
    put_failures(monitoring, "counted-5000", 5000)
    writes_5000, filter_5000, run_5000 = ingest_counted(monitoring)

    assert run_500["events_processed"] == 500 and run_5000["events_processed"] == 5000
    assert run_500["pages"] == run_5000["pages"] == 1, "each run is one page, so one detection pass"
    assert writes_500 == 20, "one write per entity"
    assert writes_5000 <= writes_500 + 2, (writes_500, writes_5000)
    assert filter_500 == filter_5000 == 1


def test_filter_log_events_calls_grow_with_events_over_the_page_size(monitoring: LocalMonitoring) -> None:
    """Given the events a run re-reads (the 15-minute overlap) and then 300 new ones, and then enough new
    ones for more than a page, when each batch is ingested in one run, then the FilterLogEvents calls
    counted are the pages the run reports, one per 10,000 events read: the second run takes 2.

    The new events stay below what the ingest remembers of the overlap (16,000 event ids): more would
    raise its floor and hide the later tests' late events (by design, see ``SeenEvents.trim``)."""
    monitoring.run_ingest()
    monitoring.run_ingest()  # reads only what it has read before: the overlap it re-reads each run
    overlap = last_run(monitoring)["events_read"]
    assert overlap + 300 < PAGE_SIZE, f"{overlap} events re-read: run this before a backlog test"
    counted = []
    for stream, count in (("counted-pages-a", 300), ("counted-pages-b", PAGE_SIZE + 1 - overlap - 300)):
        put_failures(monitoring, stream, count)
        _, filter_calls, run = ingest_counted(monitoring)
        assert run["events_processed"] == count and run["complete"]
        assert filter_calls == run["pages"] == max(1, math.ceil(run["events_read"] / PAGE_SIZE)), run
        counted.append((run["events_read"], filter_calls))

    assert counted == [(overlap + 300, 1), (PAGE_SIZE + 1, 2)]
