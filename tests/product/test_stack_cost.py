"""The standing-cost model of ``make bench`` (bench/stack_cost.py): every resource of template.yaml is
priced or named as free or idle, the template's alarms, keys and schedule are read as they are, and the
monthly arithmetic is right for a stack and a measured run given here."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench.stack_cost import (
    FREE_TIER,
    PRICES,
    RESOURCE_TYPES,
    XRAY_REPORT_SUFFIX,
    CostLine,
    ModelError,
    ScheduledRun,
    StackInventory,
    load_inventory,
    monthly_costs,
    runs_per_month,
)
from localcloud.language_extensions import load_expanded_template
from tests.fixtures import REPO_ROOT

MINUTE_RUNS = 730 * 60  # a month of 730 hours, one run a minute


def test_every_resource_type_of_the_template_is_priced_or_listed_as_free_or_idle() -> None:
    types = {
        resource["Type"]
        for resource in load_expanded_template(REPO_ROOT / "template.yaml")["Resources"].values()
    }
    assert types - set(RESOURCE_TYPES) == set()
    load_inventory()  # and each resource of those types is one the model can read


def test_a_resource_type_the_model_does_not_know_is_named() -> None:
    template = {"Resources": {"ReportsDatabase": {"Type": "AWS::RDS::DBInstance", "Properties": {}}}}
    with pytest.raises(ModelError, match=r"ReportsDatabase: resource type AWS::RDS::DBInstance"):
        StackInventory.from_template(template)


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        (
            {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Events": {"Queue": {"Type": "SQS", "Properties": {"Queue": "arn"}}}},
            },
            r"Poller.Queue: event source SQS may cost while idle",
        ),
        (
            {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(1 hour)"}},
            r"Poller: a scheduled rule's targets are not priced",
        ),
        (
            {"Type": "AWS::DynamoDB::Table", "Properties": {"BillingMode": "PROVISIONED"}},
            r"Poller: only on-demand \(PAY_PER_REQUEST\) tables are priced",
        ),
        (
            {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Metrics": [{"Id": "q", "Expression": 'SELECT MAX(CPUUtilization) FROM "AWS/EC2"'}]
                },
            },
            r"Poller: a Metrics Insights alarm over .*AWS/EC2",
        ),
    ],
)
def test_what_may_cost_while_idle_and_is_not_modelled_is_refused(
    resource: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ModelError, match=reason):
        StackInventory.from_template({"Resources": {"Poller": resource}})


@pytest.mark.parametrize(
    ("expression", "runs"),
    [
        ("rate(1 minute)", MINUTE_RUNS),
        ("rate(5 minutes)", MINUTE_RUNS / 5),
        ("rate(1 hour)", 730),
        ("rate(2 days)", 730 / 48),
        ("cron(0 * * * ? *)", 730),
        ("cron(0/15 * * * ? *)", 730 * 4),
    ],
)
def test_runs_per_month_of_a_schedule(expression: str, runs: float) -> None:
    assert runs_per_month(expression) == pytest.approx(runs)


@pytest.mark.parametrize("expression", ["rate(0 minutes)", "every minute", "at(2026-01-01T00:00:00)"])
def test_a_schedule_that_is_not_a_rate_or_cron_is_refused(expression: str) -> None:
    with pytest.raises(ModelError, match=r"schedule"):
        runs_per_month(expression)


def test_the_template_is_read_as_it_is() -> None:
    inventory = load_inventory()

    scheduled = {function.logical_id: function for function in inventory.scheduled_functions}
    assert set(scheduled) == {
        "IngestConnectionLogsFunction",
        "CheckDriftFunction",
        "CheckServerCertificatesFunction",
        "RefreshRevocationListsFunction",
    }
    ingest, drift = scheduled["IngestConnectionLogsFunction"], scheduled["CheckDriftFunction"]
    assert drift.schedules == ("rate(1 day)",)  # the DriftCheckSchedule parameter's default
    assert scheduled["CheckServerCertificatesFunction"].schedules == ("rate(1 day)",)
    # the RevocationListRefreshSchedule parameter's default
    assert scheduled["RefreshRevocationListsFunction"].schedules == ("rate(1 hour)",)
    assert (ingest.logical_id, ingest.memory_mb, ingest.tracing) == (
        "IngestConnectionLogsFunction",
        1024,
        False,  # not traced: a scheduled trace would only repeat the REPORT line
    )
    assert ingest.schedules == ("rate(1 minute)",)  # the IngestSchedule parameter's default
    kinds = {alarm.logical_id: (alarm.kind, alarm.metrics) for alarm in inventory.alarms}
    assert kinds == {
        "AuthenticationFailuresAlarm": ("metrics-insights", 1),
        "WorkflowExecutionsFailedAlarm": ("standard", 5),
        "IngestErrorsAlarm": ("standard", 1),
        "DeadLetterQueueDepthAlarm": ("standard", 1),
        "IngestLogGroupFailuresAlarm": ("standard", 1),
        "BlocklistUnavailableAlarm": ("standard", 1),
        "ServerCertificatesExpiringAlarm": ("metrics-insights-own", 0),
    }
    assert inventory.dashboards == 1
    assert inventory.kms_keys == [("AlertsTopicKey", True)]
    assert inventory.secrets == 0


# ---------------------------------------------------------------------------------- the arithmetic
TEMPLATE: dict[str, Any] = {
    "Parameters": {"Schedule": {"Type": "String", "Default": "rate(1 minute)"}},
    "Globals": {"Function": {"MemorySize": 256, "Tracing": "Active"}},
    "Resources": {
        "Reader": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "MemorySize": 512,
                "Events": {"Every": {"Type": "Schedule", "Properties": {"Schedule": {"Ref": "Schedule"}}}},
                "Policies": [{"DynamoDBCrudPolicy": {"TableName": {"Ref": "State"}}}],
            },
        },
        "ReaderLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}},
        "Api": {"Type": "AWS::Serverless::Function", "Properties": {"Events": {"Get": {"Type": "HttpApi"}}}},
        "State": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {"BillingMode": "PAY_PER_REQUEST", "SSESpecification": {"SSEEnabled": True}},
        },
        "Failures": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"MetricName": "Errors", "Period": 300}},
        "Fleet": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "Metrics": [
                    {"Id": "f", "Expression": 'SELECT SUM(AuthenticationFailures) FROM "AWS/ClientVPN"'}
                ]
            },
        },
        "Board": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {}},
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": False}},
        "Hook": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
    },
}
RUN = ScheduledRun(
    duration_ms=99.2,  # billed 100 ms
    api_calls={"dynamodb:Scan": 1, "dynamodb:PutItem": 2, "logs:FilterLogEvents": 3},
    log_bytes=1000,
    metrics=frozenset({("Ns", "Processed", (("service", "s"),)), ("Ns", "Found", (("service", "s"),))}),
    largest_item_bytes=500,
    stored_bytes=2_000_000_000,
)


def _lines(endpoints: int, run: ScheduledRun = RUN) -> dict[str, CostLine]:
    inventory = StackInventory.from_template(TEMPLATE)
    lines = monthly_costs(inventory, {"Reader": run}, endpoints=endpoints, subnets_per_endpoint=2)
    return {f"{line.service}: {line.item}": line for line in lines}


def test_the_monthly_cost_of_a_scheduled_function() -> None:
    lines = _lines(0)

    assert lines["Lambda: Reader requests"].usd == pytest.approx(MINUTE_RUNS * 0.20 / 1e6)
    assert lines["Lambda: Reader duration"].usd == pytest.approx(MINUTE_RUNS * 0.100 * 0.5 * 0.0000133334)
    assert lines["Lambda: Reader duration"].usd_after_free_tier == 0.0  # 2,190 GB-s of 400,000 free
    dynamodb = lines["DynamoDB: Reader reads and writes"]
    assert dynamodb.usd == pytest.approx(MINUTE_RUNS * (1 * 0.125 + 2 * 0.625) / 1e6)
    assert dynamodb.usd_after_free_tier == dynamodb.usd  # on-demand requests have no free tier
    metrics = lines["CloudWatch: Reader custom metrics"]
    assert (metrics.usd, metrics.usd_after_free_tier) == (pytest.approx(0.60), 0.0)
    ingested_gb = MINUTE_RUNS * (1000 + len(XRAY_REPORT_SUFFIX)) / 1e9
    assert lines["CloudWatch: Reader logs"].usd == pytest.approx(
        ingested_gb * 0.50 + ingested_gb * 30 / (730 / 24) * 0.03
    )
    assert lines["X-Ray: Reader traces"].usd == pytest.approx(MINUTE_RUNS * 5.00 / 1e6)
    assert lines["X-Ray: Reader traces"].usd_after_free_tier == 0.0  # 43,800 of 100,000 free
    kms = lines["KMS: Reader: DynamoDB table keys (aws/dynamodb)"]
    assert kms.usd == pytest.approx(730 * 12 * 0.03 / 10_000)  # one table, a request per 5 minutes at most


def test_the_monthly_cost_of_what_stands() -> None:
    lines = _lines(0)

    storage = lines["DynamoDB: storage (1 tables, 0 with point-in-time recovery)"]
    assert storage.usd == pytest.approx(2 * 0.25)
    assert storage.usd_after_free_tier == 0.0  # 2 GB of 25 free
    assert lines["CloudWatch: alarms, standard resolution"].usd == pytest.approx(0.10)
    assert lines["CloudWatch: alarms, Metrics Insights"].usd == 0.0  # no endpoint: no metric to read
    assert (lines["CloudWatch: dashboards"].usd, lines["CloudWatch: dashboards"].usd_after_free_tier) == (
        3.0,
        0.0,
    )
    assert lines["KMS: customer managed keys"].usd == 1.0
    assert lines["Secrets Manager: secrets the stack creates"].usd == pytest.approx(0.40)
    assert "Client VPN: subnet associations" not in lines
    idle = [line for line in lines.values() if line.quantity == "0 when idle"]
    assert {line.service for line in idle} >= {"Step Functions", "SNS", "SQS", "EventBridge", "S3"}
    assert all(line.usd == 0.0 for line in idle)


def test_endpoints_add_their_associations_and_the_metrics_insights_alarms_reads() -> None:
    idle, busy = _lines(0), _lines(3)

    assert busy["Client VPN: subnet associations"].usd == pytest.approx(3 * 2 * 730 * 0.10)
    assert busy["CloudWatch: alarms, Metrics Insights"].usd == pytest.approx(3 * 0.10)
    total = sum(line.usd for line in busy.values()) - sum(line.usd for line in idle.values())
    assert total == pytest.approx(3 * 2 * 730 * 0.10 + 3 * 0.10)


def test_items_over_a_kilobyte_cost_more_write_units() -> None:
    large = ScheduledRun(**{**RUN.__dict__, "largest_item_bytes": 2500})  # 3 KB: 3 WRU, 1 RRU

    line = _lines(0, large)["DynamoDB: Reader reads and writes"]

    assert line.usd == pytest.approx(MINUTE_RUNS * (1 * 0.125 + 2 * 3 * 0.625) / 1e6)


def test_the_prices_have_their_source_and_the_free_tiers_price_something() -> None:
    assert all(
        price.source.startswith("https://aws.amazon.com/") and price.basis for price in PRICES.values()
    )
    assert set(FREE_TIER) <= set(PRICES)
    assert math.isclose(PRICES["client_vpn_association"].usd, 0.10)
