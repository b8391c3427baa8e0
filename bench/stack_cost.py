"""What the stack costs a month when nobody connects, with no endpoint and with ten.

The model reads template.yaml (every resource is either priced or named below as free or idle, so a
new resource cannot be forgotten: ``ModelError`` names any other) and takes what one scheduled run
does from the local cloud: each schedule of the stack (deployed with its defaults) is fired a few
times and its last run measured - the function's duration, its AWS API calls (the local cloud's
counter), its log output, and the CloudWatch metrics it emits (Powertools' embedded metric format).
With ten endpoints, ten provisioned requests with connection logging (as provisioning records them)
give the ingest ten empty log groups to read. A month is ``HOURS_PER_MONTH`` (AWS's 730 hours, as the
workflow's own cost estimate uses).

Every unit price is written down with its source; ``PRICES_AS_OF`` says when they were read for
us-east-1. Two totals: at list price (as if the account's always-free allowances went elsewhere) and
after those allowances (an account that uses them for nothing else).

Run: ``.venv/bin/python bench/stack_cost.py [--endpoints 10] [--subnets 2] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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

from bench.common import logging_endpoint, progress, render_table  # noqa: E402
from cvpn_shared.provisioning.outcome import HOURS_PER_MONTH, SUBNET_ASSOCIATION_HOURLY_USD  # noqa: E402

__all__ = [
    "AIM_USD",
    "FREE_TIER",
    "PRICES",
    "PRICES_AS_OF",
    "RESOURCE_TYPES",
    "CostLine",
    "ModelError",
    "ScheduledRun",
    "StackInventory",
    "UnitPrice",
    "main",
    "monthly_costs",
    "runs_per_month",
]

TEMPLATE = ROOT / "template.yaml"
AIM_USD = 5.0
REGION = "us-east-1"
PRICES_AS_OF = "2026-12-07"
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
GB = 1_000_000_000  # CloudWatch Logs and DynamoDB bill decimal gigabytes; rounding up is the safe side

STORED = "a stored copy of the AWS page"
QUOTED = "the AWS price as a stored third-party page quotes it"
KNOWN = "the well-known published price (the AWS page could not be read from here)"


class ModelError(ValueError):
    """The template has something the cost model does not know how to price."""


@dataclass(frozen=True)
class UnitPrice:
    """A published on-demand price for us-east-1, with where it was read."""

    usd: float
    unit: str
    source: str
    basis: str


PRICES: dict[str, UnitPrice] = {
    "lambda_request": UnitPrice(0.20 / 1e6, "request", "https://aws.amazon.com/lambda/pricing/", KNOWN),
    "lambda_gb_second_arm": UnitPrice(
        0.0000133334, "GB-second (Arm)", "https://aws.amazon.com/lambda/pricing/", QUOTED
    ),
    "dynamodb_write_unit": UnitPrice(
        0.625 / 1e6,
        "write request unit (on-demand)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        QUOTED,
    ),
    "dynamodb_read_unit": UnitPrice(
        0.125 / 1e6,
        "read request unit (on-demand)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        QUOTED,
    ),
    "dynamodb_storage": UnitPrice(
        0.25, "GB-month", "https://aws.amazon.com/dynamodb/pricing/on-demand/", KNOWN
    ),
    "dynamodb_pitr": UnitPrice(
        0.20, "GB-month (point-in-time recovery)", "https://aws.amazon.com/dynamodb/pricing/on-demand/", KNOWN
    ),
    "custom_metric": UnitPrice(0.30, "metric-month", "https://aws.amazon.com/cloudwatch/pricing/", QUOTED),
    "alarm_metric": UnitPrice(
        0.10, "alarm metric-month (standard resolution)", "https://aws.amazon.com/cloudwatch/pricing/", QUOTED
    ),
    "high_resolution_alarm_metric": UnitPrice(
        0.30, "alarm metric-month (high resolution)", "https://aws.amazon.com/cloudwatch/pricing/", QUOTED
    ),
    "metrics_insights_alarm_metric": UnitPrice(
        0.10,
        "metric analyzed-month (Metrics Insights alarm)",
        "https://aws.amazon.com/cloudwatch/pricing/",
        KNOWN,
    ),
    "composite_alarm": UnitPrice(
        0.50, "alarm-month (composite)", "https://aws.amazon.com/cloudwatch/pricing/", QUOTED
    ),
    "dashboard": UnitPrice(3.00, "dashboard-month", "https://aws.amazon.com/cloudwatch/pricing/", QUOTED),
    "logs_ingestion": UnitPrice(0.50, "GB ingested", "https://aws.amazon.com/cloudwatch/pricing/", QUOTED),
    "logs_storage": UnitPrice(0.03, "GB-month stored", "https://aws.amazon.com/cloudwatch/pricing/", QUOTED),
    "kms_key": UnitPrice(1.00, "customer managed key-month", "https://aws.amazon.com/kms/pricing/", STORED),
    "kms_request": UnitPrice(0.03 / 10_000, "request", "https://aws.amazon.com/kms/pricing/", QUOTED),
    "secret": UnitPrice(0.40, "secret-month", "https://aws.amazon.com/secrets-manager/pricing/", KNOWN),
    "xray_trace": UnitPrice(5.00 / 1e6, "trace recorded", "https://aws.amazon.com/xray/pricing/", STORED),
    "http_api_request": UnitPrice(
        1.00 / 1e6,
        "HTTP API request (first 300 million)",
        "https://aws.amazon.com/api-gateway/pricing/",
        KNOWN,
    ),
    "scheduler_invocation": UnitPrice(
        1.00 / 1e6, "EventBridge Scheduler invocation", "https://aws.amazon.com/eventbridge/pricing/", KNOWN
    ),
    "state_transition": UnitPrice(
        0.025 / 1000, "state transition (Standard)", "https://aws.amazon.com/step-functions/pricing/", KNOWN
    ),
    "client_vpn_association": UnitPrice(
        SUBNET_ASSOCIATION_HOURLY_USD, "subnet association-hour", "https://aws.amazon.com/vpn/pricing/", KNOWN
    ),
}

# Always-free monthly allowances as the pages above publish them, per account (per Region, except KMS's
# across Regions): they apply to everything the account runs.
FREE_TIER: dict[str, float] = {
    "lambda_request": 1_000_000,
    "lambda_gb_second_arm": 400_000,
    "custom_metric": 10,
    "alarm_metric": 10,  # standard-resolution alarms that list their metrics (not Metrics Insights)
    "dashboard": 3,
    "logs_ingestion": 5,  # 5 GB of ingestion, archive storage and Logs Insights scans together
    "kms_request": 20_000,
    "xray_trace": 100_000,
    "dynamodb_storage": 25,
    "scheduler_invocation": 14_000_000,
    "state_transition": 4_000,
}

# How each resource type of the template is accounted for. A type missing here fails the model.
RESOURCE_TYPES: dict[str, str] = {
    "AWS::Serverless::Function": "priced: Lambda, X-Ray, logs, metrics of its scheduled runs; idle otherwise",
    "AWS::Serverless::StateMachine": "priced: Step Functions transitions (none when no request comes)",
    "AWS::DynamoDB::Table": "priced: on-demand requests of scheduled runs, storage, point-in-time recovery",
    "AWS::CloudWatch::Alarm": "priced: per alarm metric, or per metric a Metrics Insights query analyzes",
    "AWS::CloudWatch::CompositeAlarm": "priced: per composite alarm",
    "AWS::CloudWatch::Dashboard": "priced: per dashboard",
    "AWS::KMS::Key": "priced: per customer managed key, plus its rotations",
    "AWS::SecretsManager::Secret": "priced: per secret",
    "AWS::Logs::LogGroup": "priced: ingestion and storage of the scheduled functions' log lines",
    "AWS::Serverless::LayerVersion": "free: layer storage is not billed",
    "AWS::S3::Bucket": "idle: client configurations only (a few KB each), no requests when nobody asks",
    "AWS::S3::BucketPolicy": "free",
    "AWS::SNS::Topic": "idle: no publish when nothing is found or provisioned; topics have no standing fee",
    "AWS::SNS::Subscription": "idle: e-mail deliveries only when something is published",
    "AWS::SQS::Queue": "idle: a dead-letter queue nothing polls; requests only when something fails",
    "AWS::SQS::QueuePolicy": "free",
    "AWS::Events::EventBus": "idle: custom events only when the ingest finds something",
    "AWS::Events::Rule": "idle: rules on the custom bus match nothing when nothing is published",
    "AWS::Serverless::HttpApi": "idle: billed per request, none when nobody asks",
    "AWS::Cognito::UserPool": "idle: billed per monthly active user, none when nobody signs in",
    "AWS::Cognito::UserPoolDomain": "free",
    "AWS::Cognito::UserPoolClient": "free",
    "AWS::Scheduler::ScheduleGroup": "idle: one-time grant expiries only (14 million a month free)",
    "AWS::IAM::Role": "free",
    "AWS::IAM::ManagedPolicy": "free",
}

# Function event sources that cost nothing until something happens (an API call, a published event).
ON_ACTIVITY_EVENTS = frozenset(
    {"HttpApi", "Api", "EventBridgeRule", "CloudWatchEvent", "SNS", "S3", "Cognito"}
)
SCHEDULE_EVENTS = frozenset({"Schedule", "ScheduleV2"})
DYNAMODB_READS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems")
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
# Lambda appends this to REPORT when tracing is active; the local runtime does not write it.
XRAY_REPORT_SUFFIX = (
    "\tXRAY TraceId: 1-00000000-000000000000000000000000\tSegmentId: 0000000000000000\tSampled: true"
)
# DynamoDB keeps a table key for five minutes of use before asking KMS again (AWS managed key).
TABLE_KEY_CACHE_SECONDS = 300


# ------------------------------------------------------------------------------------ the template
def runs_per_month(expression: str) -> float:
    """How many times a schedule expression fires in a month of ``HOURS_PER_MONTH``."""
    text = expression.strip()
    if match := re.fullmatch(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)", text, re.I):
        seconds = (
            int(match.group(1))
            * {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).lower().rstrip("s")]
        )
        if seconds <= 0:
            raise ModelError(f"schedule {expression!r}: the rate must be positive")
        return SECONDS_PER_MONTH / seconds
    if text.lower().startswith("cron(") and text.endswith(")"):
        from localcloud.scheduler import CronExpression, ScheduleError

        try:
            cron = CronExpression.parse(text[len("cron(") : -1])
        except (ScheduleError, ValueError) as error:
            raise ModelError(f"schedule {expression!r}: {error}") from error
        # Counted over a month of hours from 1 January (a cron bound to other months counts none).
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        end = moment + timedelta(hours=HOURS_PER_MONTH)
        count = 0
        with contextlib.suppress(ScheduleError):  # it fires no more
            while (moment := cron.next_after(moment)) <= end:
                count += 1
        return float(count)
    raise ModelError(f"schedule {expression!r}: only rate(...) and cron(...) expressions are priced")


@dataclass(frozen=True)
class Function:
    logical_id: str
    memory_mb: int
    tracing: bool
    schedules: tuple[str, ...]
    tables: tuple[str, ...]  # DynamoDB tables its policies name


@dataclass(frozen=True)
class Alarm:
    logical_id: str
    kind: str  # standard | high-resolution | metrics-insights | metrics-insights-own | composite
    metrics: int  # alarm metrics (metrics-insights: per endpoint; -own: none while idle)


@dataclass
class StackInventory:
    """What template.yaml holds, as far as its standing cost goes."""

    functions: dict[str, Function] = field(default_factory=dict)
    alarms: list[Alarm] = field(default_factory=list)
    dashboards: int = 0
    kms_keys: list[tuple[str, bool]] = field(default_factory=list)  # (logical id, rotation on)
    secrets: int = 0
    tables: dict[str, dict[str, bool]] = field(default_factory=dict)  # logical id -> sse_kms, pitr
    state_machines: int = 0
    topics: int = 0
    queues: int = 0
    buckets: int = 0
    log_groups: dict[str, int] = field(default_factory=dict)  # logical id -> retention days
    types: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_template(cls, template: dict[str, Any]) -> StackInventory:
        """The inventory of a SAM template, its loops expanded (as
        ``localcloud.language_extensions.load_expanded_template`` reads it); parameters take their
        defaults. Raises ModelError for anything the model cannot price."""
        parameters = {name: spec.get("Default") for name, spec in (template.get("Parameters") or {}).items()}
        globals_function = (template.get("Globals") or {}).get("Function") or {}
        inventory = cls()
        for logical_id, resource in (template.get("Resources") or {}).items():
            kind = str(resource.get("Type"))
            if kind not in RESOURCE_TYPES:
                raise ModelError(
                    f"{logical_id}: resource type {kind} is neither priced nor listed as free or idle"
                    " (add it to RESOURCE_TYPES in bench/stack_cost.py with how it is billed)"
                )
            inventory.types[kind] += 1
            properties = resource.get("Properties") or {}
            inventory._add(logical_id, kind, properties, parameters, globals_function)
        return inventory

    def _add(
        self,
        logical_id: str,
        kind: str,
        properties: dict[str, Any],
        parameters: dict[str, Any],
        globals_function: dict[str, Any],
    ) -> None:
        if kind == "AWS::Serverless::Function":
            self.functions[logical_id] = _function(logical_id, properties, parameters, globals_function)
        elif kind == "AWS::Serverless::StateMachine":
            for name, event in (properties.get("Events") or {}).items():
                if event.get("Type") in SCHEDULE_EVENTS:
                    raise ModelError(
                        f"{logical_id}: scheduled executions ({name}) are not priced by the model"
                    )
            self.state_machines += 1
        elif kind == "AWS::DynamoDB::Table":
            if properties.get("BillingMode") != "PAY_PER_REQUEST":
                raise ModelError(f"{logical_id}: only on-demand (PAY_PER_REQUEST) tables are priced")
            sse = properties.get("SSESpecification") or {}
            pitr = properties.get("PointInTimeRecoverySpecification") or {}
            self.tables[logical_id] = {
                "sse_kms": bool(sse.get("SSEEnabled")),
                "pitr": bool(pitr.get("PointInTimeRecoveryEnabled")),
            }
        elif kind == "AWS::CloudWatch::Alarm":
            self.alarms.append(_alarm(logical_id, properties))
        elif kind == "AWS::CloudWatch::CompositeAlarm":
            self.alarms.append(Alarm(logical_id, "composite", 1))
        elif kind == "AWS::CloudWatch::Dashboard":
            self.dashboards += 1
        elif kind == "AWS::KMS::Key":
            self.kms_keys.append((logical_id, bool(properties.get("EnableKeyRotation"))))
        elif kind == "AWS::SecretsManager::Secret":
            self.secrets += 1
        elif kind == "AWS::Events::Rule" and properties.get("ScheduleExpression"):
            raise ModelError(f"{logical_id}: a scheduled rule's targets are not priced by the model")
        elif kind == "AWS::Logs::LogGroup":
            retention = _resolve(properties.get("RetentionInDays"), parameters)
            self.log_groups[logical_id] = int(retention) if retention is not None else 0
        elif kind == "AWS::SNS::Topic":
            self.topics += 1
        elif kind == "AWS::SQS::Queue":
            self.queues += 1
        elif kind == "AWS::S3::Bucket":
            self.buckets += 1

    @property
    def scheduled_functions(self) -> list[Function]:
        return [function for function in self.functions.values() if function.schedules]


def _resolve(value: Any, parameters: dict[str, Any]) -> Any:
    """A property's value with a parameter ``Ref`` replaced by the parameter's default."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
        return parameters[value["Ref"]]
    return value


def _function(
    logical_id: str, properties: dict[str, Any], parameters: dict[str, Any], globals_function: dict[str, Any]
) -> Function:
    schedules: list[str] = []
    for name, event in (properties.get("Events") or {}).items():
        event_type = str(event.get("Type"))
        event_properties = event.get("Properties") or {}
        if event_type in SCHEDULE_EVENTS:
            expression = _resolve(event_properties.get("Schedule"), parameters)
            if not isinstance(expression, str):
                raise ModelError(f"{logical_id}.{name}: its schedule is not a literal or a parameter default")
            schedules.append(expression)
        elif event_type in ON_ACTIVITY_EVENTS:
            if event_properties.get("Schedule"):
                raise ModelError(f"{logical_id}.{name}: a scheduled {event_type} event is not priced")
        else:
            raise ModelError(
                f"{logical_id}.{name}: event source {event_type} may cost while idle (a poller);"
                " the model does not price it"
            )
    memory = properties.get("MemorySize", globals_function.get("MemorySize", 128))
    tracing = properties.get("Tracing", globals_function.get("Tracing", "PassThrough"))
    policies = json.dumps(properties.get("Policies") or [])
    tables = set(re.findall(r'"TableName": \{"Ref": "(\w+)"\}', policies))
    tables |= set(re.findall(r":table/\$\{(\w+)\}", policies))
    return Function(logical_id, int(memory), tracing == "Active", tuple(schedules), tuple(sorted(tables)))


def _alarm(logical_id: str, properties: dict[str, Any]) -> Alarm:
    if properties.get("MetricName"):
        period = int(properties.get("Period", 60))
        return Alarm(logical_id, "high-resolution" if period < 60 else "standard", 1)
    queries = properties.get("Metrics") or []
    if not queries:
        raise ModelError(f"{logical_id}: an alarm with neither MetricName nor Metrics")
    for query in queries:
        expression = str(query.get("Expression", ""))
        if expression.strip().upper().startswith("SELECT"):
            if re.search(r'FROM\s+"?ClientVpnAutopilot"?\s*$', expression.strip()):
                # The product's own counts, published only when not zero: idle, the query reads none.
                return Alarm(logical_id, "metrics-insights-own", 0)
            if not re.search(r'FROM\s+(SCHEMA\(\s*)?"?AWS/ClientVPN"?', expression):
                raise ModelError(
                    f"{logical_id}: a Metrics Insights alarm over {expression!r}: the model knows how many"
                    " metrics only AWS/ClientVPN queries (one per endpoint) and the product's own"
                    " namespace (none while idle) analyze"
                )
            return Alarm(logical_id, "metrics-insights", 1)
        if "ANOMALY_DETECTION_BAND" in expression.upper():
            raise ModelError(f"{logical_id}: anomaly detection alarms are not priced by the model")
    stats = [query["MetricStat"] for query in queries if "MetricStat" in query]
    if not stats:
        raise ModelError(f"{logical_id}: a metric math alarm that reads no metric")
    high = any(int(stat.get("Period", 60)) < 60 for stat in stats)
    return Alarm(logical_id, "high-resolution" if high else "standard", len(stats))


def load_inventory(path: Path = TEMPLATE) -> StackInventory:
    from localcloud.language_extensions import load_expanded_template

    return StackInventory.from_template(load_expanded_template(path))


# ------------------------------------------------------------------------------------ measured runs
@dataclass(frozen=True)
class ScheduledRun:
    """What one scheduled run of a function does when nobody connects (measured on the local cloud)."""

    duration_ms: float
    api_calls: dict[str, int]
    log_bytes: int
    metrics: frozenset[tuple[str, str, tuple[tuple[str, str], ...]]]  # namespace, name, dimensions
    largest_item_bytes: int = 0  # the largest DynamoDB item in the stack's tables afterwards
    stored_bytes: int = 0  # the stack's DynamoDB items, all tables

    def calls(self, service: str, operations: Iterable[str]) -> int:
        return sum(self.api_calls.get(f"{service}:{operation}", 0) for operation in operations)


@dataclass(frozen=True)
class CostLine:
    """One line of the monthly cost."""

    service: str
    item: str
    quantity: str
    usd: float
    usd_after_free_tier: float
    note: str = ""


def _priced(key: str, quantity: float) -> tuple[float, float]:
    """(list price, price beyond the always-free allowance) of ``quantity`` units."""
    price = PRICES[key].usd
    return quantity * price, max(0.0, quantity - FREE_TIER.get(key, 0.0)) * price


def monthly_costs(
    inventory: StackInventory, runs: dict[str, ScheduledRun], *, endpoints: int, subnets_per_endpoint: int = 2
) -> list[CostLine]:
    """The stack's standing monthly cost, line by line, for ``endpoints`` endpoints nobody uses;
    ``runs`` holds one measured run per scheduled function (by logical id)."""
    if endpoints < 0 or subnets_per_endpoint < 1:
        raise ValueError("endpoints must be >= 0 and subnets_per_endpoint >= 1")
    lines: list[CostLine] = []
    for function in inventory.scheduled_functions:
        if function.logical_id not in runs:
            raise ModelError(f"{function.logical_id}: scheduled, but no measured run was given")
        lines += _scheduled_function_lines(inventory, function, runs[function.logical_id])
    lines += _dynamodb_storage_lines(inventory, runs)
    lines += _cloudwatch_lines(inventory, endpoints)
    lines += _kms_and_secret_lines(inventory)
    lines += _idle_lines(inventory)
    if endpoints:
        hours = endpoints * subnets_per_endpoint * HOURS_PER_MONTH
        usd, _ = _priced("client_vpn_association", hours)
        lines.append(
            CostLine(
                "Client VPN",
                "subnet associations",
                f"{endpoints} x {subnets_per_endpoint} subnets x {HOURS_PER_MONTH} h",
                usd,
                usd,
                "plus 0.05 USD per connection-hour: none when nobody connects",
            )
        )
    return lines


def _scheduled_function_lines(
    inventory: StackInventory, function: Function, run: ScheduledRun
) -> list[CostLine]:
    count = sum(runs_per_month(expression) for expression in function.schedules)
    name = function.logical_id
    billed_seconds = math.ceil(run.duration_ms) / 1000
    gb_seconds = count * billed_seconds * function.memory_mb / 1024
    requests, requests_free = _priced("lambda_request", count)
    compute, compute_free = _priced("lambda_gb_second_arm", gb_seconds)
    lines = [
        CostLine(
            "Lambda",
            f"{name} requests",
            f"{count:,.0f} runs",
            requests,
            requests_free,
        ),
        CostLine(
            "Lambda",
            f"{name} duration",
            f"{count:,.0f} x {billed_seconds * 1000:.0f} ms x {function.memory_mb} MB",
            compute,
            compute_free,
            "the run's duration here; Lambda's CPU at this memory may differ",
        ),
    ]
    reads = run.calls("dynamodb", DYNAMODB_READS) * count * max(1, math.ceil(run.largest_item_bytes / 4096))
    writes = run.calls("dynamodb", DYNAMODB_WRITES) * count * max(1, math.ceil(run.largest_item_bytes / 1024))
    read_usd, _ = _priced("dynamodb_read_unit", reads)
    write_usd, _ = _priced("dynamodb_write_unit", writes)
    lines.append(
        CostLine(
            "DynamoDB",
            f"{name} reads and writes",
            f"{reads:,.0f} RRU + {writes:,.0f} WRU",
            read_usd + write_usd,
            read_usd + write_usd,
            "one unit per call (items under 1 KB / 4 KB), on-demand has no free tier",
        )
    )
    encrypted = [table for table in function.tables if inventory.tables.get(table, {}).get("sse_kms")]
    if encrypted and run.calls("dynamodb", DYNAMODB_READS + DYNAMODB_WRITES):
        kms_requests = len(encrypted) * SECONDS_PER_MONTH / TABLE_KEY_CACHE_SECONDS
        usd, free = _priced("kms_request", kms_requests)
        lines.append(
            CostLine(
                "KMS",
                f"{name}: DynamoDB table keys (aws/dynamodb)",
                f"<= {kms_requests:,.0f} requests",
                usd,
                free,
                f"at most one per table ({len(encrypted)}) per 5 minutes of use",
            )
        )
    metrics = len(run.metrics)
    usd, free = _priced("custom_metric", metrics)
    lines.append(
        CostLine(
            "CloudWatch",
            f"{name} custom metrics",
            f"{metrics} metrics, every hour",
            usd,
            free,
            ", ".join(sorted(metric for _, metric, _ in run.metrics)),
        )
    )
    log_bytes = run.log_bytes + (len(XRAY_REPORT_SUFFIX) if function.tracing else 0)
    ingested_gb = count * log_bytes / GB
    usd, free = _priced("logs_ingestion", ingested_gb)
    retention = _function_log_retention_days(inventory, function)
    stored_gb = ingested_gb * (retention if retention else 365) / (HOURS_PER_MONTH / 24)
    stored_usd, _ = _priced("logs_storage", stored_gb)
    lines.append(
        CostLine(
            "CloudWatch",
            f"{name} logs",
            f"{ingested_gb * 1000:,.1f} MB in ({log_bytes:,} B a run), {stored_gb * 1000:,.1f} MB kept",
            usd + stored_usd,
            free + stored_usd,
            f"kept {retention} days" if retention else "never expire: a year's worth shown",
        )
    )
    if function.tracing:
        usd, free = _priced("xray_trace", count)
        lines.append(
            CostLine(
                "X-Ray",
                f"{name} traces",
                f"{count:,.0f} traces",
                usd,
                free,
                "active tracing samples 1 request a second: every run",
            )
        )
    return lines


def _function_log_retention_days(inventory: StackInventory, function: Function) -> int:
    return inventory.log_groups.get(f"{function.logical_id}LogGroup", 0)


def _dynamodb_storage_lines(inventory: StackInventory, runs: dict[str, ScheduledRun]) -> list[CostLine]:
    stored = max((run.stored_bytes for run in runs.values()), default=0) / GB
    usd, free = _priced("dynamodb_storage", stored)
    pitr_tables = sum(1 for table in inventory.tables.values() if table["pitr"])
    pitr, _ = _priced("dynamodb_pitr", stored if pitr_tables else 0.0)
    return [
        CostLine(
            "DynamoDB",
            f"storage ({len(inventory.tables)} tables, {pitr_tables} with point-in-time recovery)",
            f"{stored * GB / 1000:,.1f} KB",
            usd + pitr,
            free + pitr,
        )
    ]


def _cloudwatch_lines(inventory: StackInventory, endpoints: int) -> list[CostLine]:
    lines: list[CostLine] = []
    standard = sum(a.metrics for a in inventory.alarms if a.kind == "standard")
    usd, free = _priced("alarm_metric", standard)
    names = ", ".join(f"{a.logical_id} {a.metrics}" for a in inventory.alarms if a.kind == "standard")
    lines.append(
        CostLine("CloudWatch", "alarms, standard resolution", f"{standard} alarm metrics", usd, free, names)
    )
    high = sum(a.metrics for a in inventory.alarms if a.kind == "high-resolution")
    if high:
        usd, _ = _priced("high_resolution_alarm_metric", high)
        lines.append(CostLine("CloudWatch", "alarms, high resolution", f"{high} alarm metrics", usd, usd))
    insights = [a for a in inventory.alarms if a.kind == "metrics-insights"]
    if insights:
        analyzed = len(insights) * endpoints
        usd, _ = _priced("metrics_insights_alarm_metric", analyzed)
        lines.append(
            CostLine(
                "CloudWatch",
                "alarms, Metrics Insights",
                f"{len(insights)} alarm x {endpoints} endpoint metrics",
                usd,
                usd,
                ", ".join(a.logical_id for a in insights) + ": billed by the metrics its query reads",
            )
        )
    own = [a for a in inventory.alarms if a.kind == "metrics-insights-own"]
    if own:
        lines.append(
            CostLine(
                "CloudWatch",
                "alarms, Metrics Insights over the product's counts",
                f"{len(own)} alarm x 0 metrics while idle",
                0.0,
                0.0,
                ", ".join(a.logical_id for a in own)
                + ": the counts are published only when not zero (0.10 USD a metric-month while one is)",
            )
        )
    composite = sum(1 for a in inventory.alarms if a.kind == "composite")
    if composite:
        usd, _ = _priced("composite_alarm", composite)
        lines.append(CostLine("CloudWatch", "composite alarms", f"{composite} alarms", usd, usd))
    usd, free = _priced("dashboard", inventory.dashboards)
    lines.append(
        CostLine(
            "CloudWatch",
            "dashboards",
            f"{inventory.dashboards} dashboard",
            usd,
            free,
            "free while the account has no more than 3",
        )
    )
    return lines


def _kms_and_secret_lines(inventory: StackInventory) -> list[CostLine]:
    keys = len(inventory.kms_keys)
    usd, _ = _priced("kms_key", keys)
    rotating = sum(1 for _, rotation in inventory.kms_keys if rotation)
    note = (
        f"{rotating} rotating yearly: +1 USD a key in year 2, +2 USD from year 3"
        " (rotations after the second are free)"
        if rotating
        else ""
    )
    lines = [CostLine("KMS", "customer managed keys", f"{keys} key", usd, usd, note)]
    usd, _ = _priced("secret", inventory.secrets)
    lines.append(
        CostLine(
            "Secrets Manager",
            "secrets the stack creates",
            f"{inventory.secrets} secrets",
            usd,
            usd,
            "each ticket source's webhook secret you create costs 0.40 USD a month",
        )
    )
    return lines


def _idle_lines(inventory: StackInventory) -> list[CostLine]:
    def idle(service: str, item: str, note: str) -> CostLine:
        return CostLine(service, item, "0 when idle", 0.0, 0.0, note)

    return [
        idle(
            "Step Functions",
            f"{inventory.state_machines} state machines",
            "transitions only while requests run",
        ),
        idle("SNS", f"{inventory.topics} topics", "no standing fee; nothing is published"),
        idle(
            "SQS",
            f"{inventory.queues} dead-letter queue",
            "nothing polls it; requests only when a delivery fails",
        ),
        idle(
            "EventBridge",
            "schedule and findings bus",
            "scheduled events are free; custom events only on findings",
        ),
        idle("S3", f"{inventory.buckets} bucket", "client configurations of a few KB; no requests"),
        idle("API Gateway, Cognito", "intake API and sign-in", "per request and per active user: none"),
        idle(
            "CloudWatch Logs",
            "FilterLogEvents",
            "no charge per request (ingestion, storage and Insights scans are)",
        ),
    ]


# ------------------------------------------------------------------------------------ measuring
class IdleStack:
    """template.yaml deployed with its defaults on a local cloud; its schedules fired by hand."""

    def __init__(self) -> None:
        from localcloud.cloud import LocalCloud

        self.cloud = LocalCloud(time_scale=1.0)
        self.stack: Any = None
        self.endpoints = 0

    def __enter__(self) -> IdleStack:
        self.cloud.start()
        try:
            # Served schedules would fire on their own (every minute): the bench fires them itself.
            self.stack = self.cloud.deploy(TEMPLATE, stack_name="cvpn-stack-cost", serve=False)
        except BaseException:
            self.cloud.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.cloud.stop()

    def add_endpoints(self, count: int) -> None:
        """``count`` more provisioned endpoints (as provisioning records them), each with an empty
        connection log group."""
        from cvpn_shared.provisioning.dal.requests_table import RequestRecords

        logs = self.cloud.client("logs")
        records = RequestRecords(self.cloud.client("dynamodb"), self.stack.physical_ids["RequestsTable"])
        for number in range(self.endpoints, self.endpoints + count):
            group = f"/aws/clientvpn/idle-endpoint-{number}"
            logs.create_log_group(logGroupName=group)
            records.put_outcome(
                {
                    "request_id": f"IDLE-{number}",
                    "status": "SUCCEEDED",
                    "endpoint_id": logging_endpoint(self.cloud, group),
                    "updated_at": datetime.now(UTC).isoformat(),
                    "monitored_log_group": group,
                }
            )
        self.endpoints += count

    def measure(self, runs: int) -> dict[str, ScheduledRun]:
        """Fire every schedule ``runs`` times; the last run of each (the ones before settle the state:
        first reads, cold starts)."""
        from localcloud.scheduler import Scheduler

        scheduler = Scheduler(endpoint_url=self.cloud.endpoint_url, region=self.cloud.region)
        scheduler.add_stack(self.stack)
        measured: dict[str, ScheduledRun] = {}
        try:
            for schedule in self.stack.schedules:
                (target,) = schedule.targets
                logical_id = next(
                    lid
                    for lid, physical in self.stack.physical_ids.items()
                    if target.arn.endswith(f":{physical}")
                )
                last: ScheduledRun | None = None
                for _ in range(runs):
                    last = self._one_run(scheduler, schedule.arn, target.arn)
                assert last is not None
                measured[logical_id] = last
        finally:
            scheduler.stop()
        return measured

    def _one_run(self, scheduler: Any, schedule_arn: str, function_arn: str) -> ScheduledRun:
        runtime = self.cloud.runtime
        assert runtime is not None
        function = function_arn.rsplit(":", 1)[-1]
        before_calls = self.cloud.api_calls()
        before = int(runtime.stats()["functions"].get(function, {}).get("invocations", 0))
        scheduler.fire_now(schedule_arn, force=True)
        deadline = time.monotonic() + 120
        while int(runtime.stats()["functions"].get(function, {}).get("invocations", 0)) <= before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{function} was not invoked")
            time.sleep(0.02)
        if not runtime.wait_for_events(timeout=120):
            raise TimeoutError(f"{function} did not finish")
        after_calls = self.cloud.api_calls()
        calls = {
            key: count - before_calls.get(key, 0)
            for key, count in after_calls.items()
            if count > before_calls.get(key, 0) and not key.startswith(("lambda:", "events:DescribeRule"))
        }
        text = runtime.logs(function)
        text = text[text.rindex("START RequestId:") :]
        duration = float(re.search(r"\tDuration: ([\d.]+) ms", text).group(1))  # type: ignore[union-attr]
        largest, stored = self._items()
        return ScheduledRun(duration, calls, len(text.encode()), _emf_metrics(text), largest, stored)

    def _items(self) -> tuple[int, int]:
        """The largest DynamoDB item of the stack's tables, and all their items' bytes."""
        dynamodb = self.cloud.client("dynamodb")
        largest = total = 0
        resources = self.stack.template.get("Resources") or {}
        for logical_id, physical in self.stack.physical_ids.items():
            if (resources.get(logical_id) or {}).get("Type") != "AWS::DynamoDB::Table":
                continue
            params: dict[str, Any] = {"TableName": physical}
            while True:
                page = dynamodb.scan(**params)
                for item in page.get("Items", []):
                    size = _item_bytes(item)
                    largest, total = max(largest, size), total + size
                if not page.get("LastEvaluatedKey"):
                    break
                params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return largest, total


def _item_bytes(item: dict[str, Any]) -> int:
    """An upper bound of a DynamoDB item's size: attribute names plus their values as text."""
    return sum(len(name.encode()) + len(json.dumps(value).encode()) for name, value in item.items())


def _emf_metrics(text: str) -> frozenset[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """The distinct metrics (namespace, name, dimensions with values) in embedded-metric-format lines."""
    found: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()
    for line in text.splitlines():
        start = line.find('{"_aws"')
        if start < 0:
            continue
        try:
            document = json.loads(line[start:])
        except ValueError:
            continue
        for directive in document["_aws"].get("CloudWatchMetrics", []):
            for dimension_set in directive.get("Dimensions", []):
                dimensions = tuple(sorted((name, str(document.get(name, ""))) for name in dimension_set))
                for metric in directive.get("Metrics", []):
                    found.add((directive.get("Namespace", ""), metric["Name"], dimensions))
    return frozenset(found)


# ------------------------------------------------------------------------------------ report
def report(
    inventory: StackInventory,
    idle: list[CostLine],
    busy: list[CostLine],
    *,
    endpoints: int,
    subnets: int,
    runs: dict[str, dict[int, ScheduledRun]],
) -> str:
    """The table (each line with no endpoint and with ``endpoints``), the totals and the aim."""
    keyed = {(line.service, line.item): line for line in busy}
    rows: list[list[object]] = []
    for line in idle:
        other = keyed.pop((line.service, line.item), None)
        rows.append(_cost_row(line, other))
    for line in keyed.values():
        rows.append(_cost_row(None, line))
    idle_total, busy_total = sum(line.usd for line in idle), sum(line.usd for line in busy)
    idle_free = sum(line.usd_after_free_tier for line in idle)
    busy_free = sum(line.usd_after_free_tier for line in busy)
    rows += [
        ["total, list price", "", f"{idle_total:.2f}", "", f"{busy_total:.2f}", ""],
        ["total, after the always-free tiers", "", f"{idle_free:.2f}", "", f"{busy_free:.2f}", ""],
    ]
    verdict = "within the aim" if idle_total < AIM_USD else "MISSES the aim"
    dominant = sorted(idle, key=lambda line: line.usd, reverse=True)[:4]
    measured = []
    for logical_id, by_endpoints in runs.items():
        for count, run in sorted(by_endpoints.items()):
            dynamodb = ", ".join(
                f"{key.split(':', 1)[1]} {value}"
                for key, value in sorted(run.api_calls.items())
                if key.startswith("dynamodb:")
            )
            others = ", ".join(
                f"{key} {value}"
                for key, value in sorted(run.api_calls.items())
                if not key.startswith("dynamodb:")
            )
            measured.append(
                f"  {logical_id}, {count} endpoints: {run.duration_ms:.0f} ms, {run.log_bytes:,} log bytes,"
                f" {len(run.metrics)} metrics; DynamoDB {dynamodb or 'none'}; {others or 'no other calls'}"
            )
    return "\n".join(
        [
            "Monthly cost when nobody connects (USD, us-east-1; figures only, nothing is asserted)",
            f"  template.yaml with its defaults; a month of {HOURS_PER_MONTH} hours; with endpoints:"
            f" {endpoints} endpoints x {subnets} associated subnets (the seed request's Availability Zones)",
            "  one scheduled run as measured on the local cloud:",
            *measured,
            "",
            render_table(
                ["line", "no endpoint: quantity", "USD", f"{endpoints} endpoints: quantity", "USD", "note"],
                rows,
            ),
            "",
            f"  no endpoint: {idle_total:.2f} USD a month at list price (aim < {AIM_USD:.0f} USD: {verdict}),"
            f" {idle_free:.2f} USD once the account's always-free allowances apply",
            "  largest lines: "
            + ", ".join(f"{line.service} {line.item} {line.usd:.2f}" for line in dominant),
            f"  {endpoints} endpoints: {busy_total:.2f} USD, of which Client VPN"
            f" {sum(line.usd for line in busy if line.service == 'Client VPN'):.2f}",
            "",
            f"  prices as published for {REGION}, read {PRICES_AS_OF}:",
            *(
                f"    {key}: {price.usd:.10g} USD per {price.unit} - {price.source} ({price.basis})"
                for key, price in PRICES.items()
            ),
        ]
    )


def _cost_row(idle: CostLine | None, busy: CostLine | None) -> list[object]:
    line = idle or busy
    assert line is not None
    return [
        f"{line.service}: {line.item}",
        idle.quantity if idle else "-",
        f"{idle.usd:.4f}" if idle else "-",
        (busy.quantity if busy.quantity != getattr(idle, "quantity", None) else "same") if busy else "-",
        f"{busy.usd:.4f}" if busy else "-",
        line.note,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoints", type=int, default=10, help="endpoints of the second column")
    parser.add_argument("--subnets", type=int, default=2, help="associated subnets per endpoint")
    parser.add_argument(
        "--runs", type=int, default=3, help="scheduled runs fired per case; the last is measured"
    )
    args = parser.parse_args(argv)
    if args.endpoints < 1:
        parser.error("--endpoints: must be at least 1")
    if args.subnets < 1:
        parser.error("--subnets: must be at least 1")
    if args.runs < 1:
        parser.error("--runs: must be at least 1")
    logging.basicConfig(level=logging.ERROR)
    started = time.perf_counter()
    inventory = load_inventory()
    by_case: dict[int, dict[str, ScheduledRun]] = {}
    progress("stack cost: deploying template.yaml (defaults) on the local cloud")
    with IdleStack() as stack:
        for endpoints in (0, args.endpoints):
            stack.add_endpoints(endpoints - stack.endpoints)
            progress(f"stack cost: {args.runs} scheduled runs with {endpoints} endpoints")
            by_case[endpoints] = stack.measure(args.runs)
    idle = monthly_costs(inventory, by_case[0], endpoints=0)
    busy = monthly_costs(
        inventory, by_case[args.endpoints], endpoints=args.endpoints, subnets_per_endpoint=args.subnets
    )
    runs = {
        logical_id: {count: measured[logical_id] for count, measured in by_case.items()}
        for logical_id in by_case[0]
    }
    print(report(inventory, idle, busy, endpoints=args.endpoints, subnets=args.subnets, runs=runs))
    print()
    print(f"(stack cost bench ran {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
