"""The local cloud's deploy gives every template parameter its value and refuses what CloudFormation
refuses: an undeclared parameter, a missing value, and values outside the parameter's constraints,
naming the parameter and the reason."""

from __future__ import annotations

from typing import Any

import pytest

from localcloud.deploy import DeployError, template_parameter_values

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Stage": {"Type": "String", "Default": "dev", "AllowedValues": ["dev", "prod"]},
        "LogRetentionDays": {"Type": "Number", "Default": 30, "AllowedValues": [7, 30, 365]},
        "BlockDurationHours": {"Type": "Number", "Default": 24, "MinValue": 1, "MaxValue": 720},
        "IngestSchedule": {
            "Type": "String",
            "Default": "rate(1 minute)",
            "AllowedPattern": r"(rate|cron)\(.+\)",
            "ConstraintDescription": "an EventBridge schedule expression",
        },
        "Organization": {"Type": "String", "Default": "example", "MinLength": 3, "MaxLength": 10},
        "LogGroups": {"Type": "CommaDelimitedList", "Default": "", "AllowedPattern": "(/[a-z-]+)*"},
        "Ports": {"Type": "List<Number>", "Default": "443", "MinValue": 1, "MaxValue": 65535},
        "WebhookSecret": {"Type": "String", "Default": "", "NoEcho": True, "AllowedPattern": "|[a-z]{8,}"},
        "VpcId": {"Type": "AWS::EC2::VPC::Id", "Default": "vpc-0123"},
    }
}


def test_overrides_win_over_defaults() -> None:
    values = template_parameter_values(
        TEMPLATE, {"Stage": "prod", "Ports": "443, 1194", "LogGroups": "/vpn/a,/vpn/b"}
    )
    assert values["Stage"] == "prod"
    assert values["LogRetentionDays"] == "30"
    assert values["Ports"] == "443, 1194"
    assert values["LogGroups"] == "/vpn/a,/vpn/b"
    assert values["VpcId"] == "vpc-0123"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Stage": "staging"}, "parameter Stage: 'staging' is not one of the AllowedValues (dev, prod)"),
        ({"LogRetentionDays": "14"}, "parameter LogRetentionDays: '14' is not one of the AllowedValues"),
        ({"LogRetentionDays": "a week"}, "parameter LogRetentionDays: 'a week' is not a number"),
        ({"BlockDurationHours": "0"}, "parameter BlockDurationHours: '0' is less than MinValue 1"),
        ({"BlockDurationHours": "720.5"}, "BlockDurationHours: '720.5' is greater than MaxValue 720"),
        (
            {"IngestSchedule": "every rate(5 minutes)"},
            # CloudFormation matches the pattern against the whole value
            r"parameter IngestSchedule: 'every rate(5 minutes)' does not match AllowedPattern "
            r"(rate|cron)\(.+\) (an EventBridge schedule expression)",
        ),
        ({"Organization": "ex"}, "parameter Organization: 'ex' is shorter than MinLength 3"),
        ({"Organization": "example.org"}, "Organization: 'example.org' is longer than MaxLength 10"),
        ({"LogGroups": "/vpn/a,/VPN/b"}, "parameter LogGroups: '/VPN/b' does not match AllowedPattern"),
        ({"Ports": "443,https"}, "parameter Ports: 'https' is not a number"),
        ({"Ports": "443,70000"}, "parameter Ports: '70000' is greater than MaxValue 65535"),
        ({"WebhookSecret": "s3cret"}, "parameter WebhookSecret: **** does not match AllowedPattern"),
        (
            {"DetectionSetings": "{}", "Stag": "prod"},
            "parameter DetectionSetings: the template declares no such parameter; "
            "parameter Stag: the template declares no such parameter (did you mean Stage?)",
        ),
    ],
)
def test_refuses_values_cloudformation_refuses(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(DeployError) as error:
        template_parameter_values(TEMPLATE, overrides)
    assert message in str(error.value)
    assert "s3cret" not in str(error.value)  # a NoEcho value is never shown


def test_defaults_are_judged_too_and_a_parameter_without_one_needs_a_value() -> None:
    template = {"Parameters": {"Stage": {"Type": "String", "Default": "test", "AllowedValues": ["dev"]}}}
    with pytest.raises(DeployError, match=r"parameter Stage: 'test' \(its Default\) is not one of"):
        template_parameter_values(template, {})
    required = {"Parameters": {"AlertEmail": {"Type": "String"}}}
    with pytest.raises(DeployError, match="parameter AlertEmail has no Default"):
        template_parameter_values(required, {})
    assert template_parameter_values(required, {"AlertEmail": "ops@example.com"}) == {
        "AlertEmail": "ops@example.com"
    }
