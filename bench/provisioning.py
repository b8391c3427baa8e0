"""Section B: provisionings of the seed scenario on the local cloud, counted and costed.

Per run: state transitions and history events, Lambda invocations per function, Client VPN API calls
per operation, polls, the polling overshoot in emulated seconds, and the orchestration cost.

How the overshoot is measured: while a run is in flight the bench wraps the Client VPN backend's
``describe_target_networks`` and ``describe_routes`` (in this process, where the local cloud serves)
to record the emulated clock at every call. After the run it reads the association completion times
from the backend (``TargetNetworkAssociation.completes_at``, emulated POSIX seconds) and, for the
second loop, ``active_at`` of the rules and routes. Overshoot = emulated time of the first
DescribeClientVpnTargetNetworks call at or after the last association completed (the
CheckAssociations step that saw them ready) minus that completion time. A cross-check converts the
wall-clock timestamp of that step's LambdaFunctionScheduled history event to emulated time with the
clock's linear mapping (emulated = E0 + (wall - W0) x time_scale, sampled once per run).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import PRICES, progress, render_table
from bench.cost_model import PollSchedule

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
ENDPOINT_QUOTA = 100
# The local cloud has no Cognito: with these the template signs the request form in with an outside
# issuer (Condition UseCognitoSignIn false), so the Cognito resources are neither created nor served.
OUTSIDE_ISSUER = {"OidcIssuerUrl": "https://issuer.bench.local", "OidcAudience": "bench-form"}
CHECK_ASSOCIATIONS = "CheckAssociationsFunction"
CHECK_RULES_AND_ROUTES = "CheckRulesAndRoutesFunction"
POLLING_FUNCTIONS = (CHECK_ASSOCIATIONS, CHECK_RULES_AND_ROUTES)
POLL_LOOPS = {
    "associations": ("WaitForAssociations", "CheckAssociations", "AssociationsReady?"),
    "rules-and-routes": ("WaitForRulesAndRoutes", "CheckRulesAndRoutes", "RulesAndRoutesReady?"),
}

__all__ = ["ProductBench", "RunFigures", "report_provisioning"]


@dataclass
class RunFigures:
    """What one provisioning cost and how long it overshot."""

    label: str
    zones: int
    association_seconds: float
    status: str
    wall_seconds: float
    state_entered: int
    history_events: int
    invocations: dict[str, int]
    lambda_seconds: dict[str, list[float]]
    runtime_invocations: int
    runtime_cold_starts: int
    api_calls: dict[str, int]
    polls: dict[str, int]
    loop_states_entered: dict[str, int]
    association_overshoot: float | None
    association_overshoot_history: float | None
    routes_overshoot: float | None
    poll_periods: list[float] = field(default_factory=list)
    memory_mb: int = 256

    @property
    def lambda_requests(self) -> int:
        return sum(self.invocations.values())

    @property
    def billed_seconds(self) -> float:
        """Lambda billed seconds: each invocation's duration rounded up to the millisecond."""
        return sum(math.ceil(s * 1000) / 1000 for samples in self.lambda_seconds.values() for s in samples)

    @property
    def transitions_usd(self) -> float:
        return PRICES.transitions_usd(self.state_entered)

    @property
    def lambda_usd(self) -> float:
        return PRICES.lambda_usd(self.lambda_requests, self.billed_seconds, self.memory_mb)

    @property
    def total_polls(self) -> int:
        return sum(self.polls.values())

    @property
    def transitions_per_poll(self) -> float:
        """States entered per turn of a Wait / check / Choice loop (both loops pooled)."""
        return sum(self.loop_states_entered.values()) / self.total_polls if self.total_polls else math.nan


class _DescribeClock:
    """Records the emulated time of every DescribeClientVpnTargetNetworks / DescribeClientVpnRoutes call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []
        self._lock = threading.Lock()

    @contextmanager
    def installed(self) -> Iterator[_DescribeClock]:
        from localcloud.clientvpn.models import ClientVpnBackend
        from localcloud.clock import get_clock

        originals: dict[str, Callable[..., Any]] = {
            "describe_target_networks": ClientVpnBackend.describe_target_networks,
            "describe_routes": ClientVpnBackend.describe_routes,
        }

        def recording(name: str) -> Any:
            original = originals[name]

            def wrapper(backend: Any, endpoint_id: str, *args: Any, **kwargs: Any) -> Any:
                with self._lock:
                    self.calls.append((name, endpoint_id, get_clock().timestamp()))
                return original(backend, endpoint_id, *args, **kwargs)

            return wrapper

        for name in originals:
            setattr(ClientVpnBackend, name, recording(name))
        try:
            yield self
        finally:
            for name, original in originals.items():
                setattr(ClientVpnBackend, name, original)

    def times(self, name: str, endpoint_id: str) -> list[float]:
        with self._lock:
            return sorted(t for n, e, t in self.calls if n == name and e == endpoint_id)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()


class ProductBench:
    """template.yaml on a local cloud with the sample network: runs provisionings and measures them."""

    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self._cloud: Any = None
        self._product: Any = None
        self._describes = _DescribeClock()
        self._logical_ids: dict[str, str] = {}
        self._memory_mb: dict[str, int] = {}
        self.deploy_seconds = 0.0

    def __enter__(self) -> ProductBench:
        from localcloud.cloud import LocalCloud
        from localcloud.sample_network import build_sample_network
        from tests.provisioning.workflow.harness import Provisioning

        self._cloud = LocalCloud(time_scale=self.time_scale, fault_seed=11).start()
        started = time.perf_counter()
        stack = self._cloud.deploy(
            TEMPLATE, stack_name="cvpn-autopilot", parameter_overrides=_parameter_overrides(), serve=False
        )
        self.deploy_seconds = time.perf_counter() - started
        self._backend().quotas.endpoints_per_region = ENDPOINT_QUOTA
        network = build_sample_network(self._cloud.client, region=self._cloud.region)
        self._product = Provisioning(cloud=self._cloud, stack=stack, network=network)
        resources = stack.template.get("Resources", {})
        for logical_id, info in stack.functions.items():
            self._logical_ids[info.name] = logical_id
            memory = resources.get(logical_id, {}).get("Properties", {}).get("MemorySize", 128)
            self._memory_mb[logical_id] = int(memory)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cloud is not None:
            self._cloud.stop()

    @property
    def cloud(self) -> Any:
        return self._cloud

    @property
    def stack(self) -> Any:
        """The deployed product stack."""
        return self._product.stack

    def memory_mb(self, logical_id: str = CHECK_ASSOCIATIONS) -> int:
        """MemorySize of a function in the deployed (transformed) template."""
        return self._memory_mb.get(logical_id, 128)

    def _backend(self) -> Any:
        from localcloud.clientvpn.models import clientvpn_backends
        from localcloud.cloud import DEFAULT_ACCOUNT_ID

        return clientvpn_backends[DEFAULT_ACCOUNT_ID][self._cloud.region]

    # ------------------------------------------------------------------ one run
    def run(self, label: str, *, zones: int, association_seconds: float = 240.0) -> RunFigures:
        """Provision the seed scenario once and measure it."""
        from localcloud.faults import api_call_counts, reset_api_call_counts

        backend = self._backend()
        default_timings = backend.timings
        backend.timings = dataclasses.replace(default_timings, association_seconds=association_seconds)
        sfn = self._cloud.client("stepfunctions")
        request = self._product.request(zones=zones)
        progress(f"B: {label}: {zones} AZs, association {association_seconds:.0f} s")
        stats_before = self._cloud.runtime.stats()
        reset_api_call_counts()
        self._describes.clear()
        try:
            with self._describes.installed():
                started = time.perf_counter()
                arn = sfn.start_execution(
                    stateMachineArn=self._product.provision_arn,
                    name=f"bench-{request['request_id']}",
                    input=json.dumps({"request": request}),
                )["executionArn"]
                status = _wait_for(sfn, arn, timeout=300)
                wall = time.perf_counter() - started
        finally:
            backend.timings = default_timings
        api_calls = api_call_counts()
        stats_after = self._cloud.runtime.stats()
        wall_now, emulated_now = time.time(), self._cloud.clock.timestamp()
        events = _history(sfn, arn)
        return self._figures(
            label,
            zones,
            association_seconds,
            status,
            wall,
            events,
            api_calls,
            stats_before,
            stats_after,
            lambda w: emulated_now + (w - wall_now) * self._cloud.clock.time_scale,
        )

    def _figures(
        self,
        label: str,
        zones: int,
        association_seconds: float,
        status: str,
        wall: float,
        events: list[dict[str, Any]],
        api_calls: dict[str, int],
        stats_before: dict[str, Any],
        stats_after: dict[str, Any],
        to_emulated: Callable[[float], float],
    ) -> RunFigures:
        by_id = {event["id"]: event for event in events}
        entered = [e for e in events if e["type"].endswith("StateEntered")]
        entered_names = Counter(e["stateEnteredEventDetails"]["name"] for e in entered)
        invocations: Counter[str] = Counter()
        seconds: dict[str, list[float]] = {}
        check_scheduled: list[float] = []
        for event in events:
            if event["type"] == "LambdaFunctionScheduled":
                logical = self._logical(event["lambdaFunctionScheduledEventDetails"]["resource"])
                invocations[logical] += 1
                if logical == CHECK_ASSOCIATIONS:
                    check_scheduled.append(to_emulated(event["timestamp"].timestamp()))
            if event["type"] in ("LambdaFunctionSucceeded", "LambdaFunctionFailed", "LambdaFunctionTimedOut"):
                started_event = by_id.get(event.get("previousEventId", -1))
                scheduled = by_id.get(started_event.get("previousEventId", -1)) if started_event else None
                if (
                    started_event is None
                    or scheduled is None
                    or scheduled["type"] != "LambdaFunctionScheduled"
                ):
                    continue
                logical = self._logical(scheduled["lambdaFunctionScheduledEventDetails"]["resource"])
                duration = (event["timestamp"] - started_event["timestamp"]).total_seconds()
                seconds.setdefault(logical, []).append(max(duration, 0.001))

        endpoint_id = self._endpoint_id(events)
        association_overshoot = routes_overshoot = history_overshoot = None
        periods: list[float] = []
        if endpoint_id is not None:
            endpoint = self._backend().get_endpoint(endpoint_id)
            completed = max(a.completes_at for a in endpoint.associations.values())
            checks = self._describes.times("describe_target_networks", endpoint_id)
            association_overshoot = _first_at_or_after(checks, completed)
            # The check that saw them ready is the loop's last one: the Choice leaves the loop after it.
            history_overshoot = check_scheduled[-1] - completed if check_scheduled else None
            polling = [t for t in checks if t <= completed + (association_overshoot or 0) + 1e-6]
            periods = [b - a for a, b in itertools.pairwise(polling)]
            ready = max(
                [r.active_at for r in endpoint.authorization_rules] + [r.active_at for r in endpoint.routes]
            )
            routes_overshoot = _first_at_or_after(
                self._describes.times("describe_routes", endpoint_id), ready
            )

        before = stats_before["functions"]
        after = stats_after["functions"]
        cold = sum(f["cold_starts"] - before.get(name, {}).get("cold_starts", 0) for name, f in after.items())
        return RunFigures(
            label=label,
            zones=zones,
            association_seconds=association_seconds,
            status=status,
            wall_seconds=wall,
            state_entered=len(entered),
            history_events=len(events),
            invocations=dict(invocations),
            lambda_seconds=seconds,
            runtime_invocations=stats_after["invocations"] - stats_before["invocations"],
            runtime_cold_starts=cold,
            api_calls=api_calls,
            polls={loop: entered_names[states[1]] for loop, states in POLL_LOOPS.items()},
            loop_states_entered={
                loop: sum(entered_names[name] for name in states) for loop, states in POLL_LOOPS.items()
            },
            association_overshoot=association_overshoot,
            association_overshoot_history=history_overshoot,
            routes_overshoot=routes_overshoot,
            poll_periods=periods,
            memory_mb=self.memory_mb(),
        )

    def _logical(self, function_arn: str) -> str:
        name = function_arn.split(":function:")[-1].split(":")[0]
        return self._logical_ids.get(name, name)

    @staticmethod
    def _endpoint_id(events: list[dict[str, Any]]) -> str | None:
        for event in events:
            if (
                event["type"] == "TaskStateExited"
                and event["stateExitedEventDetails"]["name"] == "CreateEndpoint"
            ):
                output = json.loads(event["stateExitedEventDetails"]["output"])
                return str(output["endpoint"]["endpoint_id"])
        return None


def _parameter_overrides() -> dict[str, str]:
    """The endpoint quota, and an outside sign-in issuer when the template has that parameter."""
    import yaml

    class _Loader(yaml.SafeLoader):
        """Reads CloudFormation's short-form tags (!Ref, !If, ...) as plain values."""

    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    declared = (yaml.load(TEMPLATE.read_text(), Loader=_Loader) or {}).get("Parameters", {})
    overrides = {"ClientVpnEndpointQuota": str(ENDPOINT_QUOTA)}
    overrides.update({name: value for name, value in OUTSIDE_ISSUER.items() if name in declared})
    return overrides


def _first_at_or_after(times: list[float], moment: float) -> float | None:
    """Seconds from ``moment`` to the first of ``times`` at or after it (None if there is none)."""
    later = [t for t in sorted(times) if t >= moment]
    return later[0] - moment if later else None


def _wait_for(sfn: Any, arn: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = str(sfn.describe_execution(executionArn=arn)["status"])
        if status != "RUNNING":
            return status
        time.sleep(0.2)
    return "TIMED OUT (bench)"


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


# ---------------------------------------------------------------------------------------------- report
def _fmt_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _short(logical_id: str) -> str:
    return logical_id.removesuffix("Function")


def report_provisioning(
    runs: list[RunFigures],
    sweep: list[RunFigures],
    *,
    time_scale: float,
    deploy_seconds: float,
    schedule: PollSchedule,
) -> str:
    """Section B as text: per-run counts and cost, then the overshoot sweep."""
    lines = [
        "B. Provisioning workflow (seed scenario: 1 authorization rule, 2 routes through every subnet)",
        f"  template.yaml deployed in {deploy_seconds:.1f} s; time scale {time_scale:g}"
        " (emulated s per real s); functions warmed by one 3-AZ run first",
        "",
    ]
    functions = sorted({name for run in runs for name in run.invocations})
    header = ["", *(run.label for run in runs)]
    rows: list[list[object]] = [
        ["AZs (subnets)", *(run.zones for run in runs)],
        ["status", *(run.status for run in runs)],
        ["wall seconds (incl. emulated waits)", *(run.wall_seconds for run in runs)],
        ["state transitions (StateEntered events)", *(run.state_entered for run in runs)],
        ["history events (all types)", *(run.history_events for run in runs)],
        ["polls: CheckAssociations", *(run.polls["associations"] for run in runs)],
        ["polls: CheckRulesAndRoutes", *(run.polls["rules-and-routes"] for run in runs)],
        ["states entered per poll (Wait+check+Choice)", *(run.transitions_per_poll for run in runs)],
        ["Lambda invocations (history LambdaFunctionScheduled)", *(run.lambda_requests for run in runs)],
        ["Lambda invocations (runtime stats() delta)", *(run.runtime_invocations for run in runs)],
        ["Lambda cold starts in the run", *(run.runtime_cold_starts for run in runs)],
    ]
    rows += [[f"  {_short(name)}", *(run.invocations.get(name, 0) for run in runs)] for name in functions]
    operations = sorted({op for run in runs for op in run.api_calls})
    rows.append(["EC2 (Client VPN) API calls", *(sum(run.api_calls.values()) for run in runs)])
    rows += [[f"  {op}", *(run.api_calls.get(op, 0) for run in runs)] for op in operations]
    rows += [
        ["Lambda billed seconds (sum, 1 ms rounding)", *(f"{run.billed_seconds:.3f}" for run in runs)],
        ["association overshoot (emulated s)", *(_fmt_seconds(run.association_overshoot) for run in runs)],
        ["rules/routes overshoot (emulated s)", *(_fmt_seconds(run.routes_overshoot) for run in runs)],
        ["cost: state transitions x 0.025 USD/1000", *(f"{run.transitions_usd:.6f}" for run in runs)],
        ["cost: Lambda (arm64, 256 MB, requests+GB-s)", *(f"{run.lambda_usd:.6f}" for run in runs)],
        ["cost: orchestration total USD", *(f"{run.transitions_usd + run.lambda_usd:.6f}" for run in runs)],
        [
            "cost: per 1,000 provisionings USD",
            *(f"{1000 * (run.transitions_usd + run.lambda_usd):.3f}" for run in runs),
        ],
    ]
    lines += [render_table(header, rows), ""]

    # The Wait before each poll as the definition schedules it (the polls may grow).
    scheduled = [later - earlier for earlier, later in itertools.pairwise(schedule.check_times(math.inf))]
    sweep_rows = []
    for run in sweep:
        period = statistics.median(run.poll_periods) if run.poll_periods else None
        latency = (
            statistics.median(gap - wait for gap, wait in zip(run.poll_periods, scheduled, strict=False))
            if run.poll_periods
            else None
        )
        sweep_rows.append(
            [
                f"{run.association_seconds:.0f}",
                run.status,
                run.polls["associations"],
                schedule.polls(run.association_seconds),
                run.state_entered,
                _fmt_seconds(run.association_overshoot),
                _fmt_seconds(run.association_overshoot_history),
                "-" if period is None else f"{period:.1f}",
                "-" if latency is None else f"{1000 * latency / time_scale:.0f}",
                _fmt_seconds(run.routes_overshoot),
                f"{run.transitions_usd + run.lambda_usd:.6f}",
            ]
        )
    lines += [
        "  Polling overshoot vs association duration (2 AZs; aim: overshoot <= one poll,"
        f" {schedule.longest_poll_seconds:.0f} emulated s at most)",
        "",
        render_table(
            [
                "association s",
                "status",
                "polls",
                "polls on AWS",
                "transitions",
                "overshoot s",
                "(history x-check)",
                "poll period s",
                "loop latency real ms",
                "routes overshoot s",
                "cost USD",
            ],
            sweep_rows,
        ),
        "",
        "  overshoot s: emulated time of the first DescribeClientVpnTargetNetworks call (made by the",
        "    CheckAssociations step) at or after the last association's completes_at, minus completes_at.",
        "    Both are on the emulated clock: the call times are recorded by wrapping the backend's",
        "    describe_target_networks in this process; completes_at comes from the backend's associations.",
        "  (history x-check): the same from the history alone: the last CheckAssociations step's",
        "    LambdaFunctionScheduled timestamp (wall time) mapped to emulated time (E0 + (wall - W0) x time",
        "    scale, sampled once per run); it precedes the API call by the Lambda's real latency x scale.",
        "  poll period s: median emulated gap between consecutive checks: the poll's Wait plus the loop's",
        "    real latency (Lambda invoke + state transitions: 'loop latency real ms', the median of gap",
        "    minus Wait) x time scale. That inflation is the emulation's, not the definition's: the local",
        f"    run may need fewer polls than the schedule ('polls on AWS': {schedule.describe()},",
        "    zero latency), and its overshoot is bounded by one poll period rather than by the Wait.",
        "  routes overshoot s: the same for the rules-and-routes loop (first DescribeClientVpnRoutes at",
        "    or after the last rule / route became active).",
        "  Lambda billed seconds: LambdaFunctionStarted -> LambdaFunctionSucceeded in the history (real",
        "    time: handlers run in real time, so this is the local figure for billed duration).",
    ]
    return "\n".join(lines)
