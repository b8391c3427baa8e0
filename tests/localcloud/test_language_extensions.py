"""AWS::LanguageExtensions as the local cloud expands it: Fn::ForEach in Conditions, Resources and
Outputs, identifiers in keys and strings, logical ids written as Fn::Sub, and a clear refusal of the
rest of the transform."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from localcloud.language_extensions import (
    LanguageExtensionsError,
    expand_language_extensions,
    load_expanded_template,
    main,
)
from localcloud.sam import SamError

BOTH = ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]


def _template(resources: dict[str, Any], **sections: Any) -> dict[str, Any]:
    return {"AWSTemplateFormatVersion": "2010-09-09", "Transform": BOTH, "Resources": resources, **sections}


def _log_group_loop(names: list[Any]) -> dict[str, Any]:
    return {
        "Fn::ForEach::LogGroups": [
            "Name",
            names,
            {
                "${Name}FunctionLogGroup": {
                    "Type": "AWS::Logs::LogGroup",
                    "Properties": {
                        "LogGroupName": {
                            "Fn::Join": ["", ["/aws/lambda/", {"Ref": {"Fn::Sub": "${Name}Function"}}]]
                        },
                        "RetentionInDays": {"Ref": "LogRetentionDays"},
                    },
                }
            },
        ]
    }


def test_a_resource_loop_becomes_one_resource_per_value_in_its_place() -> None:
    """Given a loop between two resources, when expanded, then each value gives a resource with the
    identifier substituted in its logical id and the Fn::Sub of its Ref, in the loop's place."""
    template = _template(
        {"Layer": {"Type": "AWS::Serverless::LayerVersion"}, **_log_group_loop(["Validate", "Create"])}
        | {"Topic": {"Type": "AWS::SNS::Topic"}}
    )

    expanded = expand_language_extensions(template)

    assert list(expanded["Resources"]) == [
        "Layer",
        "ValidateFunctionLogGroup",
        "CreateFunctionLogGroup",
        "Topic",
    ]
    assert expanded["Resources"]["CreateFunctionLogGroup"] == {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": {"Fn::Join": ["", ["/aws/lambda/", {"Ref": "CreateFunction"}]]},
            "RetentionInDays": {"Ref": "LogRetentionDays"},
        },
    }


def test_the_transform_is_removed_and_the_input_left_as_it_was() -> None:
    template = _template(_log_group_loop(["Validate"]))
    before = json.dumps(template)

    expanded = expand_language_extensions(template)

    assert expanded["Transform"] == "AWS::Serverless-2016-10-31"
    assert json.dumps(template) == before
    alone = expand_language_extensions({**template, "Transform": "AWS::LanguageExtensions"})
    assert "Transform" not in alone


def test_identifiers_in_strings_refs_and_ampersand_keys() -> None:
    """${Id} anywhere in a string (Fn::Sub texts included), {"Ref": Id} as the value, and &{Id} as the
    value without its non-alphanumeric characters (for logical ids made from addresses)."""
    template = _template(
        {
            "Fn::ForEach::Rules": [
                "Cidr",
                ["10.0.0.0/16", "192.168.1.0/24"],
                {
                    "Rule&{Cidr}": {
                        "Type": "AWS::EC2::SecurityGroupIngress",
                        "Properties": {
                            "CidrIp": {"Ref": "Cidr"},
                            "Description": {"Fn::Sub": "from ${Cidr} in ${AWS::Region}"},
                            "Tags": [{"Key": "cidr", "Value": "${Cidr}"}],
                        },
                    }
                },
            ]
        }
    )

    resources = expand_language_extensions(template)["Resources"]

    assert list(resources) == ["Rule1000016", "Rule1921681024"]
    assert resources["Rule1921681024"]["Properties"] == {
        "CidrIp": "192.168.1.0/24",
        "Description": {"Fn::Sub": "from 192.168.1.0/24 in ${AWS::Region}"},
        "Tags": [{"Key": "cidr", "Value": "192.168.1.0/24"}],
    }


def test_nested_loops_in_outputs_with_get_att_of_a_sub() -> None:
    """The documented Outputs example: two nested loops and Fn::GetAtt [{Fn::Sub}, {Ref: Property}]."""
    template = _template(
        {"Fn::ForEach::Buckets": ["Id", ["A", "B"], {"Bucket${Id}": {"Type": "AWS::S3::Bucket"}}]},
        Outputs={
            "Fn::ForEach::BucketOutputs": [
                "Id",
                ["A", "B"],
                {
                    "Fn::ForEach::Attributes": [
                        "Property",
                        ["Arn", "DomainName"],
                        {
                            "Bucket${Id}${Property}": {
                                "Value": {"Fn::GetAtt": [{"Fn::Sub": "Bucket${Id}"}, {"Ref": "Property"}]}
                            }
                        },
                    ]
                },
            ]
        },
    )

    outputs = expand_language_extensions(template)["Outputs"]

    assert list(outputs) == ["BucketAArn", "BucketADomainName", "BucketBArn", "BucketBDomainName"]
    assert outputs["BucketBDomainName"] == {"Value": {"Fn::GetAtt": ["BucketB", "DomainName"]}}


def test_a_condition_loop() -> None:
    template = _template(
        {},
        Conditions={
            "Fn::ForEach::Stages": [
                "Stage",
                ["dev", "prod"],
                {"Is${Stage}": {"Fn::Equals": [{"Ref": "Stage"}, {"Ref": "StageParameter"}]}},
            ]
        },
    )

    conditions = expand_language_extensions(template)["Conditions"]

    assert conditions == {
        "Isdev": {"Fn::Equals": ["dev", {"Ref": "StageParameter"}]},
        "Isprod": {"Fn::Equals": ["prod", {"Ref": "StageParameter"}]},
    }


def test_a_template_without_the_transform_comes_back_unchanged() -> None:
    template = {"Transform": "AWS::Serverless-2016-10-31", "Resources": {"T": {"Type": "AWS::SNS::Topic"}}}

    assert expand_language_extensions(template) == template


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            {"Transform": "AWS::Serverless-2016-10-31", "Resources": _log_group_loop(["A"])},
            "Fn::ForEach needs the AWS::LanguageExtensions transform",
        ),
        (
            _template({"Fn::ForEach::Topics": ["Name", {"Ref": "TopicNames"}, {"${Name}": {}}]}),
            "only a literal list is supported as the collection",
        ),
        (
            _template(
                {
                    "Queue": {
                        "Type": "AWS::SQS::Queue",
                        "Properties": {"Fn::ForEach::Tags": ["Key", ["a"], {"${Key}": "x"}]},
                    }
                }
            ),
            "Resources.Queue.Properties.Fn::ForEach::Tags: Fn::ForEach is expanded locally only at the top",
        ),
        (
            _template({"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"Delay": {"Fn::Length": [1]}}}}),
            "Resources.Queue.Properties.Delay.Fn::Length: Fn::Length is not expanded locally",
        ),
        (
            _template({"Queue": {"Type": "AWS::SQS::Queue", "DeletionPolicy": {"Ref": "Policy"}}}),
            "an intrinsic function as DeletionPolicy is not expanded locally",
        ),
        (
            _template({"Fn::ForEach::Topics": ["Name", ["A"], {"Topic": {"Type": "AWS::SNS::Topic"}}]}),
            "the output key 'Topic' must contain ${Name} or &{Name}",
        ),
        (
            _template({"Fn::ForEach::Topics": ["Name", ["A", "A"], {"Topic${Name}": {}}]}),
            "generates 'TopicA', which the section already has",
        ),
        (
            _template({"Fn::ForEach::Topics": ["Name", ["a-b"], {"Topic${Name}": {}}]}),
            "generates 'Topica-b', which is not an alphanumeric name",
        ),
        (
            _template({"Fn::ForEach::Topics": ["Name", ["A"]]}),
            "takes [Identifier, Collection, {OutputKey: OutputValue}]",
        ),
        (
            _template(
                {
                    "Fn::ForEach::Groups": [
                        "Name",
                        ["A"],
                        {"Group${Name}": {"Properties": {"Owner": {"Ref": {"Fn::Sub": "${Name}${Stage}"}}}}},
                    ]
                }
            ),
            "a logical id written as",
        ),
    ],
    ids=[
        "no-transform",
        "collection-from-a-parameter",
        "loop-in-properties",
        "fn-length",
        "intrinsic-deletion-policy",
        "key-without-identifier",
        "duplicate-logical-id",
        "non-alphanumeric-logical-id",
        "malformed-loop",
        "ref-of-an-unresolved-sub",
    ],
)
def test_what_is_not_expanded_is_refused_with_its_place_and_reason(
    template: dict[str, Any], message: str
) -> None:
    with pytest.raises(LanguageExtensionsError) as raised:
        expand_language_extensions(template)

    assert message in str(raised.value)
    assert isinstance(raised.value, SamError)  # the local cloud's deploy reports it as a DeployError


def test_the_module_writes_the_expanded_template_as_json(tmp_path: Path) -> None:
    """Given a YAML template with short-form intrinsics, when run as a module, then the output file
    holds the expanded template, as tools that cannot read the transform need it."""
    source = tmp_path / "template.yaml"
    source.write_text(
        "Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]\n"
        "Resources:\n"
        "  Fn::ForEach::LogGroups:\n"
        "    - Name\n"
        "    - [Validate]\n"
        "    - ${Name}FunctionLogGroup:\n"
        "        Type: AWS::Logs::LogGroup\n"
        "        Properties:\n"
        '          LogGroupName: !Join ["", [/aws/lambda/, {Ref: !Sub "${Name}Function"}]]\n'
    )
    target = tmp_path / "out" / "template.json"

    assert main([str(source), str(target)]) == 0

    written = json.loads(target.read_text())
    assert written == load_expanded_template(source)
    assert written["Resources"]["ValidateFunctionLogGroup"]["Properties"]["LogGroupName"] == {
        "Fn::Join": ["", ["/aws/lambda/", {"Ref": "ValidateFunction"}]]
    }


def test_the_module_reports_a_refused_template_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "template.yaml"
    source.write_text(
        "Transform: AWS::LanguageExtensions\n"
        "Resources:\n"
        "  Queue:\n"
        "    Type: AWS::SQS::Queue\n"
        "    Properties:\n"
        "      DelaySeconds:\n"
        "        Fn::Length: [1]\n"
    )

    assert main([str(source), str(tmp_path / "out.json")]) == 1

    assert "Fn::Length is not expanded locally" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
