"""moto's Lambda Invoke, once the hook is installed, runs the real handler in the local runtime."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from localcloud.lambdaruntime import (
    LambdaRuntime,
    install,
    installed_log_writer,
    installed_runtime,
    uninstall,
)

from .conftest import ACCOUNT_ID, FIXTURES, REGION

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


FUNCTION_ZIP = _zip({"app.py": (FIXTURES / "functions" / "app.py").read_text()})
LAYER_ZIP = _zip({"python/vpn_naming.py": (FIXTURES / "layer" / "python" / "vpn_naming.py").read_text()})


@pytest.fixture(scope="module")
def hooked_runtime(runtime: LambdaRuntime) -> Iterator[LambdaRuntime]:
    install(runtime, cloudwatch_logs=True)
    yield runtime
    uninstall()


@pytest.fixture
def aws(hooked_runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """boto3 clients against moto with the non-Docker Lambda backend, plus an execution role."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws(config={"lambda": {"use_docker": False}}):
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(
            RoleName="vpn-autopilot-fn",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]
        yield {
            "lambda": boto3.client("lambda", region_name=REGION),
            "logs": boto3.client("logs", region_name=REGION),
            "role_arn": role["Arn"],
        }


def _create_function(aws: dict[str, Any], name: str, handler: str, **extra: Any) -> str:
    response = aws["lambda"].create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=aws["role_arn"],
        Handler=handler,
        Code={"ZipFile": FUNCTION_ZIP},
        Timeout=10,
        **extra,
    )
    return str(response["FunctionArn"])


def test_boto3_invoke_returns_the_handler_result(aws: dict[str, Any]) -> None:
    """Given a function created with boto3, Invoke returns what the real handler returned."""
    arn = _create_function(
        aws, "describe-worker", "app.describe_worker", Environment={"Variables": {"STAGE": "local"}}
    )

    response = aws["lambda"].invoke(FunctionName="describe-worker", Payload=b'{"ping": true}', LogType="Tail")

    body = json.loads(response["Payload"].read())
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert body["event"] == {"ping": True}
    assert body["environment"]["STAGE"] == "local"
    assert body["function_arn"] == arn
    assert response["ExecutedVersion"] == "$LATEST"
    log_tail = base64.b64decode(response["LogResult"]).decode()
    assert f"describing worker {body['pid']}" in log_tail
    assert arn.startswith(f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:")


def test_boto3_invoke_reports_function_error(aws: dict[str, Any]) -> None:
    """A handler raising AssociationFailed gives FunctionError Unhandled and the error payload."""
    _create_function(aws, "fail-association", "app.fail_association")

    response = aws["lambda"].invoke(FunctionName="fail-association", Payload=b'{"subnet_id": "subnet-7"}')

    body = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "AssociationFailed"
    assert body["errorMessage"] == "subnet subnet-7 is already associated"


def test_boto3_event_invoke_and_dry_run(aws: dict[str, Any], tmp_path: Any) -> None:
    """InvocationType Event answers 202 and runs the handler; DryRun answers 204 and runs nothing."""
    _create_function(aws, "record-event", "app.record_event")
    marker_file = tmp_path / "marker.txt"
    payload = json.dumps({"path": str(marker_file), "marker": "from-event"}).encode()

    event = aws["lambda"].invoke(FunctionName="record-event", InvocationType="Event", Payload=payload)
    dry_run = aws["lambda"].invoke(FunctionName="record-event", InvocationType="DryRun", Payload=payload)

    assert event["StatusCode"] == 202
    assert dry_run["StatusCode"] == 204
    runtime = installed_runtime()
    assert runtime is not None and runtime.wait_for_events(timeout=30)
    assert marker_file.read_text() == "from-event"


def test_boto3_layers_and_code_updates(aws: dict[str, Any]) -> None:
    """A published layer is importable; UpdateFunctionCode takes effect on the next invoke."""
    layer_arn = aws["lambda"].publish_layer_version(
        LayerName="vpn-naming", Content={"ZipFile": LAYER_ZIP}, CompatibleRuntimes=["python3.13"]
    )["LayerVersionArn"]
    _create_function(aws, "name-endpoint", "app.name_endpoint", Layers=[layer_arn])

    named = aws["lambda"].invoke(FunctionName="name-endpoint", Payload=b'{"team": "sre"}')
    assert json.loads(named["Payload"].read()) == "cvpn-sre-endpoint"

    aws["lambda"].update_function_code(
        FunctionName="name-endpoint",
        ZipFile=_zip({"app.py": "def name_endpoint(event, context):\n    return 'version-2'\n"}),
    )
    updated = aws["lambda"].invoke(FunctionName="name-endpoint", Payload=b"{}")
    assert json.loads(updated["Payload"].read()) == "version-2"


def test_invocation_logs_reach_cloudwatch_logs(aws: dict[str, Any]) -> None:
    """With cloudwatch_logs=True the invocation's lines land in /aws/lambda/<name>."""
    _create_function(aws, "logged-function", "app.describe_worker")

    aws["lambda"].invoke(FunctionName="logged-function", Payload=b"{}")

    writer = installed_log_writer()
    assert writer is not None and writer.flush()
    events = aws["logs"].filter_log_events(logGroupName="/aws/lambda/logged-function")["events"]
    messages = [event["message"] for event in events]
    assert any(message.startswith("describing worker") for message in messages)
    assert any(message.startswith("REPORT RequestId:") for message in messages)


def test_reserved_concurrency_zero_throttles(aws: dict[str, Any]) -> None:
    """A function with reserved concurrency 0 is throttled (TooManyRequestsException), as on AWS."""
    _create_function(aws, "throttled", "app.describe_worker")
    aws["lambda"].put_function_concurrency(FunctionName="throttled", ReservedConcurrentExecutions=0)

    no_retries = boto3.client("lambda", region_name=REGION, config=Config(retries={"total_max_attempts": 1}))

    with pytest.raises(no_retries.exceptions.TooManyRequestsException):
        no_retries.invoke(FunctionName="throttled", Payload=b"{}")


def test_delete_function_stops_its_workers(aws: dict[str, Any]) -> None:
    """DeleteFunction through moto also ends the function's warm workers in the runtime."""
    _create_function(aws, "short-lived", "app.describe_worker")
    pid = json.loads(aws["lambda"].invoke(FunctionName="short-lived", Payload=b"{}")["Payload"].read())["pid"]
    runtime = installed_runtime()
    assert runtime is not None and pid in runtime.pool("short-lived").worker_pids()

    aws["lambda"].delete_function(FunctionName="short-lived")

    assert runtime.spec("short-lived") is None
    assert "short-lived" not in runtime.stats()["workers"]
