"""Shared fixtures: one LambdaRuntime per test module, shut down (workers killed) at module end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from localcloud.lambdaruntime import FunctionSpec, LambdaRuntime
from tests.fixtures import FIXTURES as SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "lambdaruntime"
ACCOUNT_ID = "123456789012"
REGION = "eu-west-1"
BASE_ENVIRONMENT = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:5999",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_SERVICE_NAME": "from-base",
}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaRuntime]:
    lambda_runtime = LambdaRuntime(
        base_environment=BASE_ENVIRONMENT,
        work_dir=tmp_path_factory.mktemp("lambdaruntime"),
        idle_timeout_seconds=120,
    )
    yield lambda_runtime
    lambda_runtime.shutdown()


@pytest.fixture
def make_function(runtime: LambdaRuntime, request: pytest.FixtureRequest) -> Callable[..., FunctionSpec]:
    """Register a function built from the fixture handlers; its name is unique to the test."""
    counter = iter(range(100))

    def register(handler: str, *, code: str = "functions", **overrides: Any) -> FunctionSpec:
        name = f"{request.node.name[:40]}-{next(counter)}".replace("[", "-").replace("]", "")
        fields: dict[str, Any] = {
            "function_name": name,
            "function_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
            "handler": handler,
            "code_dir": FIXTURES / code,
            "timeout_seconds": 10,
        }
        fields.update(overrides)
        spec = FunctionSpec(**fields)
        runtime.register(spec)
        return spec

    return register
