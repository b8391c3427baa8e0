"""Server mode: a handler run by the local runtime reaches the moto server through AWS_ENDPOINT_URL."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from localcloud.lambdaruntime import LambdaRuntime, install, select_simple_lambda_backend, uninstall

from .conftest import FIXTURES, REGION

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on loopback whose Lambda Invoke runs handlers in a LambdaRuntime."""
    previous = dict(default_user_config.get("lambda", {}))
    select_simple_lambda_backend()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    runtime = LambdaRuntime(
        base_environment={"AWS_ENDPOINT_URL": endpoint, **FAKE_CREDENTIALS},
        work_dir=tmp_path_factory.mktemp("lambdaruntime-server"),
    )
    install(runtime)
    try:
        yield endpoint
    finally:
        uninstall()
        runtime.shutdown()
        server.stop()
        default_user_config["lambda"] = previous  # type: ignore[typeddict-item]


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]  # service names are a Literal in the stubs
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_handler_calls_back_into_moto_through_the_endpoint_url(moto_endpoint: str) -> None:
    """Given a function created on the moto server, when boto3 invokes it, the handler's own boto3
    calls (SSM, STS) land in the same moto server, and Powertools logging works in the worker."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(Path(FIXTURES / "sdk" / "app.py"), "app.py")
    role_arn = _client("iam", moto_endpoint).create_role(
        RoleName="sdk-function",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lambda_client = _client("lambda", moto_endpoint)
    lambda_client.create_function(
        FunctionName="store-parameter",
        Runtime="python3.13",
        Role=role_arn,
        Handler="app.store_parameter",
        Code={"ZipFile": buffer.getvalue()},
        Timeout=30,
    )

    response = lambda_client.invoke(
        FunctionName="store-parameter",
        Payload=json.dumps({"name": "/cvpn/test/marker", "value": "from-lambda"}).encode(),
        LogType="Tail",
    )

    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    assert body == {"stored": "from-lambda", "account": "123456789012"}
    assert '"message":"stored parameter"' in base64.b64decode(response["LogResult"]).decode()
    parameter = _client("ssm", moto_endpoint).get_parameter(Name="/cvpn/test/marker")["Parameter"]
    assert parameter["Value"] == "from-lambda"
