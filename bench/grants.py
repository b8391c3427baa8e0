"""Access grants at scale: the client-connect handler's latency with 10,000 active grants and 10,000
blocklist entries, and what 1,000 grants a month cost (figures only; nothing is asserted).

Latency: template.yaml is deployed on the local cloud; BatchWriteItem fills the grants table with
10,000 active grants (each a grant item and its connect-time item, as ``DynamoDbGrants`` writes
them) on one shared endpoint that enforces grants, and the blocklist table with 10,000 blocks. The
handler (a real Lambda runtime process) is then invoked for a user who holds a grant (allowed), one
who holds none (refused) and one who is blocked (refused): warm (the same process) and cold (its
idle process stopped first, so each call starts a new one). Each call is timed from the caller
(the Lambda API's own overhead included), and the runtime's REPORT line gives the handler's own
duration and, cold, its Init Duration.

Cost: ``GrantUsage`` counts what one grant does from request to expiry, read from the code that
does it (the grants' data access, the approval page, the expiry function, the connect handler's
one BatchGetItem); ``grant_costs`` prices it with ``bench.stack_cost.PRICES`` (each price with its
source). The client-connect handler's billed duration is the one measured here.

Run: ``.venv/bin/python bench/grants.py [--grants 10000] [--blocks 10000] [--warm 200] [--cold 15]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import math
import re
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, Python puts bench/ first on sys.path; the repository root is what we import from.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "layers" / "shared" / "python") not in sys.path:
    sys.path.append(str(ROOT / "layers" / "shared" / "python"))

from bench.common import progress, render_table  # noqa: E402
from bench.stack_cost import FREE_TIER, PRICES, CostLine, load_inventory  # noqa: E402
from cvpn_shared.provisioning.outcome import (  # noqa: E402
    CONNECTION_HOURLY_USD,
    SUBNET_ASSOCIATION_HOURLY_USD,
)

__all__ = [
    "INTAKE",
    "ConnectCase",
    "GrantUsage",
    "LambdaUse",
    "approved_grant_path",
    "grant_costs",
    "main",
    "percentile",
    "report_costs",
]

ENDPOINT_ID = "cvpn-endpoint-0b5e0c0a11ce0beef"
PROFILE = "engineering"
ISSUER = "https://login.example.com/oauth2/default"
BATCH_WRITE_ITEMS = 25  # DynamoDB's BatchWriteItem limit
REPORT_DURATION = re.compile(r"\tDuration: ([0-9.]+) ms")
REPORT_BILLED = re.compile(r"Billed Duration: ([0-9.]+) ms")
REPORT_INIT = re.compile(r"Init Duration: ([0-9.]+) ms")
KB = 1024


# ------------------------------------------------------------------------------------------ cost
@dataclass(frozen=True)
class LambdaUse:
    """Invocations of one function per grant, each billed ``billed_ms`` at the template's memory."""

    function: str  # the template's logical id
    invocations: float
    billed_ms: float
    why: str


@dataclass(frozen=True)
class GrantUsage:
    """What one grant does, request to expiry. Defaults read from the code that does each step
    (quantities per grant; DynamoDB units as on-demand bills them: a strongly consistent read is
    1 RRU per 4 KB, a write 1 WRU per KB, a transactional one twice that)."""

    grant_item_bytes: int = 2 * KB  # a grant item: the grant's JSON with its history, and indexed keys
    connect_item_bytes: int = 1 * KB  # a connect-time item: a few numbers and the grant map
    page_views: int = 6  # the requester's and approver's views: status page, person's page, confirm page
    connects: int = 10  # VPN logins during the grant
    connect_hours: float = 2.0  # hours each login stays connected (Client VPN connection-hours)
    grant_hours: float = 8.0  # the profile's default_grant_hours (NetworkProfile)
    intake_transitions: int = 10  # the intake's states an approved grant request enters (approved_grant_path)
    subnets: int = 2  # an endpoint per request would associate this many subnets
    connect_billed_ms: float = 10.0  # the client-connect handler's billed duration (measured below)
    other_billed_ms: float = 200.0  # the request, approval, page and expiry functions' billed duration

    def http_requests(self) -> float:
        """POST /requests, the approver's POST decision, and the page views."""
        return 2 + self.page_views

    def lambdas(self) -> list[LambdaUse]:
        return [
            LambdaUse(
                "RequestApiFunction", 1 + self.page_views, self.other_billed_ms, "request and page views"
            ),
            LambdaUse("ApprovalDecisionFunction", 2, self.other_billed_ms, "confirm page, then the POST"),
            LambdaUse("RequestApprovalFunction", 1, self.other_billed_ms, "the intake's RequestApproval"),
            LambdaUse("GrantDecisionFunction", 1, self.other_billed_ms, "the intake's ActivateGrant"),
            LambdaUse("EndIntakeFunction", 1, self.other_billed_ms, "the intake's EndIntake"),
            LambdaUse("ExpireGrantFunction", 1, self.other_billed_ms, "the expiry schedule's target"),
            LambdaUse("ClientConnectFunction", self.connects, self.connect_billed_ms, "one per VPN login"),
        ]

    def read_units(self) -> float:
        """Strongly consistent reads: the request's pending count and connect-time item (2), each page
        view's query (1), the approval's grant, policy and connect-time item (3), the expiry's grant and
        connect-time item (2), and each login's BatchGetItem of 5 keys (3 blocklist keys: address,
        user, user from address; the endpoint's policy and the user's connect-time item)."""
        return 2 + self.page_views + 3 + 2 + 5 * self.connects

    def write_units(self) -> float:
        """Transactional writes (2 WRU per KB): the pending grant; at approval the active grant and its
        connect-time item; at expiry the expired grant and the connect-time item's delete. Plus the
        endpoint-policy item's conditional put at approval (1 WRU: charged when its condition fails)."""
        grant = 2 * math.ceil(self.grant_item_bytes / KB)
        connect = 2 * math.ceil(self.connect_item_bytes / KB)
        return grant + (grant + connect) + (grant + connect) + 1

    def schedule_invocations(self) -> float:
        """One at() schedule per grant fires once (an extension moves it, it still fires once)."""
        return 1.0


INTAKE = ROOT / "statemachines" / "access" / "intake_request.asl.json"
# The branch an approved grant request takes at each Choice of the intake (the form's: no ticket
# callback; a ticket's takes PostResultToTicket at HasCallback?).
APPROVED_GRANT_BRANCHES = {
    "ApprovalRequired?": "PrepareApproval",
    "GrantRequest?": "ActivateGrant",
    "HasCallback?": "Finish?",
    "Finish?": "Granted",
}


def approved_grant_path(
    definition: dict[str, Any], branches: dict[str, str] = APPROVED_GRANT_BRANCHES
) -> list[str]:
    """The states an approved grant request enters, start to end (each one a billed transition);
    ValueError naming a Choice whose branch is not in ``branches`` or not one of its own."""
    states = definition["States"]
    path: list[str] = []
    name: str | None = definition["StartAt"]
    while name is not None:
        if name in path or len(path) > len(states):
            raise ValueError(f"{name}: the path loops")
        path.append(name)
        state = states[name]
        if state["Type"] == "Choice":
            offered = {choice.get("Next") for choice in state.get("Choices", [])} | {state.get("Default")}
            wanted = branches.get(name)
            if wanted is None or wanted not in offered:
                raise ValueError(
                    f"{name}: no branch for an approved grant request among {sorted(map(str, offered))}"
                )
            name = wanted
        elif state.get("End") or state["Type"] in ("Succeed", "Fail"):
            name = None
        else:
            name = state["Next"]
    return path


def _priced(key: str, quantity: float) -> float:
    return quantity * PRICES[key].usd


def grant_costs(
    usage: GrantUsage, grants: int, memory_mb: dict[str, int], *, log_bytes_per_invocation: int = 1000
) -> list[CostLine]:
    """The monthly cost of ``grants`` grants a month, line by line, at list price (the always-free
    allowances are shown after them, as if the stack used nothing else)."""
    if grants < 0:
        raise ValueError("grants must be >= 0")
    lines: list[CostLine] = []
    http = usage.http_requests() * grants
    lines.append(_line("API Gateway", "HTTP API requests", f"{http:,.0f} requests", "http_api_request", http))
    invocations = 0.0
    for use in usage.lambdas():
        count = use.invocations * grants
        invocations += count
        memory = memory_mb[use.function]
        gb_seconds = count * use.billed_ms / 1000 * memory / 1024
        usd = _priced("lambda_request", count) + _priced("lambda_gb_second_arm", gb_seconds)
        lines.append(
            CostLine(
                "Lambda",
                use.function,
                f"{count:,.0f} x {use.billed_ms:g} ms x {memory} MB",
                usd,
                _after_free("lambda_request", count) + _after_free("lambda_gb_second_arm", gb_seconds),
                use.why,
            )
        )
    reads, writes = usage.read_units() * grants, usage.write_units() * grants
    lines.append(
        CostLine(
            "DynamoDB",
            "grants and blocklist reads and writes",
            f"{reads:,.0f} RRU + {writes:,.0f} WRU",
            _priced("dynamodb_read_unit", reads) + _priced("dynamodb_write_unit", writes),
            _priced("dynamodb_read_unit", reads) + _priced("dynamodb_write_unit", writes),
            "on-demand: no free tier",
        )
    )
    stored_gb = grants * usage.grant_item_bytes / 1e9
    lines.append(
        CostLine(
            "DynamoDB",
            "storage of a month's grant records",
            f"{stored_gb * 1e6:,.0f} KB added",
            _priced("dynamodb_storage", stored_gb),
            _after_free("dynamodb_storage", stored_gb),
            "grants are audit records, kept: this adds up month after month",
        )
    )
    schedules = usage.schedule_invocations() * grants
    lines.append(
        _line(
            "EventBridge Scheduler",
            "at() expiry schedules",
            f"{schedules:,.0f} invocations",
            "scheduler_invocation",
            schedules,
        )
    )
    transitions = usage.intake_transitions * grants
    lines.append(
        _line(
            "Step Functions",
            "intake transitions",
            f"{transitions:,.0f} transitions",
            "state_transition",
            transitions,
        )
    )
    ingested_gb = invocations * log_bytes_per_invocation / 1e9
    lines.append(
        _line(
            "CloudWatch",
            "function logs",
            f"{ingested_gb * 1000:,.1f} MB ({log_bytes_per_invocation:,} B an invocation)",
            "logs_ingestion",
            ingested_gb,
        )
    )
    return lines


def _line(service: str, item: str, quantity: str, key: str, amount: float) -> CostLine:
    return CostLine(service, item, quantity, _priced(key, amount), _after_free(key, amount))


def _after_free(key: str, amount: float) -> float:
    return max(0.0, amount - FREE_TIER.get(key, 0.0)) * PRICES[key].usd


def connection_usd(usage: GrantUsage, grants: int) -> float:
    """Client VPN connection-hours of the grants' logins: the same with or without grants."""
    return grants * usage.connects * usage.connect_hours * CONNECTION_HOURLY_USD


def endpoint_per_request_usd(usage: GrantUsage, grants: int) -> float:
    """What the same requests cost as endpoints built one per request, each kept for the grant's
    hours only (the least it could cost): its subnet associations."""
    return grants * usage.subnets * usage.grant_hours * SUBNET_ASSOCIATION_HOURLY_USD


def report_costs(usage: GrantUsage, grants: int, memory_mb: dict[str, int]) -> str:
    lines = grant_costs(usage, grants, memory_mb)
    total = sum(line.usd for line in lines)
    after_free = sum(line.usd_after_free_tier for line in lines)
    rows = [[f"{line.service}: {line.item}", line.quantity, f"{line.usd:.4f}", line.note] for line in lines]
    per_request = endpoint_per_request_usd(usage, grants)
    used = {PRICES[key] for key in _PRICE_KEYS}
    return "\n".join(
        [
            f"Monthly cost of {grants:,} grants a month (USD, us-east-1, list price; figures only)",
            f"  each grant: a request, {usage.page_views} page views, an approval, activation, one at()"
            f" expiry schedule, expiry, {usage.connects} logins of {usage.connect_hours:g} h",
            f"  model inputs (GrantUsage): client-connect billed {usage.connect_billed_ms:g} ms (measured"
            f" above, warm median); intake {usage.intake_transitions} transitions (read from the"
            f" definition); assumed: the other functions {usage.other_billed_ms:g} ms, grant items"
            f" {usage.grant_item_bytes:,} B",
            "",
            render_table(["line", "quantity", "USD", "note"], rows),
            "",
            f"  what grants add: {total:.2f} USD a month at list price, {after_free:.2f} USD once the"
            " account's always-free allowances apply",
            f"  Client VPN connection-hours of those logins ({usage.connects} x {usage.connect_hours:g} h"
            f" per grant): {connection_usd(usage, grants):.2f} USD, the same with or without grants",
            f"  the same {grants:,} requests as one endpoint each, kept only the grant's"
            f" {usage.grant_hours:g} h with {usage.subnets} subnets: {per_request:.2f} USD of associations"
            " (the shared endpoint's associations are in the stack's standing cost)",
            "",
            "  prices used:",
            *(
                f"    {price.usd:.10g} USD per {price.unit} - {price.source} ({price.basis})"
                for price in sorted(used, key=lambda price: price.unit)
            ),
        ]
    )


_PRICE_KEYS = (
    "http_api_request",
    "lambda_request",
    "lambda_gb_second_arm",
    "dynamodb_read_unit",
    "dynamodb_write_unit",
    "dynamodb_storage",
    "scheduler_invocation",
    "state_transition",
    "logs_ingestion",
)


# --------------------------------------------------------------------------------------- latency
@dataclass
class ConnectCase:
    """Invocations of the handler for one kind of login, warm or cold."""

    label: str
    round_trip_ms: list[float] = field(default_factory=list)
    duration_ms: list[float] = field(default_factory=list)
    billed_ms: list[float] = field(default_factory=list)
    init_ms: list[float] = field(default_factory=list)
    answers: list[bool] = field(default_factory=list)


def percentile(samples: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (NaN for no samples)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def _chunks(items: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batch_write(dynamodb: Any, table: str, items: list[dict[str, Any]]) -> int:
    """Write ``items`` 25 at a time, resending what DynamoDB leaves unprocessed; calls made."""
    calls = 0
    for chunk in _chunks(items, BATCH_WRITE_ITEMS):
        request: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in chunk]}
        while request:
            calls += 1
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    return calls


def grant_items(count: int, now: datetime, hours: float) -> list[dict[str, Any]]:
    """``count`` active grants on the bench's endpoint, as the grants table holds them: each grant
    item and its connect-time item (written through ``DynamoDbGrants``' own item builders)."""
    from cvpn_shared.access.grants.dal import DynamoDbGrants
    from cvpn_shared.access.grants.logic import ConnectEntry, connect_entry_after
    from cvpn_shared.access.grants.models import Actor, Grant, parse_grant

    store = DynamoDbGrants(None, "grants")
    admin = Actor(kind="aws", id="arn:aws:iam::123456789012:user/bench", name="bench")
    ends = now + timedelta(hours=hours)
    items: list[dict[str, Any]] = []
    for number in range(count):
        user = f"user-{number:05d}"
        grant: Grant = parse_grant(
            {
                "grant_id": f"g-{number:032x}",
                "person": {"issuer": ISSUER, "sub": f"00u{number:08d}", "vpn_user": user},
                "profile": PROFILE,
                "endpoint_id": ENDPOINT_ID,
                "endpoint_request_id": "REQ-SHARED",
                "access_groups": ["S-1-5-21-1004336348-1177238915-682003330-512"],
                "hours": hours,
                "reason": "bench",
                "state": "active",
                "created_at": now,
                "starts_at": now,
                "ends_at": ends,
                "break_glass": True,
                "granted_by": admin,
                "history": [
                    {
                        "action": "break-glass",
                        "from_state": None,
                        "to_state": "active",
                        "at": now,
                        "by": admin,
                        "reason": "bench",
                        "ends_at": ends,
                    }
                ],
            }
        )
        items.append(store._grant_put(None, grant)["Item"])
        entry = connect_entry_after(ConnectEntry(ENDPOINT_ID, user, {}, 0), grant)
        action = store._connect_action(ConnectEntry(ENDPOINT_ID, user, {}, 0), entry)
        assert action is not None
        items.append(action["Put"]["Item"])
    return items


def block_items(count: int, now: int) -> list[dict[str, Any]]:
    """``count`` blocks in force: addresses, users, and users from an address, as the alert writes them."""
    from cvpn_shared.monitoring.dal.blocklist import BlockEntry, SubjectKind, _to_item

    kinds: tuple[SubjectKind, ...] = ("source", "user", "user_source")

    items = []
    for number in range(count):
        address = f"203.0.{number // 250 % 250}.{number % 250 + 1}"
        kind: SubjectKind = kinds[number % 3]
        value = address if kind == "source" else f"blocked-{number:05d}"
        entry = BlockEntry(
            kind=kind,
            value=value,
            expires_at=now + 86400,
            blocked_at=now,
            reason="password spray",
            finding_id=f"F-{number:08d}",
            endpoint_id=ENDPOINT_ID,
            severity="high",
            source=address if kind == "user_source" else "",
        )
        items.append(_to_item(entry))
    return items


def _request(user: str, address: str) -> bytes:
    return json.dumps(
        {
            "connection-id": "cvpn-connection-0bench",
            "endpoint-id": ENDPOINT_ID,
            "common-name": "NA",
            "username": user,
            "public-ip": address,
            "schema-version": "v2",
        }
    ).encode()


def _invoke(lambda_client: Any, function_arn: str, payload: bytes, case: ConnectCase) -> None:
    started = time.perf_counter()
    answer = lambda_client.invoke(FunctionName=function_arn, Payload=payload, LogType="Tail")
    body = json.loads(answer["Payload"].read())
    case.round_trip_ms.append((time.perf_counter() - started) * 1000)
    case.answers.append(bool(body.get("allow")))
    tail = base64.b64decode(answer.get("LogResult", "")).decode(errors="replace")
    for pattern, samples in (
        (REPORT_DURATION, case.duration_ms),
        (REPORT_BILLED, case.billed_ms),
        (REPORT_INIT, case.init_ms),
    ):
        if match := pattern.search(tail):
            samples.append(float(match.group(1)))


def measure_connect(
    cloud: Any, stack: Any, *, grants: int, blocks: int, warm: int, cold: int
) -> tuple[list[ConnectCase], dict[str, float]]:
    """Fill the tables, then time the handler warm and cold: (cases, what filling took)."""
    from botocore.config import Config

    from localcloud.clock import get_clock

    # boto3's own validation of 25 large items costs as much as the call: the items are built here.
    dynamodb = cloud.client("dynamodb", config=Config(parameter_validation=False))
    now = get_clock().now()
    grants_table = stack.outputs["AccessGrantsTableName"]
    blocklist_table = stack.physical_ids["BlocklistTable"]
    setup: dict[str, float] = {}
    progress(f"grants bench: writing {grants:,} grants (grant + connect-time items)")
    started = time.perf_counter()
    items = grant_items(grants, now, hours=24 * 7)
    items.append(
        {
            "pk": {"S": f"endpoint#{ENDPOINT_ID}"},
            "access": {"S": "grants"},
            "profile": {"S": PROFILE},
            "enforced_at": {"S": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "enforced_by": {"S": "bench"},
        }
    )
    setup["grants_calls"] = batch_write(dynamodb, grants_table, items)
    setup["grants_items"] = len(items)
    setup["grants_seconds"] = time.perf_counter() - started
    progress(f"grants bench: writing {blocks:,} blocks")
    started = time.perf_counter()
    blocked = block_items(blocks, int(now.timestamp()))
    setup["blocks_calls"] = batch_write(dynamodb, blocklist_table, blocked)
    setup["blocks_items"] = len(blocked)
    setup["blocks_seconds"] = time.perf_counter() - started

    function_arn = stack.outputs["ClientConnectFunctionArn"]
    lambda_client = cloud.client("lambda")
    logins = {
        "holds a grant (allowed)": _request(f"user-{grants // 2:05d}", "198.51.100.10"),
        "no grant (refused)": _request("stranger", "198.51.100.11"),
        "blocked user (refused)": _request("blocked-00001", "198.51.100.12"),
    }
    assert cloud.runtime is not None
    cases: list[ConnectCase] = []
    for label, payload in logins.items():
        progress(f"grants bench: {warm} warm logins, {label}")
        case = ConnectCase(f"warm, {label}")
        _invoke(lambda_client, function_arn, payload, ConnectCase("untimed"))
        for _ in range(warm):
            _invoke(lambda_client, function_arn, payload, case)
        cases.append(case)
    progress(f"grants bench: {cold} cold logins (a new runtime process each)")
    case = ConnectCase("cold, holds a grant (allowed)")
    pool = cloud.runtime.pool(function_arn.rsplit(":", 1)[-1])
    for _ in range(cold):
        # Idle processes stopped as Lambda stops them after idling: the next login starts a new one.
        pool.reap_idle(now=time.monotonic() + 1e9)
        _invoke(lambda_client, function_arn, logins["holds a grant (allowed)"], case)
    cases.append(case)
    return cases, setup


def report_connect(cases: list[ConnectCase], setup: dict[str, float], *, grants: int, blocks: int) -> str:
    rows = []
    for case in cases:
        allowed = sum(case.answers)
        rows.append(
            [
                case.label,
                len(case.round_trip_ms),
                allowed,
                round(percentile(case.round_trip_ms, 0.5), 1),
                round(percentile(case.round_trip_ms, 0.99), 1),
                round(percentile(case.duration_ms, 0.5), 1),
                round(percentile(case.duration_ms, 0.99), 1),
                round(percentile(case.init_ms, 0.5), 1) if case.init_ms else "-",
                round(percentile(case.init_ms, 0.99), 1) if case.init_ms else "-",
            ]
        )
    return "\n".join(
        [
            f"Client-connect handler with {grants:,} active grants and {blocks:,} blocklist entries"
            " (local cloud; wall ms)",
            f"  tables filled with BatchWriteItem: {setup['grants_items']:,.0f} grant items in"
            f" {setup['grants_calls']:,.0f} calls, {setup['grants_seconds']:.1f} s;"
            f" {setup['blocks_items']:,.0f} blocks in {setup['blocks_calls']:,.0f} calls,"
            f" {setup['blocks_seconds']:.1f} s",
            render_table(
                [
                    "login",
                    "calls",
                    "allowed",
                    "round trip p50",
                    "p99",
                    "handler p50",
                    "p99",
                    "init p50",
                    "p99",
                ],
                rows,
            ),
            "  round trip: boto3 lambda.invoke to answer (the local cloud's Lambda API included); handler:"
            " the runtime's REPORT Duration (one BatchGetItem of 5 keys); init: its Init Duration",
            "  the handler reads keys, never scans: the table's size should not change these figures",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--grants", type=int, default=10_000, help="active grants in the grants table")
    parser.add_argument("--blocks", type=int, default=10_000, help="entries in the blocklist")
    parser.add_argument("--warm", type=int, default=200, help="warm logins per kind of login")
    parser.add_argument("--cold", type=int, default=15, help="cold logins (a new process each)")
    parser.add_argument("--monthly-grants", type=int, default=1000, help="grants a month in the cost")
    args = parser.parse_args(argv)
    for name in ("grants", "blocks", "warm", "cold", "monthly_grants"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be at least 1")
    logging.basicConfig(level=logging.ERROR)
    from bench.provisioning import _parameter_overrides
    from localcloud.cloud import LocalCloud

    started = time.perf_counter()
    with LocalCloud(time_scale=1.0) as cloud:
        progress("grants bench: deploying template.yaml")
        stack = cloud.deploy(
            ROOT / "template.yaml",
            stack_name="cvpn-bench-grants",
            parameter_overrides=_parameter_overrides(),
            serve=False,
        )
        cases, setup = measure_connect(
            cloud, stack, grants=args.grants, blocks=args.blocks, warm=args.warm, cold=args.cold
        )
    inventory = load_inventory()
    memory = {logical_id: function.memory_mb for logical_id, function in inventory.functions.items()}
    warm_billed = [ms for case in cases if case.label.startswith("warm") for ms in case.billed_ms]
    path = approved_grant_path(json.loads(INTAKE.read_text()))
    usage = GrantUsage(
        connect_billed_ms=statistics.median(warm_billed) if warm_billed else 10.0,
        intake_transitions=len(path),
    )
    print(report_connect(cases, setup, grants=args.grants, blocks=args.blocks))
    print()
    print(report_costs(usage, args.monthly_grants, memory))
    print()
    print(f"(grants bench ran {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
