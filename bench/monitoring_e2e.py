"""Monitoring end to end through the local cloud: connection-log events in -> scheduled ingest -> findings
published. Figures only; nothing is asserted.

On a local cloud with template.yaml deployed, each scenario writes N connection-log events into a log
group of its own with PutLogEvents (a registered endpoint: the log group is named in the SSM parameter
``ConnectionLogGroupsParameter`` points at, so every scenario starts from no checkpoint and no detection
state), fires the ingest schedule and waits until the log group's checkpoint has consumed every event
(firing again while a run stopped short), and until the alert deliveries the findings started are
done.

The events are a realistic mix over the last 50 minutes (the ingest's first look-back is an hour):
57 % periodic re-logs of sessions that started hours ago, 20 % re-logs of sessions that started in
the window, 20 % new sessions, 2 % failed logins (typos) from the users' own addresses, 1 % three
attackers spraying passwords across the users. "base": 300 users on 300 source addresses; "wide": the
same users and number of events over 10x more addresses (3,000).

Printed:

1. Events per second end to end (first PutLogEvents -> every event consumed, findings on the bus) and
   of the ingest alone (schedule fired -> every event consumed).
2. AWS API calls per 10,000 events by service and operation, as the local cloud counted them
   (``LocalCloud.api_calls()``) while the ingest runs and the alert deliveries ran: the product's
   calls and the local scheduler's two (marked); the benchmark's own PutLogEvents and checkpoint
   reads are outside the counted spans.
3. DynamoDB writes per 10,000 events (every PutItem, UpdateItem, DeleteItem, BatchWriteItem and
   TransactWriteItems call), and the writes to the detection-state table alone (the growth of its
   items' versions) next to the entities it holds and the entities with a failure in the workload,
   in all and summed over detection batches (the ingest detects once per batch of consecutive pages,
   up to ``IngestSettings.detect_batch_events`` events: one detection pass, one write per entity).

Run: ``.venv/bin/python bench/monitoring_e2e.py [--events 10000 50000] [--help]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, Python puts bench/ first on sys.path; the repository root is what we import from.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# The shared layer, as Lambda puts it on the path (/opt/python).
if str(ROOT / "layers" / "shared" / "python") not in sys.path:
    sys.path.append(str(ROOT / "layers" / "shared" / "python"))

from bench.common import connection_log_line, logging_endpoint, progress, render_table  # noqa: E402
from cvpn.monitoring_demo import LocalMonitoring  # noqa: E402
from cvpn_shared.monitoring.ingest import IngestSettings  # noqa: E402
from localcloud.cloud import LocalCloud  # noqa: E402
from localcloud.stack import DeployedStack  # noqa: E402

__all__ = ["ScenarioFigures", "Workload", "build_events", "main", "report"]

LOG_GROUPS_PARAMETER = "cvpn-bench-connection-log-groups"
STACK_NAME = "cvpn-bench-monitoring"
WINDOW_MS = 50 * 60_000  # inside the ingest's first look-back (1 hour)
USERS = 300
ATTACKERS = 3
MAX_RUNS = 10
BATCH_EVENTS = IngestSettings().detect_batch_events  # events one detection pass takes at most
LAMBDA_INVOKE = re.compile(r"^lambda:POST /2015-03-31/functions/[^/]+/invocations$")
SCHEDULER_CALLS = "events:DescribeRule, lambda:Invoke"
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
# PutLogEvents limits: 10,000 events and 1,048,576 bytes (message bytes + 26 per event) a call.
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26


@dataclass(frozen=True)
class Workload:
    """One scenario's events: how many, over how many source addresses and users."""

    name: str
    events: int
    sources: int
    users: int = USERS

    @property
    def label(self) -> str:
        return f"{self.name} {self.events // 1000}k"


@dataclass
class ScenarioFigures:
    """What one scenario measured."""

    workload: Workload
    log_group: str
    put_seconds: float = 0.0
    ingest_seconds: float = 0.0
    runs: int = 0
    pages: int = 0
    events_processed: int = 0
    findings: int = 0
    failing_entities: int = 0
    failing_entities_by_page: int = 0
    api_calls: Counter[str] = field(default_factory=Counter)
    state_writes: int = 0
    state_entities: int = 0

    def per_10k(self, count: float) -> float:
        return count * 10_000 / self.workload.events

    @property
    def dynamodb_writes(self) -> int:
        return sum(self.api_calls.get(f"dynamodb:{op}", 0) for op in DYNAMODB_WRITES)

    @property
    def ingest_rate(self) -> float:
        return self.workload.events / self.ingest_seconds if self.ingest_seconds else 0.0

    @property
    def end_to_end_rate(self) -> float:
        total = self.put_seconds + self.ingest_seconds
        return self.workload.events / total if total else 0.0


# ------------------------------------------------------------------------------------------ workload
def _source(index: int) -> str:
    return f"10.{100 + index // 65025 % 100}.{index // 255 % 255}.{index % 255 + 1}"


def build_events(
    workload: Workload, endpoint_id: str, now_ms: int, seed: int = 7
) -> tuple[list[tuple[int, str]], list[tuple[str, ...]]]:
    """The scenario's (timestamp, message) events in time order over the ``WINDOW_MS`` before ``now_ms``,
    and for each event the entities (address, user) it is a failure of (none for a success)."""
    rng = random.Random(seed)
    attackers = [f"203.0.113.{66 + n}" for n in range(ATTACKERS)]
    live: list[tuple[str, int, str, str]] = []  # sessions started in the window: id, start, ip, user
    failing: list[tuple[str, ...]] = []  # per event: the entities it fails for
    events: list[tuple[int, str]] = []
    start_ms = now_ms - WINDOW_MS
    for number in range(workload.events):
        at = start_ms + number * WINDOW_MS // workload.events
        roll = rng.random()
        failed: tuple[str, ...] = ()
        connection_id = f"cvpn-connection-{number:017x}"
        if roll < 0.01:  # an attacker tries one user after another
            ip, user = rng.choice(attackers), f"user{rng.randrange(workload.users)}"
            message = connection_log_line(
                endpoint_id, connection_id, "failed", ip, user, "Authentication failed", None, at
            )
            failed = (ip, user)
        elif roll < 0.03:  # a user mistypes, from the user's own address
            source = rng.randrange(workload.sources)
            ip, user = _source(source), f"user{source % workload.users}"
            message = connection_log_line(
                endpoint_id, connection_id, "failed", ip, user, "Authentication failed", None, at
            )
            failed = (ip, user)
        elif roll < 0.23 or (roll < 0.43 and not live):  # a new session
            source = rng.randrange(workload.sources)
            ip, user = _source(source), f"user{source % workload.users}"
            live.append((connection_id, at, ip, user))
            message = connection_log_line(endpoint_id, connection_id, "successful", ip, user, "NA", at, at)
        elif roll < 0.43:  # a periodic re-log of a session that started in the window
            session_id, started, ip, user = rng.choice(live)
            message = connection_log_line(endpoint_id, session_id, "successful", ip, user, "NA", started, at)
        else:  # a periodic re-log of a session that started hours ago
            source = rng.randrange(workload.sources)
            ip, user = _source(source), f"user{source % workload.users}"
            started = now_ms - 3_600_000 * (1 + source % 8)
            session_id = f"cvpn-connection-{0xF0000000000000000 + source:017x}"
            message = connection_log_line(endpoint_id, session_id, "successful", ip, user, "NA", started, at)
        failing.append(failed)
        events.append((at, message))
    return events, failing


def _batches(events: list[tuple[int, str]]) -> list[list[dict[str, Any]]]:
    """PutLogEvents batches within the API's count and size limits."""
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for timestamp, message in events:
        cost = len(message.encode()) + EVENT_OVERHEAD_BYTES
        if len(batches[-1]) >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append({"timestamp": timestamp, "message": message})
        size += cost
    return [batch for batch in batches if batch]


# ------------------------------------------------------------------------------------------ the cloud
class MonitoringBench:
    """A local cloud with template.yaml deployed, the ingest reading the log groups of an SSM parameter."""

    def __init__(self) -> None:
        self.cloud = LocalCloud(time_scale=1.0)
        self.stack: DeployedStack | None = None
        self.watch: LocalMonitoring | None = None
        self.deploy_seconds = 0.0

    def __enter__(self) -> MonitoringBench:
        progress("monitoring e2e: starting the local cloud and deploying template.yaml")
        started = time.perf_counter()
        self.cloud.start()
        try:
            self.cloud.client("ssm").put_parameter(
                Name=LOG_GROUPS_PARAMETER, Value="none-yet", Type="StringList", Overwrite=True
            )
            self.stack = self.cloud.deploy(
                ROOT / "template.yaml",
                stack_name=STACK_NAME,
                parameter_overrides={
                    "IngestSchedule": "rate(7 days)",  # fired by the benchmark
                    "ConnectionLogGroupsParameter": LOG_GROUPS_PARAMETER,
                    "OidcIssuerUrl": "https://login.example.com/oauth2/default",
                    "OidcAudience": "cvpn-request-form",
                },
            )
            self.watch = LocalMonitoring(
                self.cloud, self.stack, "cvpn-endpoint-00000000000000000", "none-yet"
            )
        except BaseException:
            self.cloud.stop()
            raise
        self.deploy_seconds = time.perf_counter() - started
        return self

    def __exit__(self, *exc: object) -> None:
        self.cloud.stop()

    def run(self, workload: Workload, index: int) -> ScenarioFigures:
        assert self.stack is not None and self.watch is not None
        cloud, watch = self.cloud, self.watch
        log_group = f"/aws/clientvpn/bench-{index}-{workload.name}-{workload.events}"
        logs = cloud.client("logs")
        logs.create_log_group(logGroupName=log_group)
        # An endpoint of its own per scenario: its detection state starts empty.
        endpoint_id = logging_endpoint(cloud, log_group)
        figures = ScenarioFigures(workload, log_group)
        events, failing = build_events(workload, endpoint_id, cloud.clock.millis(), seed=index)
        figures.failing_entities = len({entity for entities in failing for entity in entities})
        figures.failing_entities_by_page = sum(
            len({entity for entities in failing[batch : batch + BATCH_EVENTS] for entity in entities})
            for batch in range(0, len(failing), BATCH_EVENTS)
        )
        logs.create_log_stream(logGroupName=log_group, logStreamName=endpoint_id)
        cloud.client("ssm").put_parameter(
            Name=LOG_GROUPS_PARAMETER, Value=log_group, Type="StringList", Overwrite=True
        )
        watch.log_group_name = log_group
        batches = _batches(events)
        progress(
            f"monitoring e2e: {workload.label}: {len(events)} events in {len(batches)} PutLogEvents calls"
        )

        started = time.perf_counter()
        for batch in batches:
            logs.put_log_events(logGroupName=log_group, logStreamName=endpoint_id, logEvents=batch)
        figures.put_seconds = time.perf_counter() - started

        while figures.runs < MAX_RUNS:
            before = cloud.api_calls()
            started = time.perf_counter()
            watch.run_ingest()
            figures.ingest_seconds += time.perf_counter() - started
            figures.runs += 1
            summaries = _ingest_summaries(watch)
            for group in summaries[-1].get("log_groups", []) if summaries else []:
                if group.get("log_group_name") == log_group:  # the run just finished (one at a time)
                    figures.pages += int(group.get("pages", 0))
                    figures.events_processed += int(group.get("events_processed", 0))
                    figures.findings += int(group.get("findings_published", 0))
            _settle(cloud)
            figures.api_calls.update(_delta(before, cloud.api_calls()))
            checkpoint = watch.checkpoint()
            if int(checkpoint.get("events_processed", 0)) >= workload.events and not checkpoint.get(
                "page_token"
            ):
                break
        figures.state_writes, figures.state_entities = self._detection_state(endpoint_id)
        return figures

    def _detection_state(self, endpoint_id: str) -> tuple[int, int]:
        """Writes to the detection-state table for the endpoint's entities (each successful write adds
        one to an item's version), and how many entities it holds."""
        assert self.stack is not None
        table = self.stack.physical_ids["DetectionStateTable"]
        dynamodb = self.cloud.client("dynamodb")
        writes = entities = 0
        params: dict[str, Any] = {"TableName": table, "ProjectionExpression": "pk, version"}
        while True:
            page = dynamodb.scan(**params)
            for item in page.get("Items", []):
                if item["pk"]["S"].startswith(endpoint_id):
                    writes += int(item["version"]["N"])
                    entities += 1
            if not page.get("LastEvaluatedKey"):
                return writes, entities
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _settle(cloud: LocalCloud, timeout: float = 120.0) -> None:
    """Wait until the asynchronous invocations the run started (alert deliveries) are done and no new
    one has started for a moment."""
    assert cloud.runtime is not None
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        cloud.runtime.wait_for_events(timeout=max(0.1, deadline - time.monotonic()))
        time.sleep(0.3)
        invocations = int(cloud.runtime.stats()["invocations"])
        if invocations == seen:
            return
        seen = invocations


def _named(calls: Counter[str]) -> Counter[str]:
    """The counts with REST keys that name a resource shortened (a Lambda invocation by its ARN ->
    ``lambda:Invoke``)."""
    named: Counter[str] = Counter()
    for key, count in calls.items():
        named[LAMBDA_INVOKE.sub("lambda:Invoke", key)] += count
    return named


def _delta(before: dict[str, int], after: dict[str, int]) -> Counter[str]:
    return Counter(
        {key: count - before.get(key, 0) for key, count in after.items() if count > before.get(key, 0)}
    )


def _ingest_summaries(watch: LocalMonitoring) -> list[dict[str, Any]]:
    """The ingest's report of each run (its "connection logs ingested" log lines), oldest first."""
    summaries = []
    for line in watch.ingest_logs().splitlines():
        start = line.find("{")
        if "connection logs ingested" in line and start >= 0:
            with contextlib.suppress(ValueError, KeyError):
                summaries.append(json.loads(line[start:])["ingest"])
    return summaries


# ------------------------------------------------------------------------------------------ report
def report(scenarios: list[ScenarioFigures], deploy_seconds: float) -> str:
    """The three tables and the one-line reading of the writes."""
    labels = [s.workload.label for s in scenarios]
    lines = [
        "Monitoring end to end on the local cloud (figures only; nothing is asserted)",
        f"  local cloud up with template.yaml deployed: {deploy_seconds:.1f} s",
        "",
        "1. Throughput: PutLogEvents -> scheduled ingest -> findings on the bus (wall seconds)",
        render_table(
            [
                "scenario",
                "events",
                "sources",
                "users",
                "write s",
                "ingest s",
                "runs",
                "pages",
                "ingest ev/s",
                "end-to-end ev/s",
                "findings",
            ],
            [
                [
                    s.workload.label,
                    s.workload.events,
                    s.workload.sources,
                    s.workload.users,
                    round(s.put_seconds, 2),
                    round(s.ingest_seconds, 2),
                    s.runs,
                    s.pages,
                    int(s.ingest_rate),
                    int(s.end_to_end_rate),
                    s.findings,
                ]
                for s in scenarios
            ],
        ),
        "",
        "2. AWS API calls per 10,000 events while the ingest and the alert deliveries ran",
    ]
    calls = [_named(s.api_calls) for s in scenarios]
    operations = sorted({op for named in calls for op in named})
    rows: list[list[object]] = [
        [op, *(round(s.per_10k(named.get(op, 0)), 1) for s, named in zip(scenarios, calls, strict=True))]
        for op in operations
    ]
    rows.append(["total", *(round(s.per_10k(sum(s.api_calls.values())), 1) for s in scenarios)])
    lines += [
        render_table(["service:Operation", *labels], rows),
        f"  {SCHEDULER_CALLS}: the local cloud's scheduler firing the schedule (on AWS, EventBridge's own)",
        "",
    ]
    lines += [
        "3. DynamoDB writes per 10,000 events, and the detection state's entities",
        render_table(
            ["", *labels],
            [
                [
                    "DynamoDB write calls (all tables)",
                    *(round(s.per_10k(s.dynamodb_writes), 1) for s in scenarios),
                ],
                ["detection-state writes", *(round(s.per_10k(s.state_writes), 1) for s in scenarios)],
                ["detection-state writes (total)", *(s.state_writes for s in scenarios)],
                ["entities stored (distinct)", *(s.state_entities for s in scenarios)],
                ["entities with a failure (workload)", *(s.failing_entities for s in scenarios)],
                [
                    f"  summed over {BATCH_EVENTS:,}-event detection batches",
                    *(s.failing_entities_by_page for s in scenarios),
                ],
                ["FilterLogEvents pages", *(s.pages for s in scenarios)],
                [
                    "writes per entity",
                    *(round(s.state_writes / max(1, s.state_entities), 2) for s in scenarios),
                ],
            ],
        ),
    ]
    lines += ["", *_reading(scenarios)]
    return "\n".join(lines)


def _reading(scenarios: list[ScenarioFigures]) -> list[str]:
    """One line per comparison: same entities more events; same events more entities."""
    by_label = {(s.workload.name, s.workload.events): s for s in scenarios}
    out = ["Reading (reported, not asserted; aim: DynamoDB writes grow with distinct entities, not events)"]
    counts = sorted({s.workload.events for s in scenarios})
    for name in sorted({s.workload.name for s in scenarios}):
        runs = [by_label[(name, n)] for n in counts if (name, n) in by_label]
        if len(runs) >= 2:
            small, large = runs[0], runs[-1]
            out.append(
                f"  {name}: {large.workload.events / small.workload.events:g}x the events ->"
                f" {large.state_writes / max(1, small.state_writes):.2f}x the detection-state writes"
                f" ({small.state_writes} -> {large.state_writes}; entities {small.state_entities} ->"
                f" {large.state_entities}, pages {small.pages} -> {large.pages})"
            )
    for events in counts:
        base, wide = by_label.get(("base", events)), by_label.get(("wide", events))
        if base and wide:
            out.append(
                f"  {events} events: {wide.workload.sources / base.workload.sources:g}x the sources ->"
                f" {wide.state_writes / max(1, base.state_writes):.2f}x the detection-state writes"
                f" ({base.state_writes} -> {wide.state_writes}; entities {base.state_entities} ->"
                f" {wide.state_entities})"
            )
    extra = ", ".join(f"{s.state_writes - s.failing_entities_by_page:+d}" for s in scenarios)
    out.append(
        "  detection-state writes = entities with a failure, summed over the detection batches (one"
        " detection pass per batch of pages),"
    )
    out.append(f"  plus the records of entities whose success follows an attack on record (R6): {extra}.")
    most = max(scenarios, key=lambda s: s.state_writes / max(1, s.state_entities))
    out.append(
        "  Writes follow distinct entities, not events: an entity failing on every page of a backlog is"
        f" written once per detection batch ({most.workload.label}:"
        f" {most.state_writes / max(1, most.state_entities):.2f} writes per entity over {most.pages} pages)."
    )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and print the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, nargs="+", default=[10_000, 50_000], help="events per scenario")
    parser.add_argument("--sources", type=int, default=300, help="source addresses of the base scenarios")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    started = time.perf_counter()
    workloads = [
        Workload(name, events, args.sources * factor)
        for events in args.events
        for name, factor in (("base", 1), ("wide", 10))
    ]
    with MonitoringBench() as bench:
        scenarios = [bench.run(workload, index) for index, workload in enumerate(workloads)]
        deploy_seconds = bench.deploy_seconds
    print(report(scenarios, deploy_seconds))
    print()
    print(f"(monitoring e2e bench ran {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
