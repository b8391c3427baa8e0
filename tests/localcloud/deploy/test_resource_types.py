"""What the local cloud does with resource types moto's CloudFormation cannot create."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from localcloud.deploy import (
    IGNORED_RESOURCE_TYPES,
    LOCALLY_SERVED_RESOURCE_TYPES,
    DeployError,
    deploy_stack,
    moto_supported_resource_types,
)

from .conftest import REGION, LocalAws

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _write_template(directory: Path, resources: dict[str, object]) -> Path:
    path = directory / "template.json"
    path.write_text(json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}))
    return path


def test_moto_support_is_read_from_the_installed_moto() -> None:
    supported = moto_supported_resource_types()
    assert {"AWS::Lambda::Function", "AWS::DynamoDB::Table", "AWS::StepFunctions::StateMachine"} <= supported
    assert "AWS::ApiGatewayV2::Api" not in supported and "AWS::Scheduler::Schedule" not in supported
    assert not set(LOCALLY_SERVED_RESOURCE_TYPES) & supported
    assert all(reason.strip() for reason in IGNORED_RESOURCE_TYPES.values())


def test_unsupported_type_fails_the_deploy_before_anything_is_created(
    local_aws: LocalAws, tmp_path: Path
) -> None:
    """Given a resource type nobody can run locally, the deploy names it and creates no stack."""
    template = _write_template(
        tmp_path,
        {
            "Notes": {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Value": "x"}},
            "GraphApi": {
                "Type": "AWS::AppSync::GraphQLApi",
                "Properties": {"Name": "g", "AuthenticationType": "API_KEY"},
            },
        },
    )
    with pytest.raises(DeployError, match=r"GraphApi \(AWS::AppSync::GraphQLApi\)"):
        deploy_stack(
            template,
            stack_name="unsupported",
            endpoint_url=local_aws.endpoint_url,
            build_dir=tmp_path / "build",
        )
    cloudformation = boto3.client("cloudformation", region_name=REGION, endpoint_url=local_aws.endpoint_url)
    stacks = cloudformation.list_stacks()["StackSummaries"]
    assert "unsupported" not in {stack["StackName"] for stack in stacks}


def test_ignored_type_is_left_out_with_its_reason(local_aws: LocalAws, tmp_path: Path) -> None:
    template = _write_template(
        tmp_path,
        {
            "Notes": {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Value": "kept"}},
            "ErrorsAlarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {"ComparisonOperator": "GreaterThanThreshold", "EvaluationPeriods": 1},
            },
        },
    )
    deployed = deploy_stack(
        template, stack_name="with-alarm", endpoint_url=local_aws.endpoint_url, build_dir=tmp_path / "build"
    )
    assert deployed.ignored_resources == {"ErrorsAlarm": IGNORED_RESOURCE_TYPES["AWS::CloudWatch::Alarm"]}
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=local_aws.endpoint_url)
    assert ssm.get_parameter(Name=deployed.physical_ids["Notes"])["Parameter"]["Value"] == "kept"


def test_failed_resource_is_reported_with_logical_id(local_aws: LocalAws, tmp_path: Path) -> None:
    """A resource moto refuses (a function whose code is missing) fails the deploy and is named."""
    template = _write_template(
        tmp_path,
        {
            "Broken": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Handler": "app.handler",
                    "Runtime": "python3.11",
                    "Role": "arn:aws:iam::123456789012:role/none",
                    "Code": {"S3Bucket": "no-such-bucket", "S3Key": "none.zip"},
                },
            }
        },
    )
    with pytest.raises(DeployError, match=r"Broken \(AWS::Lambda::Function\) failed to create: .*bucket"):
        deploy_stack(
            template,
            stack_name="broken-code",
            endpoint_url=local_aws.endpoint_url,
            build_dir=tmp_path / "build",
        )
    cloudformation = boto3.client("cloudformation", region_name=REGION, endpoint_url=local_aws.endpoint_url)
    live = {
        stack["StackName"]
        for stack in cloudformation.list_stacks()["StackSummaries"]
        if stack["StackStatus"] != "DELETE_COMPLETE"
    }
    assert "broken-code" not in live
