"""The client-connect handler's latency when its blocklist table is throttled or slow (figures only).

The handler runs in the local cloud's Lambda runtime against the deployed template's blocklist table;
the local cloud's fault injector makes DynamoDB's BatchGetItem answer its throttle, leave every key
unprocessed, or answer after 5 s. Each invocation is timed from the caller (the Lambda API's own
overhead included); the handler's lookup budget (about 2 s) is what these figures should stay inside.

Run alone: ``.venv/bin/python bench/client_connect_throttled.py [--rounds N]`` (deploys its own
stack); ``bench/run.py`` runs it on the stack it deploys anyway.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import progress, render_table  # noqa: E402

BATCH_GET = "dynamodb:BatchGetItem"
BUDGET_SECONDS = 2.0  # the template's BLOCKLIST_LOOKUP_BUDGET_SECONDS
# (label, fault knobs, share of the rounds): a slow table costs seconds per call, so fewer of them.
CONDITIONS: tuple[tuple[str, dict[str, float], float], ...] = (
    ("healthy table", {}, 1.0),
    ("throttled (every call)", {"throttle_rate": 1.0}, 1.0),
    ("every key unprocessed", {"unprocessed_keys_rate": 1.0}, 1.0),
    ("throttled 1 call in 2", {"throttle_rate": 0.5}, 1.0),
    ("answers after 5 s", {"latency_seconds": 5.0}, 0.34),
)


@dataclass(frozen=True)
class ConditionFigures:
    label: str
    samples_ms: list[float]
    allowed: int

    def percentile(self, share: float) -> float:
        if not self.samples_ms:
            return math.nan
        ordered = sorted(self.samples_ms)
        return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def measure(cloud: Any, function_arn: str, rounds: int) -> list[ConditionFigures]:
    """Time ``rounds`` handler invocations (fewer for the slow table) under each condition."""
    from localcloud.faults import get_fault_injector

    injector = get_fault_injector()
    lambda_client = cloud.client("lambda")
    request = {
        "connection-id": "cvpn-connection-bench",
        "endpoint-id": "cvpn-endpoint-0123456789abcdef0",
        "common-name": "NA",
        "username": "bench-user",
        "public-ip": "198.51.100.200",
        "schema-version": "v2",
    }
    payload = json.dumps(request).encode()
    figures: list[ConditionFigures] = []
    for label, knobs, share in CONDITIONS:
        progress(f"client-connect handler: {label}")
        injector.configure(BATCH_GET, throttle_rate=0.0, latency_seconds=0.0, unprocessed_keys_rate=0.0)
        lambda_client.invoke(FunctionName=function_arn, Payload=payload)  # warm, untimed
        injector.configure(BATCH_GET, **knobs)
        samples: list[float] = []
        allowed = 0
        try:
            for _ in range(max(3, int(rounds * share))):
                started = time.perf_counter()
                answer = lambda_client.invoke(FunctionName=function_arn, Payload=payload)
                samples.append((time.perf_counter() - started) * 1000)
                allowed += bool(json.loads(answer["Payload"].read()).get("allow"))
        finally:
            injector.configure(BATCH_GET, throttle_rate=0.0, latency_seconds=0.0, unprocessed_keys_rate=0.0)
        figures.append(ConditionFigures(label, samples, allowed))
    return figures


def report(figures: list[ConditionFigures]) -> str:
    """The table: per condition, invocations, allowed (fail open), median, p95 and p99 in ms."""
    rows = [
        (
            figure.label,
            len(figure.samples_ms),
            figure.allowed,
            round(statistics.median(figure.samples_ms), 1),
            round(figure.percentile(0.95), 1),
            round(figure.percentile(0.99), 1),
        )
        for figure in figures
    ]
    worst = max(figure.percentile(0.99) for figure in figures)
    return "\n".join(
        [
            "D. Client-connect handler with a throttled or slow blocklist table (fault injection; "
            "wall ms per invocation, Lambda API overhead included)",
            render_table(["blocklist table", "calls", "allowed", "median", "p95", "p99"], rows),
            f"  worst p99 {worst:.0f} ms against a lookup budget of {BUDGET_SECONDS * 1000:.0f} ms "
            "(fail open: every call allowed; reported, not asserted)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=60, help="invocations per condition (a third when slow)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    from bench.provisioning import _parameter_overrides
    from localcloud.cloud import LocalCloud

    with LocalCloud(time_scale=1.0) as cloud:
        progress("deploying template.yaml")
        stack = cloud.deploy(
            ROOT / "template.yaml",
            stack_name="cvpn-bench-client-connect",
            parameter_overrides=_parameter_overrides(),
            serve=False,
        )
        figures = measure(cloud, stack.outputs["ClientConnectFunctionArn"], args.rounds)
    print(report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
