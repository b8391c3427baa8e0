"""The functions call AWS with their own roles, and the local cloud refuses what those roles lack."""

from __future__ import annotations

import ast
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.provisioning.workflow.harness import MANAGED_BY_TAG, Provisioning, failure_message


def _role_name(product: Provisioning, logical_id: str) -> str:
    function_name = product.stack.functions[logical_id].name
    role_arn = product.cloud.client("lambda").get_function_configuration(FunctionName=function_name)["Role"]
    return str(role_arn).rsplit("/", 1)[-1]


@pytest.fixture
def policy_without_statement(product: Provisioning, request: pytest.FixtureRequest) -> Iterator[str]:
    """Remove the statement ``request.param = (function logical id, Sid)`` from the function's role
    (IAM PutRolePolicy, or DeleteRolePolicy when it was the policy's only statement, on the deployed
    stack); the policy is put back afterwards."""
    logical_id, sid = request.param
    iam = product.cloud.client("iam")
    role = _role_name(product, logical_id)
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    saved: dict[str, Any] = {}
    for name in names:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):  # moto answers a template role's policy as a Python literal
            document = ast.literal_eval(document)
        statements = (
            document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        )
        if any(statement.get("Sid") == sid for statement in statements):
            saved[name] = document
            kept = [s for s in statements if s.get("Sid") != sid]
            if kept:
                trimmed = dict(document, Statement=kept)
                iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(trimmed))
            else:  # a policy needs a statement: the one left without any goes
                iam.delete_role_policy(RoleName=role, PolicyName=name)
    assert saved, f"{logical_id} has no statement {sid}"
    yield role
    for name, document in saved.items():
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


@pytest.mark.parametrize(
    "policy_without_statement", [("AuthorizeIngressFunction", "AuthorizeIngress")], indirect=True
)
def test_a_provisioning_fails_where_aws_would_when_a_grant_is_removed(
    product: Provisioning, policy_without_statement: str
) -> None:
    """Given AuthorizeIngressFunction's role without its ec2:AuthorizeClientVpnIngress statement,
    when a request is provisioned,
    then the execution fails on the authorization step with EC2's UnauthorizedOperation naming the
    action and the function's assumed role, and rolls back: the endpoint is gone and the requests table
    says ROLLED_BACK."""
    request = product.request()

    progress = product.provision(request)

    assert progress.status == "FAILED"
    message = failure_message(progress)
    assert "UnauthorizedOperation" in message
    assert "ec2:AuthorizeClientVpnIngress" in message
    assert f"assumed-role/{policy_without_statement}/" in message
    assert "RecordRollback" in progress.steps
    assert product.endpoints_for(request["request_id"]) == []
    assert product.record_status(request["request_id"]) == "ROLLED_BACK"


def _endpoint(product: Provisioning, tags: dict[str, str]) -> str:
    ec2 = product.cloud.client("ec2")
    specification = [
        {"ResourceType": "client-vpn-endpoint", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
    ]
    return str(
        ec2.create_client_vpn_endpoint(
            ClientCidrBlock="10.250.0.0/22",
            ServerCertificateArn=product.network.server_certificate_arn,
            AuthenticationOptions=[
                {
                    "Type": "directory-service-authentication",
                    "ActiveDirectory": {"DirectoryId": product.network.directory_id},
                }
            ],
            ConnectionLogOptions={"Enabled": False},
            VpcId=product.network.vpc_id,
            SecurityGroupIds=[product.network.security_group_id],
            **({"TagSpecifications": specification} if tags else {}),
        )["ClientVpnEndpointId"]
    )


def _as_function(product: Provisioning, logical_id: str) -> Any:
    """An EC2 client with the credentials the local cloud gives the function's workers."""
    function = product.stack.functions[logical_id]
    role_arn = product.cloud.client("lambda").get_function_configuration(FunctionName=function.name)["Role"]
    credentials = product.cloud.role_credentials(role_arn, function.name, f"lambda:{function.name}")
    assert credentials is not None, "IAM enforcement is on in the workflow tests"
    return product.cloud.client(
        "ec2",
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"],
    )


def test_the_managed_by_tag_condition_refuses_an_endpoint_the_product_does_not_manage(
    product: Provisioning,
) -> None:
    """Given an endpoint created outside the product (no managed-by tag) and one carrying the tag,
    when the teardown function's role deletes each,
    then the foreign one is refused with UnauthorizedOperation (403, an encoded message naming the
    action, the endpoint's ARN and its tags) and still exists, and the managed one is deleted."""
    foreign = _endpoint(product, {"owner": "network-team"})
    managed = _endpoint(product, {MANAGED_BY_TAG: "client-vpn-autopilot"})
    teardown = _as_function(product, "TeardownEndpointFunction")

    with pytest.raises(ClientError) as refused:
        teardown.delete_client_vpn_endpoint(ClientVpnEndpointId=foreign)
    teardown.delete_client_vpn_endpoint(ClientVpnEndpointId=managed)

    error = refused.value.response
    assert error["Error"]["Code"] == "UnauthorizedOperation"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    encoded = error["Error"]["Message"].rsplit("Encoded authorization failure message: ", 1)[1]
    decoded = json.loads(base64.b64decode(encoded))
    assert decoded["context"]["action"] == "ec2:DeleteClientVpnEndpoint"
    assert decoded["context"]["resource"].endswith(f":client-vpn-endpoint/{foreign}")
    assert product.describe_endpoint(foreign) is not None
    product.wait_until_gone(managed)
    product.cloud.client("ec2").delete_client_vpn_endpoint(ClientVpnEndpointId=foreign)


def test_each_function_calls_with_its_own_role_session(product: Provisioning) -> None:
    """Given a provisioning that succeeded,
    then every provisioning function that ran called AWS as
    assumed-role/<its execution role>/<its function name>, as Lambda names the session."""
    product.provision(product.request())

    observations = product.cloud.iam_observations()

    for logical_id in ("CreateEndpointFunction", "AssociateSubnetFunction", "RecordOutcomeFunction"):
        function = product.stack.functions[logical_id]
        role = product.cloud.client("lambda").get_function_configuration(FunctionName=function.name)["Role"]
        assert f"lambda:{function.name}" in observations[role]["principals"]
        assert observations[role]["allowed"], f"{logical_id} made no authorized call"
