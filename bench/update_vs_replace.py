"""``make bench``: a typical change (one office route, one group) made in place vs by replacement.

In place: the update state machine (plan, one change per task, waits). Replacement: the provisioning
state machine makes a new endpoint with the changed document, then the decommission state machine
tears the old one down; the old endpoint's associations are billed during the overlap, and every user
downloads a new configuration (not priced).

Figures per way: wall time (real, on the local cloud), the time on AWS (the Wait states' emulated
seconds, sized to the local cloud's Client VPN timings, and the invocations' assumed duration), state
transitions, Lambda invocations, EC2 calls (mutating and in all), and USD: Step Functions Standard
transitions, Lambda requests and GB-seconds (billed duration assumed, see
``BILLED_SECONDS_PER_INVOCATION``), Client VPN association hours of the overlap (pro rata).

Run: ``.venv/bin/python bench/update_vs_replace.py``. Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import PRICES, progress, render_table  # noqa: E402

__all__ = ["Figures", "measure_replace", "measure_update", "typical_change"]

OFFICE_ROUTE = "10.60.0.0/16"
OFFICE_GROUP = "S-1-5-21-1004336348-1177238915-682003330-1105"
ASSOCIATION_HOURLY_USD = 0.10  # Client VPN endpoint association, us-east-1
BILLED_SECONDS_PER_INVOCATION = 0.2  # the product's tasks are one or a few API calls each
MEMORY_MB = 256  # the template's Globals
MUTATING_PREFIXES = (
    "Create",
    "Delete",
    "Associate",
    "Disassociate",
    "Authorize",
    "Revoke",
    "Modify",
    "Apply",
)
TIME_SCALE = 20.0  # slow enough that the local runtime adds little to the emulated waits


@dataclass
class Figures:
    """What one way of making the change cost."""

    label: str
    status: str = ""
    wall_seconds: float = 0.0
    emulated_seconds: float = 0.0
    wait_seconds: float = 0.0
    transitions: int = 0
    invocations: Counter[str] = field(default_factory=Counter)
    ec2_calls: Counter[str] = field(default_factory=Counter)
    overlap_association_hours: float = 0.0

    @property
    def aws_seconds(self) -> float:
        """The execution's time as AWS would take it: its Wait states (sized to the local cloud's
        Client VPN timings) and each invocation at its assumed billed duration. The local runtime's
        own real seconds, multiplied by the time scale, are left out."""
        return self.wait_seconds + self.lambda_invocations * BILLED_SECONDS_PER_INVOCATION

    @property
    def lambda_invocations(self) -> int:
        return sum(self.invocations.values())

    @property
    def ec2_mutations(self) -> int:
        return sum(count for op, count in self.ec2_calls.items() if op.startswith(MUTATING_PREFIXES))

    @property
    def usd(self) -> float:
        return (
            PRICES.transitions_usd(self.transitions)
            + PRICES.lambda_usd(
                self.lambda_invocations, self.lambda_invocations * BILLED_SECONDS_PER_INVOCATION, MEMORY_MB
            )
            + self.overlap_association_hours * ASSOCIATION_HOURLY_USD
        )

    def add_execution(self, sfn: Any, arn: str) -> None:
        events = _history(sfn, arn)
        self.transitions += sum(1 for e in events if e["type"].endswith("StateEntered"))
        for event in events:
            if event["type"] == "LambdaFunctionScheduled":
                resource = event["lambdaFunctionScheduledEventDetails"]["resource"]
                self.invocations[resource.rsplit(":", 1)[-1]] += 1
        entered: dict[str, Any] = {}
        for event in events:
            if event["type"] == "WaitStateEntered":
                entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
            elif event["type"] == "WaitStateExited":
                started = entered.pop(event["stateExitedEventDetails"]["name"], None)
                if started is not None:
                    self.wait_seconds += (event["timestamp"] - started).total_seconds()
        described = sfn.describe_execution(executionArn=arn)
        self.status = str(described["status"]) if self.status in ("", "SUCCEEDED") else self.status
        self.emulated_seconds += (described["stopDate"] - described["startDate"]).total_seconds()


def typical_change(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with one more route (the office) and one more group rule to reach it."""
    changed = json.loads(json.dumps(document))
    changed["routes"] = [*changed["routes"], {"destination_cidr": OFFICE_ROUTE, "description": "Office"}]
    changed["authorization_rules"] = [
        *changed["authorization_rules"],
        {"target_network_cidr": OFFICE_ROUTE, "access_group_id": OFFICE_GROUP, "description": "Office staff"},
    ]
    return changed


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(
            executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def _run(product: Any, arn: str, payload: dict[str, Any], figures: Figures) -> Any:
    sfn = product.cloud.client("stepfunctions")
    execution = product.start(arn, payload)
    progress_ = product.wait(execution, timeout=300)
    figures.add_execution(sfn, execution)
    return progress_


def measure_update(product: Any, document: dict[str, Any]) -> Figures:
    """Apply the typical change to the endpoint ``document`` provisioned, in place."""
    from localcloud.faults import api_call_counts, reset_api_call_counts

    figures = Figures("update in place")
    reset_api_call_counts()
    started = time.perf_counter()
    arn = product.stack.outputs["UpdateEndpointStateMachineArn"]
    _run(product, arn, {"request": typical_change(document), "applied_by": "bench"}, figures)
    figures.wall_seconds = time.perf_counter() - started
    figures.ec2_calls = Counter(api_call_counts())
    return figures


def measure_replace(product: Any, document: dict[str, Any]) -> Figures:
    """Provision the changed document as a new endpoint, then decommission ``document``'s endpoint."""
    from localcloud.faults import api_call_counts, reset_api_call_counts

    figures = Figures("replace the endpoint")
    changed = typical_change(document)
    changed["request_id"] = f"{document['request_id']}.r2"
    reset_api_call_counts()
    started = time.perf_counter()
    provisioned = _run(product, product.provision_arn, {"request": changed}, figures)
    overlap_seconds = figures.aws_seconds  # the old endpoint runs until the new one is available
    figures.overlap_association_hours = len(document["subnet_ids"]) * overlap_seconds / 3600
    if provisioned.status == "SUCCEEDED":
        _run(product, product.decommission_arn, {"request_id": document["request_id"]}, figures)
    figures.wall_seconds = time.perf_counter() - started
    figures.ec2_calls = Counter(api_call_counts())
    return figures


def report(update: Figures, replace: Figures) -> str:
    rows = [
        ["outcome", update.status, replace.status],
        ["wall time, local cloud (s)", f"{update.wall_seconds:.1f}", f"{replace.wall_seconds:.1f}"],
        [
            "time on AWS, waits and API timings (min)",
            f"{update.aws_seconds / 60:.1f}",
            f"{replace.aws_seconds / 60:.1f}",
        ],
        ["state transitions", str(update.transitions), str(replace.transitions)],
        ["Lambda invocations", str(update.lambda_invocations), str(replace.lambda_invocations)],
        ["EC2 calls (mutating)", str(update.ec2_mutations), str(replace.ec2_mutations)],
        ["EC2 calls (all)", str(sum(update.ec2_calls.values())), str(sum(replace.ec2_calls.values()))],
        [
            "association hours of the overlap",
            f"{update.overlap_association_hours:.3f}",
            f"{replace.overlap_association_hours:.3f}",
        ],
        ["USD", f"{update.usd:.6f}", f"{replace.usd:.6f}"],
        ["new configuration for every user", "no", "yes"],
        ["endpoint id and DNS name", "kept", "new"],
    ]
    return (
        "Update vs replace: one office route and one group rule on a 2-AZ endpoint\n"
        + render_table(["", "update", "replace"], rows)
        + f"\nUSD: transitions x {PRICES.state_transition_usd * 1000:.3f}/1000, Lambda requests and "
        f"{BILLED_SECONDS_PER_INVOCATION} s x {MEMORY_MB} MB per invocation (assumed), association "
        f"{ASSOCIATION_HOURLY_USD} USD/h pro rata during the overlap.\n"
    )


def main() -> int:
    from localcloud.cloud import LocalCloud
    from localcloud.sample_network import build_sample_network
    from tests.provisioning.workflow.harness import Provisioning

    with LocalCloud(time_scale=TIME_SCALE, fault_seed=11) as cloud:
        progress("update vs replace: deploying template.yaml")
        stack = cloud.deploy(
            ROOT / "template.yaml",
            stack_name="cvpn-autopilot",
            parameter_overrides={
                "OidcIssuerUrl": "https://login.example.com/oauth2/default",
                "OidcAudience": "cvpn-request-form",
            },
            serve=False,
        )
        network = build_sample_network(cloud.client, region=cloud.region)
        product = Provisioning(cloud=cloud, stack=stack, network=network)
        progress("update vs replace: provisioning the endpoint to change")
        document = product.request(zones=2)
        if product.provision(document).status != "SUCCEEDED":
            print("the endpoint to change could not be provisioned", file=sys.stderr)
            return 1
        progress("update vs replace: update in place")
        update = measure_update(product, document)
        progress("update vs replace: replacement")
        replace = measure_replace(product, document)
    print(report(update, replace))
    return 0 if update.status == replace.status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
