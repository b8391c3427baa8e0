"""Attack to alert with the template's default schedule, by emulated time: a password spray written to
a watched log group just after a scheduled ingest run is alerted on the alerts topic by the next run,
within one schedule period plus the run's own steps, and the alert is the spray's HIGH R4 finding.

The stack is template.yaml with its defaults (``IngestSchedule`` rate(1 minute)), deployed beside the
package's stacks and served by the local scheduler. The clock runs at real speed and is moved forward
by hand between the spray's attempts, so the schedule's part of the figure is exact and the ingest and
delivery steps run in real time (``make bench`` prints the figure itself: bench/attack_to_alert.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bench.attack_to_alert import (
    THRESHOLD_USERS,
    WatchedStack,
    alert_about,
    deploy_watched_stack,
    spray_attempt,
)
from cvpn.monitoring_demo import wait_for
from tests.provisioning.workflow.harness import Provisioning

STACK_NAME = "cvpn-attack-to-alert-e2e"
ATTACKER = "203.0.113.180"
PACE_SECONDS = 3.0  # one more user every 3 s, as a spraying tool goes
# What the scheduled run may take once fired (ingest, findings bus, alert function with its cold start,
# SNS), in emulated seconds at time scale 1: far below another period, so a missed run cannot pass.
RUN_STEPS_SECONDS = 45.0


@pytest.fixture(scope="module")
def watched(product: Provisioning) -> Iterator[WatchedStack]:
    clock = product.cloud.clock
    time_scale = clock.time_scale
    clock.time_scale = 1.0
    stack = deploy_watched_stack(product.cloud, stack_name=STACK_NAME)
    try:
        yield stack
    finally:
        scheduler = product.cloud.scheduler
        if scheduler is not None:
            scheduler.remove_stack(STACK_NAME)  # the other tests need no ingest every minute
        clock.time_scale = time_scale


def test_a_spray_is_alerted_within_one_period_plus_the_runs_steps(watched: WatchedStack) -> None:
    """Given the default 1-minute schedule, when a spray starts 1 s after a scheduled run and goes on
    (one user every 3 s) until just before the next run, then no alert comes before that run, and the
    alert comes after it, within one period plus the run's steps of T0, as HIGH R4 about the attacker
    with every user the run read."""
    clock = watched.cloud.clock
    period = watched.schedule_period_seconds()
    assert period == 60.0, "the template's default IngestSchedule is rate(1 minute)"

    clock.advance(period)  # to the schedule's first run: its time gives the schedule's phase
    first_run = wait_for("the first scheduled ingest run", watched.fires, timeout=30)[-1]
    next_run = first_run + period

    clock.advance(max(0.0, first_run + 1.0 - clock.timestamp()))
    started_at = clock.timestamp()
    attempts: list[float] = []
    while clock.timestamp() + PACE_SECONDS < next_run - 1.0:
        at_ms = clock.millis()
        number = len(attempts)
        line = spray_attempt(
            watched.endpoint_id,
            ATTACKER,
            f"e2e-spray-user{number}",
            f"cvpn-connection-e2e{number:012x}",
            at_ms,
        )
        watched.write([(at_ms, line)])
        attempts.append(at_ms / 1000)
        clock.advance(PACE_SECONDS)
    assert len(attempts) >= THRESHOLD_USERS
    assert [at for at in watched.fires() if at > first_run] == [], "no run between the attempts"
    assert _alerts(watched) == [], "nothing is alerted before the next run reads the spray"

    clock.advance(next_run - clock.timestamp())
    finding = wait_for("the spray's alert", lambda: _alerts(watched), timeout=RUN_STEPS_SECONDS)[0]
    alerted_at = clock.timestamp()

    assert next_run <= alerted_at <= started_at + period + RUN_STEPS_SECONDS
    assert (finding["rule_id"], finding["severity"]) == ("R4", "HIGH")
    assert finding["entity"]["device_ip"] == ATTACKER
    assert finding["endpoint_id"] == watched.endpoint_id
    assert finding["counts"]["distinct_users"] == len(attempts)


def _alerts(watched: WatchedStack) -> list[dict[str, Any]]:
    """Findings of the HIGH or CRITICAL alerts about the attacker in the alerts inbox so far."""
    watched.inbox.drain()
    return [f for f in (alert_about(e, ATTACKER) for e in watched.inbox.received) if f is not None]
