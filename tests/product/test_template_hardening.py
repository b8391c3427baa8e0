"""template.yaml keeps its operational settings: least-privilege policies, a log
group with retention per function, an on-failure destination for asynchronous triggers, encryption
and TLS for the stored data, and the outputs operators need. The local cloud enforces no IAM, so
these static checks are what stands between a policy slip and a deploy.

They read the template as CloudFormation deploys it: its Fn::ForEach loops expanded
(localcloud.language_extensions), intrinsics in their long form ({"Fn::Sub": ...}, {"Fn::GetAtt":
[logical id, attribute]})."""

from __future__ import annotations

import re
from typing import Any

import pytest

from localcloud.language_extensions import load_expanded_template
from tests.fixtures import REPO_ROOT

ROOT = REPO_ROOT

TEMPLATE: dict[str, Any] = load_expanded_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = sorted(n for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function")
STATE_MACHINES = sorted(n for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::StateMachine")

# Actions the Service Authorization Reference lists with no resource type (list/describe calls,
# task tokens, log delivery): the only ones a statement may grant on Resource "*".
NO_RESOURCE_LEVEL_ACTIONS = {
    "acm:ListCertificates",
    "ds:DescribeDirectories",
    "ec2:DescribeClientVpnEndpoints",
    "ec2:DescribeClientVpnConnections",
    "ec2:DescribeClientVpnTargetNetworks",
    "ec2:DescribeClientVpnAuthorizationRules",
    "ec2:DescribeClientVpnRoutes",
    "ec2:DescribeEgressOnlyInternetGateways",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeNatGateways",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "logs:DescribeLogGroups",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "states:SendTaskSuccess",
    "states:SendTaskFailure",
}
# Client VPN actions that change an endpoint: only on endpoints the product tagged as its own.
ENDPOINT_MUTATIONS = {
    "ec2:AssociateClientVpnTargetNetwork",
    "ec2:AuthorizeClientVpnIngress",
    "ec2:CreateClientVpnRoute",
    "ec2:ApplySecurityGroupsToClientVpnTargetNetwork",
    "ec2:ExportClientVpnClientConfiguration",
    "ec2:ImportClientVpnClientCertificateRevocationList",
    "ec2:DeleteClientVpnEndpoint",
    "ec2:DeleteClientVpnRoute",
    "ec2:DisassociateClientVpnTargetNetwork",
    "ec2:RevokeClientVpnIngress",
    # Cutting sessions changes an endpoint's state as much: the alert function may do it on managed
    # endpoints only, never on every endpoint of the account.
    "ec2:TerminateClientVpnConnections",
}
ENDPOINT_ARN = "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:client-vpn-endpoint/*"


def _policy_documents(properties: dict[str, Any]) -> list[Any]:
    """A function's inline policies, and the documents of the template's managed policies it names
    (``- !Ref SomePolicy``): what its role is allowed, wherever it is written."""
    documents = []
    for policy in properties.get("Policies", []):
        if isinstance(policy, dict) and set(policy) == {"Ref"}:
            managed = RESOURCES[policy["Ref"]]
            assert managed["Type"] == "AWS::IAM::ManagedPolicy", policy
            policy = managed["Properties"]["PolicyDocument"]
        documents.append(policy)
    return documents


def _statements(properties: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in _policy_documents(properties):
        if isinstance(policy, dict) and "Statement" in policy:
            for statement in policy["Statement"]:
                if (
                    isinstance(statement, dict) and "Fn::If" in statement
                ):  # !If [condition, statement, NoValue]
                    statement = statement["Fn::If"][1]
                found.append(statement)
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resource_texts(statement: dict[str, Any]) -> list[str]:
    return [
        r["Fn::Sub"] if isinstance(r, dict) and "Fn::Sub" in r else str(r)
        for r in _as_list(statement["Resource"])
    ]


def _value(value: Any) -> Any:
    """A literal, or the value an Fn::FindInMap of the template's Mappings names."""
    if isinstance(value, dict) and set(value) == {"Fn::FindInMap"}:
        mapping, key, name = value["Fn::FindInMap"]
        return TEMPLATE["Mappings"][mapping][key][name]
    return value


def _name_text(value: Any) -> Any:
    """A name as Fn::Sub text: an Fn::Sub string as it is, an Fn::Join of strings and Refs with each
    {"Ref": X} written ${X}; anything else unchanged."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"]
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        if all(isinstance(p, str) or (isinstance(p, dict) and set(p) == {"Ref"}) for p in parts):
            return separator.join(p if isinstance(p, str) else f"${{{p['Ref']}}}" for p in parts)
    return value


@pytest.mark.parametrize("name", FUNCTIONS + STATE_MACHINES)
def test_wildcard_resources_only_for_actions_without_resource_level_permissions(name: str) -> None:
    for statement in _statements(RESOURCES[name]["Properties"]):
        if statement.get("Resource") == "*":
            broad = set(_as_list(statement["Action"])) - NO_RESOURCE_LEVEL_ACTIONS
            assert not broad, f"{name} {statement.get('Sid')}: {sorted(broad)} on Resource '*'"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_endpoint_changes_only_on_the_products_endpoints(name: str) -> None:
    for statement in _statements(RESOURCES[name]["Properties"]):
        mutations = set(_as_list(statement["Action"])) & ENDPOINT_MUTATIONS
        if mutations and ENDPOINT_ARN in _resource_texts(statement):
            condition = statement.get("Condition", {}).get("StringEquals", {})
            assert (
                _value(condition.get("aws:ResourceTag/cvpn-autopilot:managed-by")) == "client-vpn-autopilot"
            ), f"{name} {statement.get('Sid')}: {sorted(mutations)} without the product's tag condition"


def test_the_alert_function_cuts_sessions_on_managed_endpoints_only() -> None:
    """Whoever controls a finding (a log line) must not get sessions cut on any endpoint of the account."""
    statements = [
        s
        for s in _statements(RESOURCES["DeliverAlertsFunction"]["Properties"])
        if "ec2:TerminateClientVpnConnections" in _as_list(s["Action"])
    ]
    assert statements
    for statement in statements:
        assert _resource_texts(statement) == [ENDPOINT_ARN]
        condition = statement["Condition"]["StringEquals"]
        assert _value(condition["aws:ResourceTag/cvpn-autopilot:managed-by"]) == "client-vpn-autopilot"


def test_the_server_certificate_check_reads_acm_and_changes_endpoints_only_through_the_update_workflow() -> (
    None
):
    """The check reads public certificate material (never a private key: no acm:ExportCertificate)
    and changes no endpoint itself: a rotation is an execution of the update state machine."""
    function = RESOURCES["CheckServerCertificatesFunction"]["Properties"]
    statements = list(_statements(function))
    actions = {action for statement in statements for action in _as_list(statement["Action"])}
    assert {a for a in actions if a.startswith(("acm:", "ec2:", "states:"))} == {
        "acm:DescribeCertificate",
        "acm:GetCertificate",
        "acm:ListCertificates",
        "states:StartExecution",
    }
    (start,) = [s for s in statements if "states:StartExecution" in _as_list(s["Action"])]
    assert start["Resource"] == {"Ref": "UpdateEndpointStateMachine"}
    assert function["Environment"]["Variables"]["SERVER_CERTIFICATE_EXPIRY_DAYS"] == {
        "Ref": "ServerCertificateExpiryDays"
    }
    assert TEMPLATE["Parameters"]["ServerCertificateExpiryDays"]["Default"] == 30


def test_the_ingest_reads_logs_and_learns_which_endpoint_owns_each_group_nothing_more() -> None:
    """The ingest reads log events (FilterLogEvents only: no GetLogEvents, no Logs Insights, no
    subscription) and describes endpoints to judge records by their group's owner."""
    actions = {
        action
        for statement in _statements(RESOURCES["IngestConnectionLogsFunction"]["Properties"])
        for action in _as_list(statement["Action"])
        if action.startswith(("logs:", "ec2:"))
    }
    assert actions == {"logs:FilterLogEvents", "ec2:DescribeClientVpnEndpoints"}


def test_endpoints_are_created_only_with_the_products_tag() -> None:
    statements = _statements(RESOURCES["CreateEndpointFunction"]["Properties"])
    on_endpoints = [
        s
        for s in statements
        if "ec2:CreateClientVpnEndpoint" in _as_list(s["Action"]) and ENDPOINT_ARN in _resource_texts(s)
    ]
    assert on_endpoints
    for statement in on_endpoints:
        tags = statement["Condition"]["StringEquals"]
        assert _value(tags["aws:RequestTag/cvpn-autopilot:managed-by"]) == "client-vpn-autopilot"


def test_no_managed_policies_beyond_sam_policy_templates() -> None:
    """Named AWS managed policies (CloudWatchLogsFullAccess and the like) grant far more than needed;
    a policy given by reference is one of the template's own, which the checks above read too."""
    for name in FUNCTIONS + STATE_MACHINES:
        for policy in RESOURCES[name]["Properties"].get("Policies", []):
            assert not isinstance(policy, str), f"{name} uses the managed policy {policy}"
            if isinstance(policy, dict) and "Ref" in policy:
                referenced = RESOURCES.get(policy["Ref"], {}).get("Type")
                assert referenced == "AWS::IAM::ManagedPolicy", f"{name} names the policy {policy['Ref']}"


@pytest.mark.parametrize("name", STATE_MACHINES)
def test_state_machines_invoke_only_their_functions(name: str) -> None:
    properties = RESOURCES[name]["Properties"]
    substituted = {
        value["Fn::GetAtt"][0]
        for value in properties["DefinitionSubstitutions"].values()
        if isinstance(value, dict) and "Fn::GetAtt" in value
    }
    invocable = {
        policy["LambdaInvokePolicy"]["FunctionName"]["Ref"]
        for policy in properties["Policies"]
        if isinstance(policy, dict) and "LambdaInvokePolicy" in policy
    }
    assert invocable <= substituted, f"{name} may invoke {sorted(invocable - substituted)} it never calls"
    assert properties["Logging"]["Level"] in ("ERROR", "ALL")
    assert properties["Logging"]["IncludeExecutionData"] is False
    assert properties["Tracing"]["Enabled"] is True


FUNCTION_LOG_GROUPS = {
    logical_id: _name_text(r["Properties"].get("LogGroupName"))
    for logical_id, r in RESOURCES.items()
    if r["Type"] == "AWS::Logs::LogGroup"
    and str(_name_text(r["Properties"].get("LogGroupName"))).startswith("/aws/lambda/")
}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_has_a_log_group_with_retention(name: str) -> None:
    groups = [
        RESOURCES[logical_id]["Properties"]
        for logical_id, text in FUNCTION_LOG_GROUPS.items()
        if text == f"/aws/lambda/${{{name}}}"
    ]
    assert len(groups) == 1, f"{name}: no log group /aws/lambda/${{{name}}}"
    assert groups[0]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_function_log_group_belongs_to_a_function() -> None:
    """A name left in the log groups' loop after its function went would leave a group for nothing."""
    assert sorted(FUNCTION_LOG_GROUPS.values()) == sorted(f"/aws/lambda/${{{name}}}" for name in FUNCTIONS)


def test_functions_are_traced() -> None:
    assert TEMPLATE["Globals"]["Function"]["Tracing"] == "Active"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_asynchronous_triggers_have_an_on_failure_destination(name: str) -> None:
    properties = RESOURCES[name]["Properties"]
    asynchronous = [
        e for e in properties.get("Events", {}).values() if e["Type"] in ("Schedule", "EventBridgeRule")
    ]
    if asynchronous:
        on_failure = properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
        assert on_failure["Destination"] == {"Fn::GetAtt": ["MonitoringDeadLetterQueue", "Arn"]}
        for event in asynchronous:
            assert event["Properties"]["DeadLetterConfig"]["Type"] == "SQS"


def test_no_fixed_physical_names_but_the_client_connect_handler() -> None:
    """Names derive from the stack name (or are generated), so two stages fit one account."""
    name_keys = ("FunctionName", "TableName", "BucketName", "TopicName", "QueueName", "Name", "LogGroupName")
    for logical_id, resource in RESOURCES.items():
        for key in name_keys:
            value = resource.get("Properties", {}).get(key)
            if value is None or resource["Type"] == "AWS::SSM::Parameter":
                continue
            text = _name_text(value)
            assert isinstance(text, str) and re.search(r"\$\{[A-Za-z:]+\}", text), (
                f"{logical_id}.{key} is a fixed name: {value!r}"
            )


def test_stored_data_is_encrypted_and_the_bucket_is_private_tls_only_and_expiring() -> None:
    for name, resource in RESOURCES.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::DynamoDB::Table":
            assert properties["SSESpecification"]["SSEEnabled"] is True, name
        if resource["Type"] == "AWS::SNS::Topic":
            assert properties.get("KmsMasterKeyId"), name
        if resource["Type"] == "AWS::SQS::Queue":
            assert properties.get("SqsManagedSseEnabled") or properties.get("KmsMasterKeyId"), name
    bucket = RESOURCES["ClientConfigBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] >= 1
    policies = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": "ClientConfigBucket"}
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        for statements in policies
        for s in statements
    )


def test_the_api_is_throttled_and_logged() -> None:
    api = RESOURCES["IntakeApi"]["Properties"]
    assert api["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert api["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
    assert api["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["IntakeApiAccessLogGroup", "Arn"]}


def test_alarms_and_dashboard() -> None:
    alarms = {n for n, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert {
        "WorkflowExecutionsFailedAlarm",
        "IngestErrorsAlarm",
        "DeadLetterQueueDepthAlarm",
        "AuthenticationFailuresAlarm",
        "IngestLogGroupFailuresAlarm",
        "ServerCertificatesExpiringAlarm",
    } <= alarms
    assert any(r["Type"] == "AWS::CloudWatch::Dashboard" for r in RESOURCES.values())


def test_parameters_have_descriptions_and_defaults() -> None:
    for name, parameter in TEMPLATE["Parameters"].items():
        assert parameter.get("Description"), name
        assert "Default" in parameter, name


def test_outputs_for_operators() -> None:
    outputs = set(TEMPLATE["Outputs"])
    assert {
        "IntakeApiUrl",
        "ProvisionEndpointStateMachineArn",
        "DecommissionEndpointStateMachineArn",
        "IntakeStateMachineArn",
        "NotificationsTopicArn",
        "AlertsTopicArn",
        "FindingsBusName",
    } <= outputs


def _evaluate(value: Any, parameters: dict[str, str]) -> Any:
    """The few intrinsics the SSM parameter statements use, evaluated as CloudFormation does."""
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((name, argument),) = value.items()
    if name == "Ref":
        return parameters[argument]
    if name == "Fn::Sub":
        return re.sub(r"\$\{([^}]+)\}", lambda match: parameters[match.group(1)], argument)
    if name == "Fn::Split":
        return _evaluate(argument[1], parameters).split(argument[0])
    if name == "Fn::Select":
        return _evaluate(argument[1], parameters)[int(argument[0])]
    if name == "Fn::Equals":
        return _evaluate(argument[0], parameters) == _evaluate(argument[1], parameters)
    if name == "Fn::If":
        condition = _evaluate(TEMPLATE["Conditions"][argument[0]], parameters)
        return _evaluate(argument[1] if condition else argument[2], parameters)
    raise AssertionError(f"intrinsic {name} not evaluated here")


@pytest.mark.parametrize(
    ("function", "parameter"),
    [
        ("DeliverAlertsFunction", "AlertWebhookParameter"),
        ("IngestConnectionLogsFunction", "ConnectionLogGroupsParameter"),
    ],
)
@pytest.mark.parametrize("name", ["cvpn-alert-webhook", "/cvpn/alerts/webhook"])
def test_a_named_ssm_parameter_is_granted_by_its_exact_arn(function: str, parameter: str, name: str) -> None:
    """SSM's ARN of a flat name is parameter/<name>, of a hierarchical one (it starts with "/")
    parameter<name>: a "//" would grant nothing."""
    statement = next(
        s for s in _statements(RESOURCES[function]["Properties"]) if s.get("Action") == "ssm:GetParameter"
    )
    context = {
        "AWS::Partition": "aws",
        "AWS::Region": "eu-west-1",
        "AWS::AccountId": "123456789012",
        parameter: name,
    }

    arn = _evaluate(statement["Resource"], context)

    assert arn == f"arn:aws:ssm:eu-west-1:123456789012:parameter/{name.lstrip('/')}"
