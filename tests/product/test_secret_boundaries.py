"""Which function may read which secret, read from template.yaml as IAM evaluates it: the functions
reached by unauthenticated callers (the webhook) or that post to outside systems (the ticket callback)
read only their own prefix, never the approval-link signing key, which signs the links that decide a
request."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

import pytest

from .test_template_hardening import RESOURCES, _as_list, _statements

CONTEXT = {
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "cvpn-autopilot",
}
SUFFIX = "-AbC123"  # Secrets Manager appends six random characters to a secret's name in its ARN


def _sub(text: str) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda match: CONTEXT[match.group(1)], text)


def _secret_arn(name: str) -> str:
    return f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{name}{SUFFIX}"


def _readable_patterns(function: str) -> list[str]:
    """The Resource patterns of every statement that allows reading a secret's value."""
    patterns = []
    for statement in _statements(RESOURCES[function]["Properties"]):
        actions = _as_list(statement.get("Action", []))
        if statement.get("Effect") != "Allow" or not any(
            fnmatchcase("secretsmanager:GetSecretValue", action) for action in actions
        ):
            continue
        for resource in _as_list(statement["Resource"]):
            if isinstance(resource, dict) and set(resource) == {"Ref"}:
                continue  # a secret the operator names by its ARN (a template parameter), theirs to choose
            text = resource["Fn::Sub"] if isinstance(resource, dict) and "Fn::Sub" in resource else resource
            assert isinstance(text, str), f"{function}: a secret resource IAM cannot be read here: {resource}"
            patterns.append(_sub(text))
    return patterns


def _can_read(function: str, name: str) -> bool:
    return any(fnmatchcase(_secret_arn(name), pattern) for pattern in _readable_patterns(function))


def _environment(function: str, variable: str) -> str:
    value: Any = RESOURCES[function]["Properties"]["Environment"]["Variables"][variable]
    return _sub(value["Fn::Sub"] if isinstance(value, dict) else value)


def _output(name: str) -> str:
    from .test_template_hardening import TEMPLATE

    value = TEMPLATE["Outputs"][name]["Value"]
    return _sub(value["Fn::Sub"] if isinstance(value, dict) else value)


APPROVAL_KEY = _environment("ApprovalDecisionFunction", "APPROVAL_LINK_SECRET_NAME")
SIGNING_SECRET = _output("IntakeSecretsPrefix") + "jira"
CALLBACK_SECRET = _output("IntakeCallbackSecretsPrefix") + "jira"
FUNCTIONS = sorted(n for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function")


def test_both_approval_functions_name_the_same_key() -> None:
    assert _environment("RequestApprovalFunction", "APPROVAL_LINK_SECRET_NAME") == APPROVAL_KEY


def test_the_webhook_function_reads_signing_secrets_only() -> None:
    assert _can_read("WebhookIntakeFunction", SIGNING_SECRET)
    assert not _can_read("WebhookIntakeFunction", APPROVAL_KEY)
    assert not _can_read("WebhookIntakeFunction", CALLBACK_SECRET)


def test_the_ticket_callback_reads_callback_credentials_only() -> None:
    assert _can_read("TicketCallbackFunction", CALLBACK_SECRET)
    assert not _can_read("TicketCallbackFunction", APPROVAL_KEY)
    assert not _can_read("TicketCallbackFunction", SIGNING_SECRET)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_only_the_approval_functions_read_the_approval_key(function: str) -> None:
    expected = function in ("RequestApprovalFunction", "ApprovalDecisionFunction")
    assert _can_read(function, APPROVAL_KEY) is expected
    if expected:
        assert not _can_read(function, SIGNING_SECRET) and not _can_read(function, CALLBACK_SECRET)


def test_the_approval_key_is_under_neither_intake_prefix() -> None:
    for prefix in ("IntakeSecretsPrefix", "IntakeCallbackSecretsPrefix"):
        assert not APPROVAL_KEY.startswith(_output(prefix))
