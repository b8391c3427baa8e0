"""End to end on the local cloud: the scheduled ingest processes every connection-log event exactly
once - late events within the overlap, re-reads, a 50,000-event backlog written straight into a log
group (its own: what the ingest remembers of it stays out of the other tests), and two runs fired at
once. ``events_processed`` in the log group's checkpoint counts the events a run took as new, so its
growth is the measure."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from datetime import timedelta

from cvpn.monitoring_demo import LocalMonitoring
from tests.fixtures.connection_logs import successful_record


def success_record(endpoint_id: str, user: str, device_ip: str, at: str) -> str:
    return json.dumps(
        successful_record(
            **{
                "connection-id": f"cvpn-connection-{uuid.uuid4().hex[:17]}",
                "client-vpn-endpoint-id": endpoint_id,
                "connection-start-time": at,
                "connection-last-update-time": at,
                "client-ip": "172.16.0.9",
                "device-ip": device_ip,
                "username": user,
            }
        )
    )


def put_events(monitoring: LocalMonitoring, stream: str, timestamps_ms: list[int], batch: int = 2000) -> None:
    """Write records straight into the endpoint's log group (PutLogEvents, at most ``batch`` a call)."""
    logs = monitoring.cloud.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=monitoring.log_group_name, logStreamName=stream)
    for start in range(0, len(timestamps_ms), batch):
        chunk = sorted(timestamps_ms[start : start + batch])
        events = [
            {
                "timestamp": ts,
                "message": success_record(
                    monitoring.endpoint_id,
                    f"user{(start + i) % 20}",
                    f"198.51.100.{(start + i) % 20 + 100}",
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts / 1000)),
                ),
            }
            for i, ts in enumerate(chunk)
        ]
        answer = logs.put_log_events(
            logGroupName=monitoring.log_group_name, logStreamName=stream, logEvents=events
        )
        assert "rejectedLogEventsInfo" not in answer, answer


def run_summaries(monitoring: LocalMonitoring) -> list[dict]:
    """The ingest's own report of each run (its "connection logs ingested" log lines), oldest first."""
    summaries = []
    for line in monitoring.ingest_logs().splitlines():
        start = line.find("{")
        if "connection logs ingested" in line and start >= 0:
            try:
                summaries.append(json.loads(line[start:])["ingest"])
            except (ValueError, KeyError):
                continue
    return summaries


def pages_read(summaries: list[dict], log_group_name: str) -> int:
    return sum(
        g["pages"] for s in summaries for g in s["log_groups"] if g["log_group_name"] == log_group_name
    )


def processed(monitoring: LocalMonitoring) -> int:
    return int(monitoring.checkpoint().get("events_processed", 0))


def emulated_now_ms(monitoring: LocalMonitoring) -> int:
    return monitoring.cloud.clock.millis()


def test_late_events_within_the_overlap_are_read_once_and_reruns_repeat_nothing(
    monitoring: LocalMonitoring,
) -> None:
    """Given a log group read up to now, when an event arrives 10 minutes late (inside the 15-minute
    overlap) and another 40 minutes late, then the next run takes only the first; running again takes
    nothing (every re-read event is dropped by its id)."""
    monitoring.connect("grace", "198.51.100.50")
    monitoring.run_ingest()
    position = int(monitoring.checkpoint()["position_ms"])
    before = processed(monitoring)

    put_events(monitoring, "late-arrivals", [position - 10 * 60_000])
    put_events(monitoring, "very-late-arrivals", [position - 40 * 60_000])
    monitoring.run_ingest()
    assert processed(monitoring) == before + 1

    monitoring.run_ingest()
    assert processed(monitoring) == before + 1


def test_two_runs_fired_at_once_take_each_new_event_once(monitoring: LocalMonitoring) -> None:
    """Given 300 new events, when the schedule fires twice at the same moment, then the two runs
    together take each event exactly once (one run at a time: reserved concurrency 1; the checkpoint's
    lease and version behind it)."""
    monitoring.run_ingest()
    before = processed(monitoring)
    now = emulated_now_ms(monitoring)
    put_events(monitoring, "burst", [now - 60_000 + i * 100 for i in range(300)])

    monitoring.run_ingest(times=2)

    assert processed(monitoring) == before + 300
    checkpoint = monitoring.checkpoint()
    assert not checkpoint.get("page_token") and checkpoint["lease_until_ms"] == 0


def test_a_50000_event_backlog_is_read_completely_and_once(own_log_group: LocalMonitoring) -> None:
    """Given 50,000 events written in batches into a log group of this test's own (an outage's worth),
    when the schedule fires, then the runs page through all of them (5+ pages of 10,000) and take each
    exactly once; a further run takes nothing."""
    monitoring = own_log_group
    monitoring.run_ingest()
    before = processed(monitoring)
    now = emulated_now_ms(monitoring)
    window = int(timedelta(minutes=10).total_seconds() * 1000)
    timestamps = [now - window + (i * window) // 50_000 for i in range(50_000)]
    put_events(monitoring, "backlog", timestamps)

    runs_before = len(run_summaries(monitoring))
    started = time.monotonic()
    monitoring.run_ingest()
    for _ in range(5):  # a run that stopped at its deadline is resumed by the next ones
        if not monitoring.checkpoint().get("page_token"):
            break
        monitoring.run_ingest()
    elapsed = time.monotonic() - started

    assert processed(monitoring) == before + 50_000, f"after {elapsed:.1f} s"
    assert pages_read(run_summaries(monitoring)[runs_before:], monitoring.log_group_name) >= 5
    monitoring.run_ingest()
    assert processed(monitoring) == before + 50_000
