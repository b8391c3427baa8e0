"""Attack to alert: emulated seconds from the first line of an attack in a watched log group to the
alert on the alerts topic, with template.yaml deployed as it ships (``IngestSchedule`` rate(1 minute)).
Figures only; nothing is asserted (tests/monitoring/e2e/test_attack_to_alert.py asserts the bound).

The stack is deployed with its default parameters; its endpoint is registered the way provisioning
registers one (a SUCCEEDED request carrying its connection log group, which the ingest reads through
the requests table's index), and an SQS queue subscribed to the alerts topic is the operator's inbox.
Then, at the time scale given, each run:

1. waits for the ingest schedule to fire, then for ``offset`` more seconds (the runs' offsets spread
   over the schedule's period: where in the minute an attack starts decides how long it waits);
2. at emulated T0 writes the first failed login of a password spray (PutLogEvents, the connection-log
   format, timestamp T0) and goes on as a spray does: one more user every ``pace`` seconds, from the
   same address, until the alert arrives;
3. stops the clock on the first HIGH alert naming the attacker's address in the inbox (polled every
   few emulated tenths of a second).

Printed per run: when the threshold was crossed (the fifth user, R4: 5 users from one address in 10
minutes), the wait for the next scheduled run, the run-to-alert time (ingest, findings bus, alert
function, SNS) and the total; then min / median / max against the aim. The local cloud runs the
functions in real time, so at time scale N every real second of ingest and delivery counts N emulated
seconds: the run-to-alert column is that, and the real seconds are printed next to it.

Run: ``.venv/bin/python bench/attack_to_alert.py [--time-scale 10] [--runs 5] [--pace 3]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from cvpn.monitoring_demo import INGEST_SCHEDULE, LocalMonitoring, Mailbox  # noqa: E402
from cvpn_shared.provisioning.dal.requests_table import RequestRecords  # noqa: E402
from localcloud.cloud import LocalCloud  # noqa: E402
from localcloud.stack import DeployedStack  # noqa: E402

__all__ = [
    "AIM_SECONDS",
    "AttackRun",
    "WatchedStack",
    "alert_about",
    "deploy_watched_stack",
    "main",
    "spray_attempt",
]

AIM_SECONDS = 90.0
STACK_NAME = "cvpn-attack-to-alert"
LOG_STREAM = "attack-to-alert"
LOG_GROUP = "/aws/clientvpn/attack-to-alert"
FAILURE_REASON = "Authentication failed"  # Active Directory credential failures carry free text
POLL_REAL_SECONDS = 0.02
RUN_TIMEOUT_EMULATED_SECONDS = 600.0


@dataclass
class WatchedStack:
    """template.yaml deployed with its defaults, one endpoint's log group watched, the alerts inbox."""

    cloud: LocalCloud
    stack: DeployedStack
    monitoring: LocalMonitoring

    @property
    def endpoint_id(self) -> str:
        """The endpoint whose connection logging writes to the watched log group."""
        return self.monitoring.endpoint_id

    @property
    def inbox(self) -> Mailbox:
        return self.monitoring.alerts

    @property
    def schedule_name(self) -> str:
        return next(s.name for s in self.stack.schedules if s.logical_id == INGEST_SCHEDULE)

    def schedule_period_seconds(self) -> float:
        """The ingest schedule's period, from its rate expression (as deployed)."""
        expression = next(s.expression for s in self.stack.schedules if s.logical_id == INGEST_SCHEDULE)
        amount, unit = expression.strip()[len("rate(") : -1].split()
        return float(amount) * {"minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]

    def fires(self) -> list[float]:
        """Emulated times (POSIX seconds) at which the local scheduler fired the ingest schedule."""
        assert self.cloud.scheduler is not None, "the stack's schedules are not served"
        name = self.schedule_name
        return [f.fired_at.timestamp() for f in list(self.cloud.scheduler.fired) if f.schedule == name]

    def write(self, messages: list[tuple[int, str]]) -> None:
        """PutLogEvents into the watched log group (timestamps in emulated ms)."""
        logs = self.cloud.client("logs")
        answer = logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=LOG_STREAM,
            logEvents=[{"timestamp": at, "message": message} for at, message in messages],
        )
        if answer.get("rejectedLogEventsInfo"):
            raise RuntimeError(
                f"CloudWatch Logs rejected the attack's events: {answer['rejectedLogEventsInfo']}"
            )


def deploy_watched_stack(cloud: LocalCloud, stack_name: str = STACK_NAME) -> WatchedStack:
    """Deploy template.yaml with its defaults and an endpoint logging to the log group the ingest reads
    (the ingest reads only groups an endpoint logs to)."""
    stack = cloud.deploy(ROOT / "template.yaml", stack_name=stack_name)
    logs = cloud.client("logs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=LOG_STREAM)
    endpoint_id = logging_endpoint(cloud, LOG_GROUP, stream=LOG_STREAM)
    # A provisioned endpoint as the ingest sees one: its request SUCCEEDED with connection logging on.
    RequestRecords(cloud.client("dynamodb"), stack.physical_ids["RequestsTable"]).put_outcome(
        {
            "request_id": f"{stack_name}-endpoint",
            "status": "SUCCEEDED",
            "endpoint_id": endpoint_id,
            "updated_at": datetime.now(UTC).isoformat(),
            "monitored_log_group": LOG_GROUP,
        }
    )
    return WatchedStack(cloud, stack, LocalMonitoring(cloud, stack, endpoint_id, LOG_GROUP))


def spray_attempt(endpoint_id: str, attacker_ip: str, user: str, connection_id: str, at_ms: int) -> str:
    """One failed login of the spray, as Client VPN logs it."""
    return connection_log_line(
        endpoint_id, connection_id, "failed", attacker_ip, user, FAILURE_REASON, None, at_ms
    )


def alert_about(envelope: dict[str, Any], attacker_ip: str) -> dict[str, Any] | None:
    """The finding of an alert envelope (SNS via SQS) when it is a HIGH or CRITICAL alert about
    ``attacker_ip``; None otherwise."""
    attributes = envelope.get("MessageAttributes", {})
    severity = attributes.get("severity", {}).get("Value")
    if severity not in ("HIGH", "CRITICAL"):
        return None
    message = str(envelope.get("Message", ""))
    start = message.find("{")
    finding: dict[str, Any] = json.loads(message[start:]) if start >= 0 else {}
    if finding.get("entity", {}).get("device_ip") != attacker_ip:
        return None
    return finding


@dataclass
class AttackRun:
    """One attack's timeline in emulated POSIX seconds."""

    offset: float
    attacker_ip: str
    started_at: float = 0.0
    attempts: list[float] = field(default_factory=list)
    crossed_at: float | None = None
    fired_at: float | None = None
    on_bus_at: float | None = None
    alerted_at: float | None = None
    finding: dict[str, Any] = field(default_factory=dict)

    @property
    def latency(self) -> float:
        assert self.alerted_at is not None
        return self.alerted_at - self.started_at

    @property
    def schedule_wait(self) -> float:
        """From the threshold crossed to the scheduled run that found it."""
        assert self.crossed_at is not None and self.fired_at is not None
        return max(0.0, self.fired_at - self.crossed_at)

    @property
    def run_to_alert(self) -> float:
        assert self.alerted_at is not None and self.fired_at is not None
        return self.alerted_at - self.fired_at

    @property
    def run_to_bus(self) -> float:
        """The scheduled run's ingest: fired to the finding on the findings bus."""
        assert self.on_bus_at is not None and self.fired_at is not None
        return self.on_bus_at - self.fired_at


THRESHOLD_USERS = 5  # R4 (DetectionSettings default): 5 users failing from one address in 10 minutes


class AttackToAlertBench:
    """The runs on one local cloud, at one time scale."""

    def __init__(self, time_scale: float, pace: float) -> None:
        self.time_scale = time_scale
        self.pace = pace
        self.cloud = LocalCloud(time_scale=1.0)
        self.watched: WatchedStack | None = None
        self.deploy_seconds = 0.0

    def __enter__(self) -> AttackToAlertBench:
        progress("attack to alert: starting the local cloud and deploying template.yaml (defaults)")
        started = time.perf_counter()
        self.cloud.start()
        try:
            self.watched = deploy_watched_stack(self.cloud)
        except BaseException:
            self.cloud.stop()
            raise
        self.deploy_seconds = time.perf_counter() - started
        self.cloud.clock.time_scale = self.time_scale
        return self

    def __exit__(self, *exc: object) -> None:
        self.cloud.stop()

    def _next_fire(self, after: float) -> float:
        """Wait (emulated) until the ingest schedule fires after ``after``; its fire time."""
        assert self.watched is not None
        deadline = time.monotonic() + self.cloud.clock.to_real_seconds(
            4 * self.watched.schedule_period_seconds()
        )
        while time.monotonic() < deadline:
            later = [at for at in self.watched.fires() if at > after]
            if later:
                return min(later)
            time.sleep(POLL_REAL_SECONDS)
        raise TimeoutError("the ingest schedule did not fire")

    def run(self, index: int, offset: float) -> AttackRun:
        """One spray from its own address, starting ``offset`` emulated seconds after a scheduled run."""
        assert self.watched is not None
        watched, clock = self.watched, self.cloud.clock
        attack = AttackRun(offset=offset, attacker_ip=f"203.0.113.{100 + index}")
        fired = self._next_fire(clock.timestamp())
        clock.sleep(fired + offset - clock.timestamp())
        attack.started_at = clock.timestamp()
        deadline = attack.started_at + RUN_TIMEOUT_EMULATED_SECONDS
        while attack.alerted_at is None:
            now = clock.timestamp()
            if now > deadline:
                raise TimeoutError(
                    f"no alert about {attack.attacker_ip} {RUN_TIMEOUT_EMULATED_SECONDS:g} s after T0"
                )
            if not attack.attempts or now >= attack.attempts[-1] + self.pace:
                self._attempt(attack, index, now)
            if attack.on_bus_at is None and any(
                _about(event.get("detail", {}), attack.attacker_ip)
                for event in watched.monitoring.findings_on_bus()
            ):
                attack.on_bus_at = clock.timestamp()
            for envelope in watched.inbox.drain():
                finding = alert_about(envelope, attack.attacker_ip)
                if finding is not None and attack.alerted_at is None:
                    attack.alerted_at = clock.timestamp()
                    attack.finding = finding
            watched.inbox.received.clear()
            watched.monitoring.bus_tap.received.clear()
            time.sleep(POLL_REAL_SECONDS)
        if attack.on_bus_at is None:
            attack.on_bus_at = attack.alerted_at  # the finding and its alert came between two polls
        # The run that found it: the latest scheduled run before its finding reached the bus.
        attack.fired_at = max(at for at in watched.fires() if at <= attack.on_bus_at)
        return attack

    def _attempt(self, attack: AttackRun, index: int, now: float) -> None:
        """The spray's next failed login, logged at ``now``: a new user each time, one new connection."""
        assert self.watched is not None
        number = len(attack.attempts)
        at_ms = int(now * 1000)
        line = spray_attempt(
            self.watched.endpoint_id,
            attack.attacker_ip,
            f"spray{index}-user{number}",
            f"cvpn-connection-{index:02d}{number:015x}",
            at_ms,
        )
        self.watched.write([(at_ms, line)])
        attack.attempts.append(at_ms / 1000)
        if len(attack.attempts) == THRESHOLD_USERS:
            attack.crossed_at = at_ms / 1000


def _about(detail: dict[str, Any], attacker_ip: str) -> bool:
    return detail.get("entity", {}).get("device_ip") == attacker_ip and detail.get("severity") in (
        "HIGH",
        "CRITICAL",
    )


def report(
    runs: list[AttackRun],
    *,
    warm_up: AttackRun,
    time_scale: float,
    pace: float,
    period: float,
    deploy_seconds: float,
) -> str:
    """The runs' table, the min / median / max against the aim, and how the figure is made up."""
    latencies = [run.latency for run in runs]
    rows = [_row(run, time_scale) for run in runs]
    lowest, middle, highest = min(latencies), statistics.median(latencies), max(latencies)
    verdict = "within the aim" if highest <= AIM_SECONDS else "MISSES the aim"
    processing = max(run.run_to_alert for run in runs)
    to_threshold = (THRESHOLD_USERS - 1) * pace
    return "\n".join(
        [
            "Attack to alert on the local cloud (figures only; nothing is asserted)",
            f"  template.yaml with its defaults (the ingest every {period:.0f} s), deployed in"
            f" {deploy_seconds:.1f} s; time scale {time_scale:g}",
            f"  a password spray from one address, one user every {pace:g} s; the alert awaited: HIGH R4"
            f" ({THRESHOLD_USERS} users from one address)",
            "",
            render_table(
                [
                    "start s after a run",
                    "5th user s",
                    "wait for run s",
                    "run to bus s",
                    "run to alert s",
                    "(real s)",
                    "T0 to alert s",
                    "alert",
                    "users",
                ],
                [*rows, _row(warm_up, time_scale, label="warm-up*")],
            ),
            "  * not counted: the first attack meets the functions' cold starts (this machine's, x the time"
            " scale)",
            "",
            f"  T0 to alert over {len(runs)} runs (emulated s): min {lowest:.1f}, median {middle:.1f},"
            f" max {highest:.1f}; aim <= {AIM_SECONDS:.0f} s: {verdict}",
            f"  made of: the attacker's pace to the threshold ({THRESHOLD_USERS - 1} x {pace:g} s ="
            f" {to_threshold:g} s) + the wait for the next scheduled run (0 to {period:.0f} s, by where the"
            " attack starts)",
            "    + run to alert (ingest, findings bus, alert function, SNS:"
            f" real seconds x {time_scale:g} here)",
            f"  worst start (threshold crossed just after a run): {to_threshold:g} + {period:.0f} +"
            f" {processing:.1f} = {to_threshold + period + processing:.1f} s",
        ]
    )


def _row(run: AttackRun, time_scale: float, label: str | None = None) -> list[object]:
    crossed = f"{run.crossed_at - run.started_at:.1f}" if run.crossed_at is not None else "-"
    return [
        label or f"{run.offset:.0f}",
        crossed,
        f"{run.schedule_wait:.1f}",
        f"{run.run_to_bus:.1f}",
        f"{run.run_to_alert:.1f}",
        f"{run.run_to_alert / time_scale:.2f}",
        f"{run.latency:.1f}",
        f"{run.finding.get('severity')} {run.finding.get('rule_id')}",
        str(run.finding.get("counts", {}).get("distinct_users", "-")),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--time-scale", type=float, default=10.0, help="emulated seconds per real second")
    parser.add_argument(
        "--runs", type=int, default=5, help="attacks, their starts spread over the schedule's period"
    )
    parser.add_argument(
        "--pace", type=float, default=3.0, help="emulated seconds between the spray's attempts"
    )
    args = parser.parse_args(argv)
    if args.time_scale <= 0:
        parser.error("--time-scale: must be > 0")
    if args.runs < 1:
        parser.error("--runs: must be at least 1")
    if args.pace <= 0:
        parser.error("--pace: must be > 0")
    logging.basicConfig(level=logging.ERROR)
    started = time.perf_counter()
    with AttackToAlertBench(args.time_scale, args.pace) as bench:
        assert bench.watched is not None
        period = bench.watched.schedule_period_seconds()
        progress("attack to alert: a warm-up attack (not counted)")
        warm_up = bench.run(0, period / 2)
        runs = []
        for index in range(1, args.runs + 1):
            offset = period * (index - 0.5) / args.runs
            progress(
                f"attack to alert: run {index}/{args.runs}, starting {offset:.0f} s after a scheduled run"
            )
            runs.append(bench.run(index, offset))
        text = report(
            runs,
            warm_up=warm_up,
            time_scale=args.time_scale,
            pace=args.pace,
            period=period,
            deploy_seconds=bench.deploy_seconds,
        )
    print(text)
    print()
    print(f"(attack-to-alert bench ran {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
