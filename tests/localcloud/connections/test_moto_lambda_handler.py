"""The default invoke_handler: the client-connect handler runs through moto's Lambda backend in-process."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from moto.awslambda.utils import get_backend

from localcloud.clientvpn.connections import simulate_connect
from localcloud.clock import Clock
from tests.localcloud.connections.support import ACCOUNT_ID, DIRECTORY, LOG_GROUP, REGION, FakeEndpoint

FUNCTION_NAME = "AWSClientVPN-connect"


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {'allow': True}\n")
    return buffer.getvalue()


@pytest.fixture
def lambda_endpoint(clock: Clock) -> Iterator[FakeEndpoint]:
    """An endpoint whose handler is a function created with boto3 in moto's Docker-less Lambda."""
    with mock_aws(config={"lambda": {"use_docker": False}}):
        boto3.client("logs", region_name=REGION).create_log_group(logGroupName=LOG_GROUP)
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="client-connect", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
        )["Role"]["Arn"]
        function_arn = boto3.client("lambda", region_name=REGION).create_function(
            FunctionName=FUNCTION_NAME,
            Runtime="python3.11",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": _function_zip()},
        )["FunctionArn"]
        yield FakeEndpoint(
            authentication_options=[dict(DIRECTORY)],
            client_connect_options={"Enabled": True, "LambdaFunctionArn": function_arn},
        )


def test_handler_answer_from_moto_lambda_decides(lambda_endpoint: FakeEndpoint) -> None:
    """What moto's Lambda returns for the function is the handler's answer (queued answers here)."""
    backend = get_backend(ACCOUNT_ID, REGION)
    backend.lambda_simple_results_queue.extend(  # type: ignore[attr-defined]
        [json.dumps({"allow": True}), json.dumps({"allow": False, "error-msg-on-denied-connection": "no"})]
    )

    allowed = simulate_connect(lambda_endpoint, username="joe")
    denied = simulate_connect(lambda_endpoint, username="joe")

    assert allowed.connected
    assert denied.failure_reason == "client-connect-failed"
    assert denied.error_msg_on_denied_connection == "no"


def test_missing_function_is_a_service_error(lambda_endpoint: FakeEndpoint) -> None:
    """A handler ARN Lambda does not know fails the attempt with client-connect-handler-service-error."""
    lambda_endpoint.client_connect_options["LambdaFunctionArn"] = (
        f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:AWSClientVPN-missing"
    )
    result = simulate_connect(lambda_endpoint, username="joe")
    assert result.failure_reason == "client-connect-handler-service-error"
