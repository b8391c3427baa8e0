"""One moto server, Lambda runtime and deployed fixture app for the deploy tests of this package."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from localcloud import eventbridge
from localcloud.deploy import deploy_stack
from localcloud.lambdaruntime import LambdaRuntime, install, select_simple_lambda_backend, uninstall
from localcloud.stack import DeployedStack
from tests.fixtures import FIXTURES

SAM_APP = FIXTURES / "sam_app"
REGION = "us-east-1"
STACK_NAME = "fixture-app"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalAws:
    """The embedded AWS the tests deploy into."""

    endpoint_url: str
    runtime: LambdaRuntime


@pytest.fixture(scope="package")
def fake_credentials() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            patch.setenv(name, "testing")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        yield


@pytest.fixture(scope="package")
def local_aws(fake_credentials: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    """moto on loopback with the real Lambda runtime behind Invoke and EventBridge -> Lambda delivery.

    Step Functions executes definitions (moto's ASL interpreter, whose SDK clients call
    ``localhost:$MOTO_PORT``).
    """
    sfn_config = default_user_config.setdefault("stepfunctions", {})  # type: ignore[typeddict-item]
    previous_execute = sfn_config.get("execute_state_machine", False)
    sfn_config["execute_state_machine"] = True
    lambda_config = default_user_config.setdefault("lambda", {})  # type: ignore[typeddict-item]
    previous_use_docker = lambda_config.get("use_docker", True)
    select_simple_lambda_backend()
    port = _free_port()
    moto_port = pytest.MonkeyPatch()
    moto_port.setenv("MOTO_PORT", str(port))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint_url = f"http://127.0.0.1:{port}"
    runtime = LambdaRuntime(
        base_environment={
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        },
        work_dir=tmp_path_factory.mktemp("deploy-runtime"),
        idle_timeout_seconds=120,
    )
    install(runtime)
    eventbridge.install()
    try:
        yield LocalAws(endpoint_url=endpoint_url, runtime=runtime)
    finally:
        eventbridge.uninstall()
        uninstall()
        runtime.shutdown()
        server.stop()
        moto_port.undo()
        sfn_config["execute_state_machine"] = previous_execute
        lambda_config["use_docker"] = previous_use_docker


@pytest.fixture(scope="package")
def deployed(local_aws: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> DeployedStack:
    """The fixture SAM app deployed once for the whole package."""
    return deploy_stack(
        SAM_APP / "template.yaml",
        stack_name=STACK_NAME,
        endpoint_url=local_aws.endpoint_url,
        region=REGION,
        build_dir=tmp_path_factory.mktemp("deploy-build"),
    )
