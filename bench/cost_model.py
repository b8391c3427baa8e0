"""Section C: what waiting for associations costs — Wait/check/Choice polling vs a Lambda that waits.

Arithmetic on measured per-poll figures (states entered per poll and the check Lambda's duration, from
section B) and on the poll schedule read from the definition (first Wait, then short polls). Both
strategies see readiness at the same moments (same overshoot): the Lambda sleeps the same first wait
and then checks on the same schedule internally, so it is billed for the whole wait.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bench.common import PRICES, render_table

ROOT = Path(__file__).resolve().parents[1]
DEFINITION = ROOT / "statemachines" / "provisioning" / "provision_endpoint.asl.json"
LAMBDA_MAX_TIMEOUT_SECONDS = 900

__all__ = ["PollCosts", "PollSchedule", "report_cost_model"]


@dataclass(frozen=True)
class PollSchedule:
    """The association wait loop's schedule as the definition starts it: one first Wait, then polls
    of ``poll_seconds`` growing to ``max_poll_seconds`` (when set), until ``timeout_seconds``. The
    checks are those the layer's ``next_poll`` schedules, so the bench models what the product does."""

    first_wait_seconds: float
    poll_seconds: float
    max_poll_seconds: float | None = None
    timeout_seconds: float = 1800.0

    @classmethod
    def from_definition(cls, path: Path = DEFINITION, state: str = "BeginAssociationWait") -> PollSchedule:
        """Read the schedule from the Pass state that starts the loop."""
        result = json.loads(path.read_text())["States"][state]["Result"]
        longest = result.get("max_poll_seconds")
        return cls(
            float(result["next_wait_seconds"]),
            float(result["poll_seconds"]),
            None if longest is None else float(longest),
            float(result.get("timeout_seconds", 1800)),
        )

    def check_times(self, duration: float) -> list[float]:
        """Seconds after the wait began of each check until one sees a resource ready after
        ``duration`` (zero task latency, as on AWS), or until the timeout."""
        from cvpn_shared.provisioning.errors import ProvisioningTimedOut
        from cvpn_shared.provisioning.models.workflow_state import PollState
        from cvpn_shared.provisioning.steps import next_poll

        poll = PollState(
            what="associations",
            next_wait_seconds=int(self.first_wait_seconds),
            poll_seconds=int(self.poll_seconds),
            max_poll_seconds=None if self.max_poll_seconds is None else int(self.max_poll_seconds),
            timeout_seconds=int(self.timeout_seconds),
        )
        times: list[float] = []
        try:
            while not poll.ready:
                at = poll.waited_seconds + poll.next_wait_seconds
                times.append(float(at))
                poll = next_poll(poll, ready=at >= duration)
        except ProvisioningTimedOut:
            pass
        return times

    def polls(self, duration: float) -> int:
        """Checks until one sees a resource ready after ``duration`` (zero task latency, as on AWS)."""
        return len(self.check_times(duration))

    def seen_ready_at(self, duration: float) -> float:
        """Seconds after the wait began at which a check sees it ready (the timeout if none does)."""
        return self.check_times(duration)[-1]

    def describe(self) -> str:
        """The schedule in words."""
        if self.max_poll_seconds is None:
            polls = f"a check every {self.poll_seconds:.0f} s"
        else:
            polls = f"checks {self.poll_seconds:.0f} s apart doubling up to {self.max_poll_seconds:.0f} s"
        return f"first Wait {self.first_wait_seconds:.0f} s, then {polls}"

    @property
    def longest_poll_seconds(self) -> float:
        return self.poll_seconds if self.max_poll_seconds is None else self.max_poll_seconds


@dataclass(frozen=True)
class PollCosts:
    """Measured per-poll figures."""

    states_per_poll: float
    check_seconds: float
    memory_mb: int

    def polling_usd(self, polls: int) -> float:
        """Wait + check + Choice per poll: transitions plus one short Lambda invocation each."""
        return polls * (
            PRICES.transitions_usd(self.states_per_poll)
            + PRICES.lambda_usd(1, self.check_seconds, self.memory_mb)
        )

    def waiting_lambda_usd(self, billed_seconds: float) -> float:
        """One Task state invoking a Lambda that sleeps and checks internally, billed the whole time."""
        return PRICES.transitions_usd(1) + PRICES.lambda_usd(1, billed_seconds, self.memory_mb)


def report_cost_model(schedule: PollSchedule, costs: PollCosts, durations: list[float]) -> str:
    """Section C as text."""
    rows: list[list[object]] = []
    for duration in durations:
        polls = schedule.polls(duration)
        ready_at = schedule.seen_ready_at(duration)
        polling = costs.polling_usd(polls)
        waiting = costs.waiting_lambda_usd(ready_at + costs.check_seconds)
        cheaper = "polling" if polling < waiting else "Lambda wait"
        saving = abs(polling - waiting)
        ratio = max(polling, waiting) / min(polling, waiting)
        rows.append(
            [
                f"{duration / 60:g} min",
                polls,
                f"{ready_at - duration:.0f}",
                f"{polling:.6f}",
                f"{waiting:.6f}",
                cheaper,
                f"{saving:.6f}",
                f"{1000 * saving:.3f}",
                f"{ratio:.2f}x",
            ]
        )
    even = _break_even(schedule, costs)
    return "\n".join(
        [
            "C. Waiting for associations: Wait/check/Choice polling vs a Lambda that waits"
            " (USD per provisioning)",
            f"  schedule from the definition: {schedule.describe()}"
            f" (overshoot <= {schedule.longest_poll_seconds:.0f} s for both)",
            f"  measured in B: {costs.states_per_poll:.2f} states entered per poll; check Lambda"
            f" {1000 * costs.check_seconds:.0f} ms (median warm); {costs.memory_mb} MB arm64",
            "",
            render_table(
                [
                    "association",
                    "polls",
                    "overshoot s",
                    "polling USD",
                    "Lambda wait USD",
                    "cheaper",
                    "saves USD",
                    "saves per 1,000 USD",
                    "ratio",
                ],
                rows,
            ),
            "",
            "  polling USD = polls x (states/poll x 0.000025 + 0.0000002 + check s x GB x 0.0000133334)",
            "  Lambda wait USD = 1 transition + 0.0000002"
            " + (seconds until seen ready + check s) x GB x 0.0000133334",
            f"  break-even: {even}",
            f"  caveats: a Lambda waits at most {LAMBDA_MAX_TIMEOUT_SECONDS} s (the loop's timeout is"
            f" {schedule.timeout_seconds:.0f} s)"
            " and the template's",
            "    Timeout is 30 s; the Lambda's cost halves at 128 MB; polling costs hardly depend on memory.",
        ]
    )


def _break_even(schedule: PollSchedule, costs: PollCosts) -> str:
    for duration in range(int(schedule.first_wait_seconds), LAMBDA_MAX_TIMEOUT_SECONDS + 1):
        polls = schedule.polls(duration)
        waiting = costs.waiting_lambda_usd(schedule.seen_ready_at(duration) + costs.check_seconds)
        if waiting < costs.polling_usd(polls):
            return (
                f"a Lambda that waits is cheaper for associations longer than about {duration} s"
                f" ({duration / 60:.1f} min); polling is cheaper below"
            )
    return f"polling is cheaper for every duration up to {LAMBDA_MAX_TIMEOUT_SECONDS} s"
