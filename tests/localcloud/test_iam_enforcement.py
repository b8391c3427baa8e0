"""The local cloud authorizes calls signed with assumed-role credentials, and answers refusals as the
real services do; calls with the fake test credentials stay unrestricted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.cloud import DEFAULT_ACCOUNT_ID, LocalCloud
from localcloud.iam_report import format_report

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
ARN = f"arn:aws:{{}}:us-east-1:{DEFAULT_ACCOUNT_ID}:{{}}"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    recording = tmp_path_factory.mktemp("iam") / "recording.json"
    with LocalCloud(time_scale=1.0, iam_recording=recording) as local:
        yield local
    assert recording.is_file()


def _role(cloud: LocalCloud, name: str, *statements: dict[str, Any]) -> str:
    iam = cloud.client("iam")
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"])
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
    return arn


def _as(cloud: LocalCloud, role_arn: str, service: str, session: str = "fn") -> Any:
    credentials = cloud.role_credentials(role_arn, session, f"lambda:{session}")
    assert credentials is not None
    return cloud.client(
        service,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"],
    )


def _refusal(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    return dict(refused.value.response)


def test_a_table_grant_allows_its_actions_and_refuses_others_as_dynamodb_does(cloud: LocalCloud) -> None:
    dynamodb = cloud.client("dynamodb")
    dynamodb.create_table(
        TableName="records",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="records", Item={"pk": {"S": "request#1"}})  # the test's credentials
    role = _role(
        cloud,
        "reader",
        {
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": ARN.format("dynamodb", "table/records"),
        },
        {
            "Effect": "Allow",
            "Action": "dynamodb:PutItem",
            "Resource": ARN.format("dynamodb", "table/records"),
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["request#*"]}},
        },
    )
    as_role = _as(cloud, role, "dynamodb", "reader-fn")

    assert as_role.get_item(TableName="records", Key={"pk": {"S": "request#1"}})["Item"]
    as_role.put_item(TableName="records", Item={"pk": {"S": "request#2"}})
    error = _refusal(as_role.put_item, TableName="records", Item={"pk": {"S": "ticket#2"}})
    deleted = _refusal(as_role.delete_item, TableName="records", Key={"pk": {"S": "request#1"}})

    assert error["Error"]["Code"] == "AccessDeniedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    table = ARN.format("dynamodb", "table/records")
    expected = f"reader-fn is not authorized to perform: dynamodb:PutItem on resource: {table}"
    assert f"assumed-role/reader/{expected}" in error["Error"]["Message"]
    assert deleted["Error"]["Code"] == "AccessDeniedException"
    assert dynamodb.get_item(TableName="records", Key={"pk": {"S": "ticket#2"}}).get("Item") is None


def test_each_service_refuses_with_its_own_error(cloud: LocalCloud) -> None:
    role = _role(cloud, "nothing", {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"})
    cloud.client("s3").create_bucket(Bucket="configs")
    topic = cloud.client("sns").create_topic(Name="alerts")["TopicArn"]

    cases = {
        "ec2": (lambda: _as(cloud, role, "ec2").describe_vpcs(), "UnauthorizedOperation", 403),
        "s3": (
            lambda: _as(cloud, role, "s3").put_object(Bucket="configs", Key="k", Body=b"x"),
            "AccessDenied",
            403,
        ),
        "sns": (
            lambda: _as(cloud, role, "sns").publish(TopicArn=topic, Message="m"),
            "AuthorizationError",
            403,
        ),
        "states": (
            lambda: _as(cloud, role, "stepfunctions").describe_execution(
                executionArn=ARN.format("states", "execution:m:e")
            ),
            "AccessDeniedException",
            400,
        ),
        "lambda": (
            lambda: _as(cloud, role, "lambda").get_function(FunctionName="f"),
            "AccessDeniedException",
            403,
        ),
        "ssm": (lambda: _as(cloud, role, "ssm").get_parameter(Name="/x"), "AccessDeniedException", 400),
        "logs": (
            lambda: _as(cloud, role, "logs").filter_log_events(logGroupName="/g"),
            "AccessDeniedException",
            400,
        ),
    }
    for service, (call, code, status) in cases.items():
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] == code, service
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == status, service

    identity = _as(cloud, role, "sts").get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:assumed-role/nothing/fn"
    cloud.client("ec2").describe_vpcs()  # the test's own credentials: unrestricted


def test_an_explicit_deny_wins_and_a_policy_change_applies_at_once(cloud: LocalCloud) -> None:
    cloud.client("s3").create_bucket(Bucket="reports")
    role = _role(
        cloud,
        "writer",
        {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"]},
        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::reports/keep/*"},
    )
    s3 = _as(cloud, role, "s3", "writer-fn")
    s3.put_object(Bucket="reports", Key="keep/a", Body=b"a")
    s3.put_object(Bucket="reports", Key="tmp/a", Body=b"a")

    s3.delete_object(Bucket="reports", Key="tmp/a")
    error = _refusal(s3.delete_object, Bucket="reports", Key="keep/a")
    assert "with an explicit deny in an identity-based policy" in error["Error"]["Message"]

    cloud.client("iam").delete_role_policy(RoleName="writer", PolicyName="inline")
    assert _refusal(s3.get_object, Bucket="reports", Key="keep/a")["Error"]["Code"] == "AccessDenied"


SHARED_POLICY_APP = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Records:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
  SharedPolicy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: [SHARED_ACTIONS]
            Resource: !GetAtt Records.Arn
  Reader:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: reader/
      Handler: app.handler
      Runtime: python3.13
      Policies:
        - !Ref SharedPolicy
        - Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Action: dynamodb:PutItem
              Resource: !GetAtt Records.Arn
"""


def test_a_managed_policy_a_function_names_in_its_policies_is_enforced_and_follows_the_stack(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    """SAM puts ``Policies: - !Ref SharedPolicy`` in the role's ManagedPolicyArns: the role is
    allowed what the policy allows beside its inline policy, a new document applies on update, and
    the stack deletes cleanly (the policy is detached first)."""
    (tmp_path / "reader").mkdir()
    (tmp_path / "reader" / "app.py").write_text("def handler(event, context):\n    return {}\n")
    template = tmp_path / "template.yaml"
    template.write_text(SHARED_POLICY_APP.replace("SHARED_ACTIONS", "dynamodb:GetItem"))
    stack = cloud.deploy(template, stack_name="shared-policy", serve=False)
    table = stack.physical_ids["Records"]
    function = cloud.client("lambda").get_function(FunctionName=stack.function_name("Reader"))
    role = function["Configuration"]["Role"]
    iam = cloud.client("iam")
    attached = iam.list_attached_role_policies(RoleName=role.rsplit("/", 1)[-1])["AttachedPolicies"]
    assert [policy["PolicyArn"] for policy in attached] == [stack.physical_ids["SharedPolicy"]]
    dynamodb = _as(cloud, role, "dynamodb", "reader-fn")
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}})  # the inline policy
    assert dynamodb.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"]  # the managed one
    assert _refusal(dynamodb.scan, TableName=table)["Error"]["Code"] == "AccessDeniedException"

    template.write_text(SHARED_POLICY_APP.replace("SHARED_ACTIONS", "dynamodb:Scan"))
    cloud.deploy(template, stack_name="shared-policy", serve=False)
    assert dynamodb.scan(TableName=table)["Count"] == 1
    assert _refusal(dynamodb.get_item, TableName=table, Key={"pk": {"S": "a"}})["Error"]["Code"] == (
        "AccessDeniedException"
    )

    cloudformation = cloud.client("cloudformation")
    cloudformation.delete_stack(StackName="shared-policy")
    cloudformation.get_waiter("stack_delete_complete").wait(
        StackName="shared-policy", WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    names = [policy["PolicyName"] for policy in iam.list_policies(Scope="Local")["Policies"]]
    assert not [name for name in names if name.startswith("shared-policy-")]
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("shared-policy-")]


def test_publishing_to_an_encrypted_topic_needs_its_key_through_sns(cloud: LocalCloud) -> None:
    key = cloud.client("kms").create_key()["KeyMetadata"]["Arn"]
    topic = cloud.client("sns").create_topic(Name="secret-alerts", Attributes={"KmsMasterKeyId": key})[
        "TopicArn"
    ]
    publish = {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}
    via_sns = {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}}
    with_key = _role(
        cloud,
        "with-key",
        publish,
        {
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
            "Resource": key,
            "Condition": via_sns,
        },
    )
    without_key = _role(cloud, "without-key", publish)

    _as(cloud, with_key, "sns").publish(TopicArn=topic, Message="m")
    error = _refusal(_as(cloud, without_key, "sns").publish, TopicArn=topic, Message="m")

    assert error["Error"]["Code"] == "AuthorizationError"
    assert "kms:GenerateDataKey" in error["Error"]["Message"]


def test_a_tag_on_create_needs_create_tags_for_that_create(cloud: LocalCloud) -> None:
    from localcloud.sample_network import build_sample_network

    network = build_sample_network(cloud.client, region=cloud.region)
    endpoints = ARN.format("ec2", "client-vpn-endpoint/*")
    create = {
        "Effect": "Allow",
        "Action": "ec2:CreateClientVpnEndpoint",
        "Resource": [endpoints, ARN.format("ec2", "vpc/*"), ARN.format("ec2", "security-group/*")],
        "Condition": {"StringEquals": {"aws:RequestTag/managed-by": "me"}},
    }
    tag_on_create = {
        "Effect": "Allow",
        "Action": "ec2:CreateTags",
        "Resource": endpoints,
        "Condition": {"StringEquals": {"ec2:CreateAction": "CreateClientVpnEndpoint"}},
    }
    role = _role(cloud, "creator", create, tag_on_create)
    no_tagging = _role(cloud, "creator-without-tagging", create)

    def endpoint(as_role: Any, tag: str) -> Any:
        return as_role.create_client_vpn_endpoint(
            ClientCidrBlock="10.240.0.0/22",
            ServerCertificateArn=network.server_certificate_arn,
            AuthenticationOptions=[
                {
                    "Type": "directory-service-authentication",
                    "ActiveDirectory": {"DirectoryId": network.directory_id},
                }
            ],
            ConnectionLogOptions={"Enabled": False},
            VpcId=network.vpc_id,
            SecurityGroupIds=[network.security_group_id],
            TagSpecifications=[
                {"ResourceType": "client-vpn-endpoint", "Tags": [{"Key": "managed-by", "Value": tag}]}
            ],
        )

    assert endpoint(_as(cloud, role, "ec2"), "me")["ClientVpnEndpointId"]
    refused_tag = _refusal(endpoint, as_role=_as(cloud, role, "ec2"), tag="someone")
    refused_tagging = _refusal(endpoint, as_role=_as(cloud, no_tagging, "ec2"), tag="me")

    assert refused_tag["Error"]["Code"] == "UnauthorizedOperation"
    assert "ec2:CreateClientVpnEndpoint" in refused_tag["Error"]["Message"]
    assert "ec2:CreateTags" in refused_tagging["Error"]["Message"]


def test_observations_name_each_roles_calls_and_the_report_shows_unused_grants(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    role = _role(
        cloud,
        "observed",
        {"Effect": "Allow", "Action": ["sns:ListTopics", "sns:Publish"], "Resource": "*"},
    )
    _as(cloud, role, "sns", "observed-fn").list_topics()

    seen = cloud.iam_observations()[role]
    recording = tmp_path / "r.json"
    recording.write_text(json.dumps({role: seen}))
    report = format_report(json.loads(recording.read_text()))

    assert seen["principals"] == ["lambda:observed-fn"]
    assert seen["allowed"] == {"sns:ListTopics": 1}
    assert "unused  (1): sns:Publish" in report


def test_with_iam_off_role_credentials_are_not_handed_out_nor_checked() -> None:
    with LocalCloud(time_scale=1.0, iam=False) as cloud:
        assert cloud.describe()["iam"] == "off"
        assert cloud.role_credentials(ARN.format("iam", "role/r"), "s", "lambda:s") is None
        sts = cloud.client("sts")
        assumed = sts.assume_role(
            RoleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/none", RoleSessionName="debugging"
        )
        credentials = assumed["Credentials"]
        ec2 = cloud.client(
            "ec2",
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        ec2.describe_vpcs()
