"""IAM policy evaluation: actions, resources, conditions, explicit deny."""

from __future__ import annotations

from typing import Any

import pytest

from localcloud.iam_policy import Decision, RequestContext, evaluate, statement_actions
from localcloud.iam_report import unused_grants

ENDPOINTS = "arn:aws:ec2:us-east-1:123456789012:client-vpn-endpoint/*"
ENDPOINT = "arn:aws:ec2:us-east-1:123456789012:client-vpn-endpoint/cvpn-endpoint-0abc"
MANAGED = {"StringEquals": {"aws:ResourceTag/cvpn-autopilot:managed-by": "client-vpn-autopilot"}}


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _decide(policy: dict[str, Any], action: str, resource: str, **context: Any) -> Decision:
    return evaluate([policy], RequestContext(action, resource, context))


def test_an_allow_grants_only_its_actions_and_resources() -> None:
    policy = _policy({"Effect": "Allow", "Action": "ec2:DeleteClientVpnEndpoint", "Resource": ENDPOINTS})

    assert _decide(policy, "ec2:DeleteClientVpnEndpoint", ENDPOINT) is Decision.ALLOWED
    assert _decide(policy, "EC2:deleteclientvpnendpoint", ENDPOINT) is Decision.ALLOWED  # actions: any case
    assert _decide(policy, "ec2:ModifyClientVpnEndpoint", ENDPOINT) is Decision.IMPLICIT_DENY
    assert _decide(policy, "ec2:DeleteClientVpnEndpoint", "*") is Decision.IMPLICIT_DENY
    subnet = "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-1"
    assert _decide(policy, "ec2:DeleteClientVpnEndpoint", subnet) is Decision.IMPLICIT_DENY


def test_an_explicit_deny_wins_over_any_allow() -> None:
    policy = _policy(
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:Delete*", "Resource": ENDPOINTS},
    )

    assert _decide(policy, "ec2:DeleteClientVpnEndpoint", ENDPOINT) is Decision.EXPLICIT_DENY
    assert _decide(policy, "ec2:DescribeVpcs", "*") is Decision.ALLOWED


def test_a_resource_tag_condition_needs_the_tag_with_its_value() -> None:
    policy = _policy({"Effect": "Allow", "Action": "ec2:*", "Resource": ENDPOINTS, "Condition": MANAGED})
    tag = "aws:ResourceTag/cvpn-autopilot:managed-by"

    assert _decide(policy, "ec2:X", ENDPOINT, **{tag: "client-vpn-autopilot"}) is Decision.ALLOWED
    assert _decide(policy, "ec2:X", ENDPOINT, **{tag.upper(): "client-vpn-autopilot"}) is Decision.ALLOWED
    assert _decide(policy, "ec2:X", ENDPOINT, **{tag: "someone-else"}) is Decision.IMPLICIT_DENY
    assert _decide(policy, "ec2:X", ENDPOINT) is Decision.IMPLICIT_DENY


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        (
            {"StringEquals": {"ec2:CreateAction": "CreateClientVpnEndpoint"}},
            {"ec2:CreateAction": "CreateClientVpnEndpoint"},
            True,
        ),
        ({"StringEquals": {"ec2:CreateAction": "CreateClientVpnEndpoint"}}, {}, False),
        (
            {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}},
            {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
            False,
        ),
        (
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["request#*"]}},
            {"dynamodb:LeadingKeys": ["request#NET-1"]},
            True,
        ),
        (
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["request#*"]}},
            {"dynamodb:LeadingKeys": ["ticket#1"]},
            False,
        ),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["c", "b"]}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:TagKeys": ["a", "b"]}, False),
        ({"StringNotEquals": {"aws:RequestTag/team": "red"}}, {}, True),  # a missing key matches no value
        ({"StringEqualsIfExists": {"aws:RequestTag/team": "red"}}, {}, True),
        ({"Null": {"aws:RequestTag/team": "true"}}, {}, True),
        ({"Null": {"aws:RequestTag/team": "false"}}, {}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "false"}, False),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:123456789012:*"}},
            {"aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:t"},
            True,
        ),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "20"}, False),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, True),
        (
            {"StringEqualsIgnoreCase": {"iam:AWSServiceName": "CLIENTVPN.amazonaws.com"}},
            {"iam:AWSServiceName": "clientvpn.amazonaws.com"},
            True,
        ),
        ({"SomeFutureOperator": {"aws:RequestTag/team": "red"}}, {"aws:RequestTag/team": "red"}, False),
    ],
)
def test_condition_operators(condition: dict[str, Any], context: dict[str, Any], expected: bool) -> None:
    policy = _policy({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition})

    assert (_decide(policy, "s:A", "*", **context) is Decision.ALLOWED) is expected


def test_not_action_and_not_resource() -> None:
    policy = _policy({"Effect": "Allow", "NotAction": "iam:*", "NotResource": ENDPOINTS})

    assert _decide(policy, "ec2:DescribeVpcs", "*") is Decision.ALLOWED
    assert _decide(policy, "iam:CreateRole", "*") is Decision.IMPLICIT_DENY
    assert _decide(policy, "ec2:DeleteClientVpnEndpoint", ENDPOINT) is Decision.IMPLICIT_DENY


def test_policy_variables_come_from_the_context_and_an_unknown_one_never_matches() -> None:
    policy = _policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${aws:username}/*"}
    )

    assert (
        _decide(policy, "s3:GetObject", "arn:aws:s3:::b/alice/k", **{"aws:username": "alice"})
        is Decision.ALLOWED
    )
    assert _decide(policy, "s3:GetObject", "arn:aws:s3:::b/alice/k") is Decision.IMPLICIT_DENY


def test_question_mark_matches_one_character_as_in_secret_arns() -> None:
    policy = _policy(
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "arn:aws:secretsmanager:r:1:secret:s-??????",
        }
    )

    assert (
        _decide(policy, "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:r:1:secret:s-AbC123")
        is Decision.ALLOWED
    )
    assert (
        _decide(policy, "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:r:1:secret:s-AbC12")
        is Decision.IMPLICIT_DENY
    )


def test_unused_grants_are_the_patterns_no_call_matched() -> None:
    policy = _policy(
        {
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Query", "kms:GenerateDataKey*"],
            "Resource": "*",
        }
    )
    granted = statement_actions([policy])

    assert unused_grants(granted, {"dynamodb:GetItem": 3, "kms:GenerateDataKey": 1}) == ["dynamodb:Query"]


def test_the_report_adds_up_the_copies_of_one_function_deployed_by_several_stacks() -> None:
    from localcloud.iam_report import by_template_resource, format_report

    def seen(stack: str, called: dict[str, int]) -> dict[str, Any]:
        name = f"lambda:{stack}-RecordOutcomeFunction-ABCDEFGH1234"
        return {
            "principals": [name],
            "granted": ["dynamodb:GetItem", "dynamodb:PutItem"],
            "allowed": called,
            "denied": {},
        }

    recording = {
        "arn:aws:iam::1:role/a-RecordOutcomeFunctionRole-X": seen("a", {"dynamodb:PutItem": 2}),
        "arn:aws:iam::1:role/b-RecordOutcomeFunctionRole-Y": seen("b", {"dynamodb:PutItem": 1}),
        "arn:aws:iam::1:role/handmade": {
            "principals": ["sts:me"],
            "granted": [],
            "allowed": {},
            "denied": {},
        },
    }

    merged = by_template_resource(recording)

    assert set(merged) == {"RecordOutcomeFunction", "arn:aws:iam::1:role/handmade"}
    assert merged["RecordOutcomeFunction"]["allowed"] == {"dynamodb:PutItem": 3}
    assert "unused  (1): dynamodb:GetItem" in format_report(merged)
