"""End to end on the local cloud, by counts only (no timing): the scheduled ingest's DynamoDB writes to
the detection-state table grow with the distinct entities a run sees, not with its events nor with the
FilterLogEvents pages they take, and its FilterLogEvents calls grow with the events read divided by the
page size.

Detection-state writes are measured exactly by the table itself: every write is a conditional PutItem
that stores the item's version + 1, so the growth of the entities' versions is the number of writes
(the local cloud's API-call counter cannot tell tables apart, and the alert deliveries the findings
start write other tables at the same time). FilterLogEvents calls come from the local cloud's counter
(``LocalCloud.api_calls()``): only the ingest calls it, one call a page of any log group it read.

Each test writes into a log group of its own (``own_log_group``), so what the ingest re-reads there
owes nothing to the tests that ran before.
"""

from __future__ import annotations

import contextlib
import json
import math
import uuid
from typing import Any

from cvpn.monitoring_demo import LocalMonitoring
from cvpn_shared.monitoring.detection.entities import entity_key
from tests.fixtures.connection_logs import failed_record

# FilterLogEvents answers at most 10,000 events a page (the ingest asks for no smaller page).
PAGE_SIZE = 10_000
SOURCES = [f"198.18.7.{n + 1}" for n in range(10)]
USERS = [f"counted-user-{n}" for n in range(10)]  # user n fails from SOURCES[n]: 20 entities


def failure_record(endpoint_id: str, user: str, device_ip: str) -> str:
    return json.dumps(
        failed_record(
            **{
                "connection-attempt-failure-reason": "Authentication failed",
                "connection-id": f"cvpn-connection-{uuid.uuid4().hex[:17]}",
                "client-vpn-endpoint-id": endpoint_id,
                "connection-last-update-time": "NA",
                "common-name": "NA",
                "device-ip": device_ip,
                "username": user,
            }
        )
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


def last_run(monitoring: LocalMonitoring) -> list[dict[str, Any]]:
    """What the latest ingest run reported for each log group (its "connection logs ingested" log line)."""
    for line in reversed(monitoring.ingest_logs().splitlines()):
        start = line.find("{")
        if "connection logs ingested" in line and start >= 0:
            groups: list[dict[str, Any]] = json.loads(line[start:])["ingest"]["log_groups"]
            return groups
    raise AssertionError("no ingest run reported")


def ingest_counted(monitoring: LocalMonitoring) -> tuple[int, int, dict[str, Any]]:
    """One scheduled ingest run: (detection-state writes, FilterLogEvents calls, the run's report of
    ``monitoring``'s log group). Every call is a page of a log group the run read."""
    versions = detection_state_versions(monitoring)
    monitoring.cloud.reset_api_calls()
    monitoring.run_ingest()
    filter_calls = monitoring.cloud.api_calls().get("logs:FilterLogEvents", 0)
    groups = last_run(monitoring)
    assert filter_calls == sum(group["pages"] for group in groups), groups
    run = next(group for group in groups if group["log_group_name"] == monitoring.log_group_name)
    return detection_state_versions(monitoring) - versions, run["pages"], run


def test_ten_times_the_events_from_the_same_entities_write_no_more_detection_state(
    own_log_group: LocalMonitoring,
) -> None:
    """Given 10 sources each failing for its own user (20 entities), when one run ingests 500 of their
    failures and a later run 5,000 more, then each run writes each entity's record once: the 10x run
    writes no more than 2 records beyond the 500-event run (and never one per event)."""
    put_failures(own_log_group, "counted-500", 500)
    writes_500, pages_500, run_500 = ingest_counted(own_log_group)
    put_failures(own_log_group, "counted-5000", 5000)
    writes_5000, pages_5000, run_5000 = ingest_counted(own_log_group)

    assert run_500["events_processed"] == 500 and run_5000["events_processed"] == 5000
    assert pages_500 == pages_5000 == 1
    assert writes_500 == 20, "one write per entity"
    assert writes_5000 <= writes_500 + 2, (writes_500, writes_5000)


def test_a_backlog_of_several_pages_writes_each_entity_once(own_log_group: LocalMonitoring) -> None:
    """Given 25,000 failures of the same 20 entities waiting in the log group (three FilterLogEvents
    pages), when one run ingests them, then it detects once over the three pages: each entity's record
    is written once, as for a one-page run."""
    count = 2 * PAGE_SIZE + 5000
    put_failures(own_log_group, "counted-backlog", count)

    writes, pages, run = ingest_counted(own_log_group)

    assert run["events_processed"] == count and run["complete"], run
    assert pages == 3
    assert writes == 20, f"{writes} detection-state writes for 20 entities over {pages} pages"


def test_filter_log_events_calls_grow_with_events_over_the_page_size(own_log_group: LocalMonitoring) -> None:
    """Given 300 new events, and then enough new ones that with those the run re-reads (the 15-minute
    overlap) they fill more than a page, when each batch is ingested in one run, then the
    FilterLogEvents calls are the pages the run reports, one per 10,000 events read: the second run
    takes 2."""
    put_failures(own_log_group, "counted-pages-a", 300)
    _, pages, run = ingest_counted(own_log_group)
    assert run["events_processed"] == 300 and run["complete"] and pages == 1

    overlap = 300  # the second run reads the first run's events again, then the new ones
    put_failures(own_log_group, "counted-pages-b", PAGE_SIZE + 1 - overlap)
    _, pages, run = ingest_counted(own_log_group)
    assert run["events_processed"] == PAGE_SIZE + 1 - overlap and run["complete"]
    assert (run["events_read"], pages) == (PAGE_SIZE + 1, 2)
    assert pages == math.ceil(run["events_read"] / PAGE_SIZE)
