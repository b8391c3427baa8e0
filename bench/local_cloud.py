"""Section A: the local cloud itself — bring-up, Lambda invoke overhead, cold start, Client VPN round trip."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import Summary, progress, render_table, summarize, time_calls

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_TEMPLATE = ROOT / "tests" / "fixtures" / "sam_app" / "template.yaml"
NOOP_SOURCE = "def handler(event, context):\n    return None\n"
ROLE_NAME = "bench-noop"
WARM_INVOKE = "boto3 lambda.invoke -> local cloud -> Runtime API"
INIT_DURATION = re.compile(r"Init Duration: ([0-9.]+) ms")

__all__ = [
    "WARM_INVOKE",
    "LocalCloudFigures",
    "measure_describe_endpoints",
    "measure_local_cloud",
    "report_local_cloud",
]


@dataclass
class ColdStart:
    """The first invocation of one function: the caller's round trip and the runtime's Init Duration."""

    function: str
    round_trip_ms: float
    init_duration_ms: float | None


@dataclass
class LocalCloudFigures:
    """Everything section A measures."""

    start_seconds: float = 0.0
    deploy_seconds: float = 0.0
    warm: dict[str, Summary] = field(default_factory=dict)
    cold: list[ColdStart] = field(default_factory=list)

    @property
    def up_seconds(self) -> float:
        """Local cloud started and the fixture stack deployed and served."""
        return self.start_seconds + self.deploy_seconds


def measure_local_cloud(rounds: int = 200) -> LocalCloudFigures:
    """Bring a local cloud up with the fixture stack, then time invocations and a Client VPN call.

    Time scale 1 so the fixture's schedules (rate 1 minute) do not fire during the measurement.
    """
    from localcloud.cloud import LocalCloud

    figures = LocalCloudFigures()
    progress("A: starting the local cloud and deploying the fixture stack")
    started = time.perf_counter()
    cloud = LocalCloud(time_scale=1.0).start()
    try:
        figures.start_seconds = time.perf_counter() - started
        started = time.perf_counter()
        stack = cloud.deploy(FIXTURE_TEMPLATE, stack_name="bench-fixture")
        figures.deploy_seconds = time.perf_counter() - started

        lam = cloud.client("lambda")
        role_arn = cloud.client("iam").create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument="{}")["Role"][
            "Arn"
        ]
        progress("A: cold starts")
        greeting = stack.function_name("GreetingFunction")
        figures.cold.append(_first_invoke(lam, greeting, {"kind": "bench"}, label="fixture GreetingFunction"))
        for index in range(3):
            name = f"bench-cold-{index}"
            _create_noop(lam, name, role_arn)
            figures.cold.append(_first_invoke(lam, name, {}, label=f"no-op {name}"))

        progress(f"A: warm invocations ({rounds} each)")
        _create_noop(lam, "bench-noop", role_arn)
        assert cloud.runtime is not None
        runtime = cloud.runtime
        ec2 = cloud.client("ec2")
        figures.warm = {
            WARM_INVOKE: summarize(
                time_calls(
                    lambda: lam.invoke(FunctionName="bench-noop", Payload=b"{}")["Payload"].read(), rounds
                )
            ),
            "LambdaRuntime.invoke (in process) -> Runtime API": summarize(
                time_calls(lambda: runtime.invoke("bench-noop", b"{}"), rounds)
            ),
            "boto3 lambda.get_function (HTTP + moto, no runtime)": summarize(
                time_calls(lambda: lam.get_function(FunctionName="bench-noop"), rounds)
            ),
            "boto3 ec2.describe_client_vpn_endpoints (empty region)": summarize(
                time_calls(ec2.describe_client_vpn_endpoints, rounds)
            ),
        }
        cloud.reset()
    finally:
        cloud.stop()
    return figures


def measure_describe_endpoints(cloud: Any, rounds: int = 200) -> tuple[int, Summary]:
    """DescribeClientVpnEndpoints round trips against a cloud that has endpoints: (endpoints, summary)."""
    ec2 = cloud.client("ec2")
    count = len(ec2.describe_client_vpn_endpoints()["ClientVpnEndpoints"])
    return count, summarize(time_calls(ec2.describe_client_vpn_endpoints, rounds))


def report_local_cloud(figures: LocalCloudFigures, extra_warm: dict[str, Summary] | None = None) -> str:
    """Section A as text."""
    bring_up = render_table(
        ["step", "seconds"],
        [
            [
                "LocalCloud.start() (moto server, extensions, Lambda runtime; first imports)",
                figures.start_seconds,
            ],
            [
                "deploy tests/fixtures/sam_app (build, SAM transform, resources, gateway, scheduler)",
                figures.deploy_seconds,
            ],
            ["local cloud up with the fixture stack (aim < 10 s)", figures.up_seconds],
        ],
    )
    warm_rows = [
        [label, s.median, s.p95, s.count] for label, s in {**figures.warm, **(extra_warm or {})}.items()
    ]
    warm = render_table(["warm round trip (wall ms)", "median", "p95", "n"], warm_rows)
    cold = render_table(
        ["cold start: first invoke incl. init (boto3 lambda.invoke)", "round trip ms", "Init Duration ms"],
        [
            [c.function, c.round_trip_ms, c.init_duration_ms if c.init_duration_ms is not None else "-"]
            for c in figures.cold
        ],
    )
    return "\n".join(
        [
            "A. Local cloud",
            "",
            bring_up,
            "",
            warm,
            "  (aim for the warm invoke overhead: < 20 ms; Runtime API = a real awslambdaric worker process)",
            "",
            cold,
        ]
    )


def _create_noop(lam: Any, name: str, role_arn: str) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("app.py", NOOP_SOURCE)
    lam.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role_arn,
        Handler="app.handler",
        Code={"ZipFile": archive.getvalue()},
        MemorySize=128,
    )


def _first_invoke(lam: Any, name: str, payload: dict[str, Any], *, label: str) -> ColdStart:
    started = time.perf_counter()
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(payload).encode(), LogType="Tail")
    answer["Payload"].read()
    round_trip = (time.perf_counter() - started) * 1000
    tail = base64.b64decode(answer.get("LogResult", "")).decode(errors="replace")
    match = INIT_DURATION.search(tail)
    return ColdStart(label, round_trip, float(match.group(1)) if match else None)
