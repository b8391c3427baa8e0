"""Connection-log parsing and detection: throughput against bare ``json.loads``, memory, state writes.

Figures (nothing asserted). The aim: parse + detect at least half as fast as bare
``json.loads`` (a ratio of at least 0.5) on the mixed workload, in warm runs of every size - the
steady state of the scheduled ingest. The attack workload is the worst case, reported beside it: every
event there is a failure that costs rule work for its source and its user, and a flood of tens of
thousands of failures a minute costs one record write per attacking address or user per run, so it
stays well below the aim (about 0.06 in 1,400-event runs to 0.25 in 50,000-event runs) while the
ingest it feeds is bound by DynamoDB writes anyway.

1. Throughput: events/s of ``parse_events`` + ``Detector.observe`` over the same lines as a loop of
   bare ``json.loads``, in the same process, best of ``--repeats``; the ratio of the two. Times are
   process CPU time (``time.process_time``), so other load on the machine skews the ratio less (it
   still does: run it on an idle machine). The detector runs in ingestion runs of ``--run-size``
   events (default: the ingest's ``detect_batch_events``, what one detection pass takes when there is
   a backlog, the case where throughput matters) against the in-memory state store (which serialises
   records to JSON like a real store; no network), with one ``RecordCache`` across the runs, as the
   scheduled ingest has in a warm Lambda.
   Then the ratio by run size, with the cache (warm) and without (every run reads every entity):
   1,400 events (about one 1-MB FilterLogEvents page: what a run holds when the schedule keeps up),
   10,000 (the most one page holds) and the batch bound.
2. Memory: tracemalloc peak of parsing and detecting 100,000 events from 5,000 distinct sources in
   one run (the parsed attempts held, as ``parse_events`` returns them), above what the lines take.
3. State writes: records written (DynamoDB PutItem) and read per 10,000 events.

Two workloads: "mixed" (successes and their periodic re-logs, typos, 1 % of sources attacking) and
"attack" (every event a failure: 5,000 sources each failing for many users, the worst case).

Run: ``.venv/bin/python bench/monitoring_parse_detect.py [--events 100000] [--sources 5000]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The shared layer is what Lambda puts on the path as /opt/python; here it is the repository's copy.
for _path in (ROOT, ROOT / "layers" / "shared" / "python"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench.common import connection_log_line  # noqa: E402
from cvpn_shared.monitoring.attempts import parse_events  # noqa: E402
from cvpn_shared.monitoring.detection.detector import DetectionSettings, Detector, InMemoryDetectionState  # noqa: E402
from cvpn_shared.monitoring.detection.record_cache import RecordCache  # noqa: E402
from cvpn_shared.monitoring.ingest import IngestSettings  # noqa: E402

__all__ = ["MonitoringFigures", "main", "measure_monitoring", "report_monitoring"]

ENDPOINT_ID = "cvpn-endpoint-0123456789abcdef0"
START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SPAN_SECONDS = 3600
SESSION_SECONDS = 1200  # the mixed workload's sessions: 20 minutes, then the user connects again


@dataclass(frozen=True)
class WorkloadFigures:
    """One workload's figures."""

    name: str
    events: int
    sources: int
    failures: int
    loads_per_second: float
    parse_per_second: float
    detect_per_second: float  # parse + detect
    detect_only_per_second: float  # Detector.observe alone, on parsed attempts
    findings: int
    writes_per_10k: float
    reads_per_10k: float
    peak_mb: float
    lines_mb: float

    @property
    def ratio(self) -> float:
        """parse + detect against bare json.loads: the aim is at least 0.5."""
        return self.detect_per_second / self.loads_per_second

    @property
    def parse_ratio(self) -> float:
        """parse_events alone against bare json.loads."""
        return self.parse_per_second / self.loads_per_second


@dataclass(frozen=True)
class RunSizeRatio:
    """parse + detect against json.loads for one workload, run size and cache state."""

    workload: str
    run_size: int
    warm: bool
    ratio: float


@dataclass(frozen=True)
class MonitoringFigures:
    workloads: list[WorkloadFigures]
    run_size: int
    by_run_size: list[RunSizeRatio]


BATCH_EVENTS = IngestSettings().detect_batch_events
RUN_SIZES = (1_400, 10_000, BATCH_EVENTS)


def _record(
    connection_id: str,
    status: str,
    device_ip: str,
    user: str,
    reason: str,
    started: datetime | None,
    at: datetime,
) -> str:
    return connection_log_line(
        endpoint_id=ENDPOINT_ID,
        connection_id=connection_id,
        status=status,
        device_ip=device_ip,
        user=user,
        reason=reason,
        started_ms=None if started is None else int(started.timestamp() * 1000),
        at_ms=int(at.timestamp() * 1000),
    )


def _source(index: int) -> str:
    return f"198.{18 + index // 65025 % 2}.{index // 255 % 255}.{index % 255 + 1}"


def _session(index: int, at: datetime) -> tuple[str, datetime]:
    """The session a source holds at ``at``: sessions last ``SESSION_SECONDS`` and follow one another
    (each source's phase differs); every re-log of one carries its connection id and start time."""
    elapsed = int((at - START).total_seconds()) + index * 7919 % SESSION_SECONDS
    segment, into = divmod(elapsed, SESSION_SECONDS)
    return f"cvpn-connection-s{index:08d}{segment:08d}", at - timedelta(seconds=into)


def build_workload(name: str, events: int, sources: int, seed: int = 7) -> list[dict[str, Any]]:
    """Log events as FilterLogEvents returns them, in timestamp order."""
    rng = random.Random(seed)
    out: list[tuple[int, str]] = []
    attackers = max(1, sources // 100)
    for number in range(events):
        at = START + timedelta(seconds=SPAN_SECONDS * number / events)
        index = number % sources
        ip = _source(index)
        if name == "attack":
            user = f"user{rng.randrange(200)}"
            message = _record(
                f"cvpn-connection-{number:017d}", "failed", ip, user, "authentication-failed", None, at
            )
        elif index < attackers:  # brute force and spray from 1 % of the sources
            user = f"user{rng.randrange(50)}"
            message = _record(
                f"cvpn-connection-{number:017d}", "failed", ip, user, "authentication-failed", None, at
            )
        else:
            roll = rng.random()
            user = f"user{index % 3000}"
            if roll < 0.08:  # a typo
                message = _record(
                    f"cvpn-connection-{number:017d}", "failed", ip, user, "authentication-failed", None, at
                )
            elif roll < 0.12:
                message = _record(
                    f"cvpn-connection-{number:017d}", "waiting-for-assertion", ip, user, "NA", None, at
                )
            else:  # a session, logged again every few minutes with its connection id and start time
                connection_id, started = _session(index, at)
                message = _record(connection_id, "successful", ip, user, "NA", started, at)
        out.append((int(at.timestamp() * 1000), message))
    return [
        {"eventId": f"{number:056d}", "timestamp": timestamp, "message": message}
        for number, (timestamp, message) in enumerate(out)
    ]


def _time_loads(events: list[dict[str, Any]]) -> float:
    loads = json.loads
    started = time.process_time()
    for event in events:
        loads(event["message"])
    return time.process_time() - started


def _time_parse(events: list[dict[str, Any]]) -> float:
    started = time.process_time()
    parse_events(events)
    return time.process_time() - started


def _time_detection(
    events: list[dict[str, Any]], run_size: int, settings: DetectionSettings, *, warm: bool = True
) -> tuple[float, float, int, InMemoryDetectionState]:
    """CPU seconds of parse + detect over all runs, and of the detection (``observe``) alone."""
    store = InMemoryDetectionState()
    cache = RecordCache() if warm else None
    findings = 0
    detecting = 0.0
    clock = time.process_time
    started = clock()
    for offset in range(0, len(events), run_size):
        batch = events[offset : offset + run_size]
        attempts, _ = parse_events(batch)
        now = datetime.fromtimestamp(batch[-1]["timestamp"] / 1000, UTC)
        detect_started = clock()
        result = Detector(settings, store, cache=cache).observe(attempts, now=now)
        detecting += clock() - detect_started
        findings += len(result.findings)
    return clock() - started, detecting, findings, store


def _peak_memory(events: list[dict[str, Any]], settings: DetectionSettings) -> float:
    """Peak MB traced while parsing and detecting all events in one run (lines excluded)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    attempts, _ = parse_events(events)
    now = datetime.fromtimestamp(events[-1]["timestamp"] / 1000, UTC)
    Detector(settings, InMemoryDetectionState()).observe(attempts, now=now)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 1e6


def _lines_mb(events: list[dict[str, Any]]) -> float:
    return sum(sys.getsizeof(event["message"]) for event in events) / 1e6


def measure_workload(
    name: str, events: int, sources: int, run_size: int, repeats: int, settings: DetectionSettings
) -> WorkloadFigures:
    log_events = build_workload(name, events, sources)
    loads_seconds = min(_time_loads(log_events) for _ in range(repeats))
    parse_seconds = min(_time_parse(log_events) for _ in range(repeats))
    best = None
    for _ in range(repeats):
        gc.collect()
        timed = _time_detection(log_events, run_size, settings)
        if best is None or timed[0] < best[0]:
            best = timed
    assert best is not None
    seconds, detect_seconds, findings, store = best
    attempts, _ = parse_events(log_events)
    return WorkloadFigures(
        name=name,
        events=events,
        sources=len({attempt.device_ip for attempt in attempts}),
        failures=sum(1 for attempt in attempts if attempt.is_failure),
        loads_per_second=events / loads_seconds,
        parse_per_second=events / parse_seconds,
        detect_per_second=events / seconds,
        detect_only_per_second=events / detect_seconds,
        findings=findings,
        writes_per_10k=store.writes * 10_000 / events,
        reads_per_10k=store.reads * 10_000 / events,
        peak_mb=_peak_memory(log_events, settings),
        lines_mb=_lines_mb(log_events),
    )


def measure_run_sizes(
    name: str, events: int, sources: int, repeats: int, settings: DetectionSettings
) -> list[RunSizeRatio]:
    """The ratio for each of ``RUN_SIZES``, warm and cold."""
    log_events = build_workload(name, events, sources)
    loads_seconds = min(_time_loads(log_events) for _ in range(repeats))
    ratios = []
    for run_size in RUN_SIZES:
        for warm in (True, False):
            seconds = min(
                _time_detection(log_events, run_size, settings, warm=warm)[0] for _ in range(repeats)
            )
            ratios.append(RunSizeRatio(name, run_size, warm, loads_seconds / seconds))
    return ratios


def measure_monitoring(
    *, events: int = 100_000, sources: int = 5_000, run_size: int = BATCH_EVENTS, repeats: int = 3
) -> MonitoringFigures:
    """Both workloads' figures."""
    settings = DetectionSettings()
    names = ("mixed", "attack")
    return MonitoringFigures(
        [measure_workload(name, events, sources, run_size, repeats, settings) for name in names],
        run_size,
        [ratio for name in names for ratio in measure_run_sizes(name, events, sources, repeats, settings)],
    )


def report_monitoring(figures: MonitoringFigures) -> str:
    """The figures as plain text."""
    lines = [
        "Connection-log parsing and detection (in-memory state; CPU time, best of the repeats)",
        "",
        f"  {'workload':<8} {'events':>8} {'sources':>8} {'failures':>9} {'json.loads/s':>13} "
        f"{'parse/s':>9} {'(ratio)':>7} {'detect/s':>9} {'parse+detect/s':>15} {'ratio':>6} {'findings':>9} "
        f"{'writes/10k':>11} "
        f"{'reads/10k':>10} {'peak MB':>8} {'lines MB':>9}",
    ]
    for w in figures.workloads:
        lines.append(
            f"  {w.name:<8} {w.events:>8} {w.sources:>8} {w.failures:>9} {w.loads_per_second:>13,.0f} "
            f"{w.parse_per_second:>9,.0f} {w.parse_ratio:>7.2f} {w.detect_only_per_second:>9,.0f} "
            f"{w.detect_per_second:>15,.0f} {w.ratio:>6.2f} {w.findings:>9} "
            f"{w.writes_per_10k:>11.0f} {w.reads_per_10k:>10.0f} {w.peak_mb:>8.1f} {w.lines_mb:>9.1f}"
        )
    lines += [
        "",
        "  ratio = (parse+detect events/s) / (json.loads events/s); aim >= 0.50 for mixed, warm, "
        f"at every run size. Runs of {figures.run_size:,} events, warm;",
        "  parse/s = parse_events alone (all events at once; (ratio) against json.loads); detect/s =",
        "  Detector.observe alone (its share of the parse+detect runs).",
        "  writes/10k = entity records written (one conditional PutItem each) per 10,000 events;",
        "  peak MB = tracemalloc peak of parse + detect of all events in one run, attempts held,",
        "  lines excluded.",
        "",
        "  ratio by run size (events per detection pass; warm = RecordCache kept across runs, cold = none)",
        "",
        f"  {'workload':<8} "
        + " ".join(f"{f'{size:,} warm':>13} {f'{size:,} cold':>13}" for size in RUN_SIZES),
    ]
    for name in dict.fromkeys(ratio.workload for ratio in figures.by_run_size):
        row = {(r.run_size, r.warm): r.ratio for r in figures.by_run_size if r.workload == name}
        lines.append(
            f"  {name:<8} "
            + " ".join(f"{row[(size, True)]:>13.2f} {row[(size, False)]:>13.2f}" for size in RUN_SIZES)
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--sources", type=int, default=5_000)
    parser.add_argument(
        "--run-size",
        type=int,
        default=BATCH_EVENTS,
        help="events per detection pass (the ingest's batch bound)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    figures = measure_monitoring(
        events=args.events, sources=args.sources, run_size=args.run_size, repeats=args.repeats
    )
    print(report_monitoring(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
