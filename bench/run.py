"""``make bench``: print the local cloud's and the provisioning workflow's figures (nothing asserted).

A. Local cloud: bring-up with the fixture stack, warm invoke overhead, cold start, a Client VPN round trip.
B. Provisioning: the seed scenario in 2 and 3 AZs (transitions, invocations, API calls, overshoot,
   cost), and the polling overshoot for association durations of 240, 420 and 600 s.
C. Waiting: Wait/check/Choice polling vs a Lambda that waits, for associations of 4 to 10 minutes.
D. The client-connect handler's latency (median, p95, p99) when its blocklist table is throttled or
   slow (the local cloud's DynamoDB fault injection), against its lookup budget.

Progress goes to stderr, the report to stdout. Run: ``.venv/bin/python bench/run.py [--help]``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, Python puts bench/ first on sys.path; the repository root is what we import from.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.client_connect_throttled import measure as measure_client_connect  # noqa: E402
from bench.client_connect_throttled import report as report_client_connect  # noqa: E402
from bench.common import Summary, progress  # noqa: E402
from bench.cost_model import PollCosts, PollSchedule, report_cost_model  # noqa: E402
from bench.local_cloud import (  # noqa: E402
    LocalCloudFigures,
    measure_describe_endpoints,
    measure_local_cloud,
    report_local_cloud,
)
from bench.provisioning import CHECK_ASSOCIATIONS, ProductBench, RunFigures, report_provisioning  # noqa: E402

SWEEP_SECONDS = (240.0, 420.0, 600.0)
MODEL_SECONDS = [60.0 * minutes for minutes in range(4, 11)]


def main(argv: list[str] | None = None) -> int:
    """Run the sections and print their tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--time-scale", type=float, default=60.0, help="emulated seconds per real second in B"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs per association duration in the sweep")
    parser.add_argument("--rounds", type=int, default=200, help="calls per warm round-trip figure")
    parser.add_argument("--skip-local-cloud", action="store_true", help="skip section A's own cloud")
    parser.add_argument(
        "--client-connect-rounds", type=int, default=60, help="handler calls per blocklist condition in D"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    started = time.perf_counter()

    local = LocalCloudFigures() if args.skip_local_cloud else measure_local_cloud(args.rounds)
    schedule = PollSchedule.from_definition()

    extra: dict[str, Summary] = {}
    with ProductBench(args.time_scale) as product:
        product.run("warm-up", zones=3)
        two = product.run("2 AZs", zones=2)
        three = product.run("3 AZs", zones=3)
        sweep: list[RunFigures] = []
        for repeat in range(args.repeats):
            for seconds in SWEEP_SECONDS:
                if repeat == 0 and seconds == two.association_seconds:
                    sweep.append(two)
                else:
                    sweep.append(product.run(f"sweep {seconds:.0f} s", zones=2, association_seconds=seconds))
        progress("A: DescribeClientVpnEndpoints against the product's cloud")
        endpoints, summary = measure_describe_endpoints(product.cloud, args.rounds)
        extra[f"boto3 ec2.describe_client_vpn_endpoints ({endpoints} endpoints)"] = summary
        progress("D: the client-connect handler against a throttled blocklist table")
        client_connect = measure_client_connect(
            product.cloud, product.stack.outputs["ClientConnectFunctionArn"], args.client_connect_rounds
        )
        deploy_seconds = product.deploy_seconds
        memory_mb = product.memory_mb(CHECK_ASSOCIATIONS)

    measured = [two, three, *sweep]
    loop_states = sum(sum(run.loop_states_entered.values()) for run in measured)
    polls = sum(run.total_polls for run in measured)
    check_seconds = statistics.median(
        seconds for run in measured for seconds in run.lambda_seconds.get(CHECK_ASSOCIATIONS, [])
    )
    costs = PollCosts(states_per_poll=loop_states / polls, check_seconds=check_seconds, memory_mb=memory_mb)

    print("Client VPN Autopilot benchmark (figures only; nothing is asserted)")
    print()
    if not args.skip_local_cloud:
        print(report_local_cloud(local, extra))
        print()
    print(
        report_provisioning(
            [two, three], sweep, time_scale=args.time_scale, deploy_seconds=deploy_seconds, schedule=schedule
        )
    )
    print()
    print(report_cost_model(schedule, costs, MODEL_SECONDS))
    print()
    print(report_client_connect(client_connect))
    print()
    print(aims(local, sweep, args.time_scale, skip_local_cloud=args.skip_local_cloud))
    print()
    print(f"(bench ran {time.perf_counter() - started:.0f} s)")
    return 0


def aims(
    local: LocalCloudFigures, sweep: list[RunFigures], time_scale: float, *, skip_local_cloud: bool
) -> str:
    """The figures the issues set aims for, next to their aims (reported, not asserted)."""
    from bench.local_cloud import WARM_INVOKE

    lines = ["Aims (reported, not asserted)"]
    if not skip_local_cloud:
        warm = local.warm[WARM_INVOKE]
        lines += [
            f"  local cloud up with the fixture stack: {local.up_seconds:.1f} s (aim < 10 s)",
            f"  warm invoke overhead through the Runtime API: median {warm.median:.1f} ms,"
            f" p95 {warm.p95:.1f} ms (aim < 20 ms)",
        ]
    overshoots = [run.association_overshoot for run in sweep if run.association_overshoot is not None]
    if overshoots:
        lines.append(
            f"  association polling overshoot: {min(overshoots):.1f} to {max(overshoots):.1f} emulated s over"
            f" {len(overshoots)} runs (aim <= 10 s; at time scale {time_scale:g} one poll period is 10 s"
            " plus the loop's real latency x scale, see B)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
