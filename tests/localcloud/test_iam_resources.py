"""The IAM questions each kind of call asks: actions, resource ARNs and condition keys."""

from __future__ import annotations

from typing import Any

from localcloud.iam_resources import Authorization, Call, authorizations, describe_unmapped

ACCOUNT = "123456789012"
REGION = "us-east-1"


class FakeLookups:
    """Resource facts as a test sets them."""

    def __init__(self, **facts: Any) -> None:
        self.tags: dict[str, dict[str, str]] = facts.get("tags", {})
        self.topic_keys: dict[str, str] = facts.get("topic_keys", {})
        self.partition_keys: dict[str, str] = facts.get("partition_keys", {})

    def resource_tags(self, call: Call, arn: str) -> dict[str, str] | None:
        return self.tags.get(arn)

    def secret_arn(self, call: Call, secret_id: str) -> str:
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret_id}-AbCdEf"

    def kms_key_arn(self, call: Call, key_id: str) -> str | None:
        return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"

    def topic_kms_key(self, call: Call, topic_arn: str) -> str | None:
        return self.topic_keys.get(topic_arn)

    def table_partition_key(self, call: Call, table_name: str) -> str | None:
        return self.partition_keys.get(table_name)


def _ask(
    service: str, operation: str, lookups: FakeLookups | None = None, **params: Any
) -> list[Authorization]:
    return authorizations(Call(service, REGION, ACCOUNT, operation, params), lookups or FakeLookups())


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def test_an_endpoint_call_is_asked_on_the_endpoint_with_its_tags_and_on_the_subnet() -> None:
    endpoint = _arn("ec2", "client-vpn-endpoint/cvpn-endpoint-1")
    lookups = FakeLookups(tags={endpoint: {"cvpn-autopilot:managed-by": "client-vpn-autopilot"}})

    asked = _ask(
        "ec2",
        "CreateClientVpnRoute",
        lookups,
        ClientVpnEndpointId="cvpn-endpoint-1",
        TargetVpcSubnetId="subnet-9",
    )

    assert [(a.action, a.resource) for a in asked] == [
        ("ec2:CreateClientVpnRoute", endpoint),
        ("ec2:CreateClientVpnRoute", _arn("ec2", "subnet/subnet-9")),
    ]
    assert asked[0].context == {"aws:ResourceTag/cvpn-autopilot:managed-by": "client-vpn-autopilot"}


def test_ec2_describe_calls_are_asked_on_star() -> None:
    asked = _ask("ec2", "DescribeClientVpnTargetNetworks", ClientVpnEndpointId="cvpn-endpoint-1")

    assert [(a.action, a.resource) for a in asked] == [("ec2:DescribeClientVpnTargetNetworks", "*")]


def test_creating_a_tagged_endpoint_also_asks_create_tags_for_that_create() -> None:
    tags = [{"ResourceType": "client-vpn-endpoint", "Tags": [{"Key": "team", "Value": "net"}]}]

    asked = _ask(
        "ec2", "CreateClientVpnEndpoint", VpcId="vpc-1", SecurityGroupIds=["sg-1"], TagSpecifications=tags
    )

    assert [(a.action, a.resource) for a in asked] == [
        ("ec2:CreateClientVpnEndpoint", _arn("ec2", "client-vpn-endpoint/*")),
        ("ec2:CreateClientVpnEndpoint", _arn("ec2", "vpc/vpc-1")),
        ("ec2:CreateClientVpnEndpoint", _arn("ec2", "security-group/sg-1")),
        ("ec2:CreateTags", _arn("ec2", "client-vpn-endpoint/*")),
    ]
    assert asked[0].context == {"aws:RequestTag/team": "net", "aws:TagKeys": ["team"]}
    assert asked[-1].context["ec2:CreateAction"] == "CreateClientVpnEndpoint"


def test_create_and_delete_tags_ask_with_the_keys_they_set_as_request_tags() -> None:
    tags = [{"Key": "cvpn-autopilot:request-id", "Value": "NET-9"}, {"Key": "team", "Value": "net"}]

    created = _ask("ec2", "CreateTags", Resources=["cvpn-endpoint-1"], Tags=tags)
    deleted = _ask("ec2", "DeleteTags", Resources=["cvpn-endpoint-1"], Tags=[{"Key": "team"}])

    assert [(a.action, a.resource) for a in created] == [
        ("ec2:CreateTags", _arn("ec2", "client-vpn-endpoint/cvpn-endpoint-1"))
    ]
    assert created[0].context["aws:TagKeys"] == ["cvpn-autopilot:request-id", "team"]
    assert created[0].context["aws:RequestTag/cvpn-autopilot:request-id"] == "NET-9"
    assert deleted[0].context["aws:TagKeys"] == ["team"]


def test_dynamodb_asks_per_table_index_and_item_with_the_leading_key() -> None:
    lookups = FakeLookups(partition_keys={"requests": "pk"})

    put = _ask("dynamodb", "PutItem", lookups, TableName="requests", Item={"pk": {"S": "request#1"}})
    scan = _ask("dynamodb", "Scan", lookups, TableName="requests", IndexName="by-group")
    transact = _ask(
        "dynamodb",
        "TransactWriteItems",
        lookups,
        TransactItems=[
            {"Put": {"TableName": "requests", "Item": {"pk": {"S": "a"}}}},
            {"ConditionCheck": {"TableName": "locks", "Key": {"id": {"S": "b"}}}},
        ],
    )
    batch = _ask("dynamodb", "BatchGetItem", lookups, RequestItems={"requests": {}, "locks": {}})

    assert put[0].context == {"dynamodb:LeadingKeys": ["request#1"]}
    assert scan[0].resource == _arn("dynamodb", "table/requests/index/by-group")
    assert [(a.action, a.resource) for a in transact] == [
        ("dynamodb:PutItem", _arn("dynamodb", "table/requests")),
        ("dynamodb:ConditionCheckItem", _arn("dynamodb", "table/locks")),
    ]
    assert {a.resource for a in batch} == {
        _arn("dynamodb", "table/requests"),
        _arn("dynamodb", "table/locks"),
    }


def test_service_specific_action_names_and_arns() -> None:
    assert _ask("s3", "HeadObject", Bucket="b", Key="k/1")[0] == Authorization(
        "s3:GetObject", "arn:aws:s3:::b/k/1"
    )
    assert _ask("s3", "ListObjectsV2", Bucket="b")[0] == Authorization("s3:ListBucket", "arn:aws:s3:::b")
    invoke = _ask("lambda", "Invoke", FunctionName="fn", Qualifier="live")[0]
    assert invoke == Authorization("lambda:InvokeFunction", _arn("lambda", "function:fn:live"))
    assert _ask("ssm", "GetParametersByPath", Path="/stack/profiles")[0].resource == _arn(
        "ssm", "parameter/stack/profiles"
    )
    assert _ask("ssm", "GetParameter", Name="plain")[0].resource == _arn("ssm", "parameter/plain")
    assert _ask("logs", "CreateLogStream", logGroupName="/g", logStreamName="s")[0].resource == _arn(
        "logs", "log-group:/g:log-stream:s"
    )
    assert _ask("events", "PutEvents", Entries=[{"EventBusName": "findings"}, {}])[0].resource == _arn(
        "events", "event-bus/default"
    )
    assert _ask("secretsmanager", "CreateSecret", Name="stack/x")[0].resource.endswith(
        ":secret:stack/x-AbCdEf"
    )
    assert _ask("states", "SendTaskSuccess", taskToken="t")[0].resource == "*"
    assert _ask("monitoring", "PutMetricData", Namespace="n")[0].action == "cloudwatch:PutMetricData"


def test_publishing_to_an_encrypted_topic_asks_for_its_key_through_sns() -> None:
    topic = _arn("sns", "alerts")
    key = _arn("kms", "key/k")

    asked = _ask("sns", "Publish", FakeLookups(topic_keys={topic: key}), TopicArn=topic, Message="m")

    assert [(a.action, a.resource) for a in asked] == [
        ("sns:Publish", topic),
        ("kms:GenerateDataKey", key),
        ("kms:Decrypt", key),
    ]
    assert asked[1].context == {"kms:ViaService": "sns.us-east-1.amazonaws.com"}


def test_unmapped_operations_are_asked_on_star_and_listed() -> None:
    asked = _ask("ec2", "CreateNetworkInterface", SubnetId="subnet-1")

    assert asked == [Authorization("ec2:CreateNetworkInterface", "*")]
    assert describe_unmapped(
        [("ec2", "CreateNetworkInterface"), ("ec2", "DescribeVpcs"), ("sns", "Publish")]
    ) == ["ec2:CreateNetworkInterface"]
