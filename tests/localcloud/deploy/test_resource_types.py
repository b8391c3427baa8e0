"""Deploy outcomes beyond the happy path: unsupported and ignored types, failures, redeploys of edits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest

from localcloud.deploy import (
    IGNORED_RESOURCE_TYPES,
    LOCALLY_SERVED_RESOURCE_TYPES,
    DeployedStack,
    DeployError,
    deploy_stack,
    moto_supported_resource_types,
)

from .conftest import REGION, SAM_APP, LocalAws

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


def test_redeploy_picks_up_changed_function_and_layer_code(local_aws: LocalAws, tmp_path: Path) -> None:
    """Given the app is up, when its layer and handler change and it is deployed again, the new code runs."""
    app = tmp_path / "app"
    shutil.copytree(SAM_APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    lambda_client = boto3.client("lambda", region_name=REGION, endpoint_url=local_aws.endpoint_url)
    http_event = json.dumps(
        {"version": "2.0", "routeKey": "GET /hello/{name}", "pathParameters": {"name": "Ada"}}
    )

    def greeting(stack: DeployedStack) -> str:
        response = lambda_client.invoke(
            FunctionName=stack.function_name("GreetingFunction"), Payload=http_event
        )
        assert "FunctionError" not in response
        return str(json.loads(json.loads(response["Payload"].read())["body"])["greeting"])

    first = deploy_stack(
        app / "template.yaml",
        stack_name="editing",
        endpoint_url=local_aws.endpoint_url,
        build_dir=tmp_path / "b1",
    )
    assert greeting(first) == "Hello, Ada!"
    layer_module = app / "layer" / "python" / "fixture_shared" / "__init__.py"
    layer_module.write_text(
        layer_module.read_text().replace('f"{word}, {name}!"', 'f"{word} again, {name}!"')
    )
    second = deploy_stack(
        app / "template.yaml",
        stack_name="editing",
        endpoint_url=local_aws.endpoint_url,
        build_dir=tmp_path / "b2",
    )
    assert second.functions == first.functions
    assert greeting(second) == "Hello again, Ada!"


def test_resources_whose_condition_is_false_are_not_checked_or_served(
    local_aws: LocalAws, tmp_path: Path
) -> None:
    """Given a condition that is false for these parameters, its resources neither fail nor deploy."""
    path = tmp_path / "template.json"
    path.write_text(
        json.dumps(
            {
                "Parameters": {"Stage": {"Type": "String", "Default": "dev"}},
                "Conditions": {
                    "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
                    "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
                },
                "Resources": {
                    "Notes": {
                        "Type": "AWS::SSM::Parameter",
                        "Properties": {
                            "Type": "String",
                            "Value": {"Fn::If": ["IsDev", "dev-notes", "prod-notes"]},
                        },
                    },
                    "ProdOnlyGraph": {
                        "Type": "AWS::AppSync::GraphQLApi",
                        "Condition": "IsProd",
                        "Properties": {"Name": "g", "AuthenticationType": "API_KEY"},
                    },
                },
            }
        )
    )
    deployed = deploy_stack(
        path, stack_name="conditional", endpoint_url=local_aws.endpoint_url, build_dir=tmp_path / "build"
    )
    assert "ProdOnlyGraph" not in deployed.template["Resources"]
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=local_aws.endpoint_url)
    assert ssm.get_parameter(Name=deployed.physical_ids["Notes"])["Parameter"]["Value"] == "dev-notes"
    with pytest.raises(DeployError, match=r"ProdOnlyGraph \(AWS::AppSync::GraphQLApi\)"):
        deploy_stack(
            path,
            stack_name="conditional-prod",
            endpoint_url=local_aws.endpoint_url,
            parameter_overrides={"Stage": "prod"},
            build_dir=tmp_path / "build-prod",
        )
