"""What the functions load on a cold start, so that a saving cannot silently come back.

Each check imports handlers in a fresh interpreter set up as Lambda's (the layer on the path,
``LAMBDA_TASK_ROOT`` and the Powertools variables set, so Powertools behaves as it does on AWS) and
reads ``sys.modules``. How long the imports take is ``make bench``'s business
(bench/handler_imports.py); what they load is checked here, and holds on any machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fixtures import REPO_ROOT

LAYER = REPO_ROOT / "layers" / "shared" / "python"
HANDLERS = sorted((REPO_ROOT / "functions").glob("*/*/app.py"))
CLIENT_CONNECT = REPO_ROOT / "functions" / "monitoring" / "client_connect" / "app.py"

# Imports each file given as a separate module, then prints every module the imports added.
PROBE = """
import importlib.util, json, sys
before = set(sys.modules)
for index, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"handler_{index}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
print(json.dumps(sorted(set(sys.modules) - before)))
"""

# What the client-connect handler must not load: the SDK, the model and logging libraries the other
# functions use, and the standard-library modules whose import costs more than the handler's own
# (http.client loads the e-mail parser; dataclasses loads inspect).
LOGIN_NEVER_LOADS = (
    "botocore",
    "boto3",
    "urllib3",
    "pydantic",
    "pydantic_core",
    "aws_lambda_powertools",
    "http.client",
    "email",
    "dataclasses",
    "inspect",
)

# Loaded by a tracing SDK or by boto3's S3 transfers, never by a login.
HEAVY_MODULES = ("asyncio", "multiprocessing", "sqlite3")


def _environment(task_root: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(LAYER),
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "POWERTOOLS_SERVICE_NAME": "cvpn-autopilot",
        "POWERTOOLS_METRICS_NAMESPACE": "ClientVpnAutopilot",
    }


def _loaded(code: str, *handlers: Path) -> set[str]:
    answer = subprocess.run(
        [sys.executable, "-c", code, *map(str, handlers)],
        capture_output=True,
        text=True,
        check=True,
        env=_environment(handlers[0].parent if handlers else REPO_ROOT),
    )
    return set(json.loads(answer.stdout))


def _packages(modules: set[str]) -> set[str]:
    """Top-level packages outside the standard library (C helpers and the handlers left out)."""
    tops = {name.partition(".")[0] for name in modules}
    return {
        top for top in tops if top not in sys.stdlib_module_names and not top.startswith(("_", "handler_"))
    }


def _within(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(
        name for name in modules if name in prefixes or name.startswith(tuple(f"{p}." for p in prefixes))
    )


def test_no_function_loads_a_tracing_sdk_or_boto3() -> None:
    """Given every handler, when all are imported as Lambda imports them, then none has loaded the
    X-Ray SDK (Lambda's active tracing traces the functions) nor boto3 (clients come from botocore,
    without boto3's resources and S3 transfers)."""
    loaded = _loaded(PROBE, *HANDLERS)
    assert len(HANDLERS) > 10
    assert _within(loaded, ("aws_xray_sdk", "opentelemetry", "boto3", "s3transfer")) == []


def test_the_client_connect_handler_loads_only_the_standard_library_and_the_layer() -> None:
    """Given the client-connect handler (a person waits for it on every VPN login), when it is
    imported as Lambda does, then it has loaded the layer and the standard library only: no SDK (it
    calls DynamoDB over the layer's own JSON client), no pydantic, no Powertools, no http.client
    or dataclasses, nothing a tracing SDK or S3 transfers load."""
    loaded = _loaded(PROBE, CLIENT_CONNECT)
    assert "cvpn_shared.monitoring.client_connect" in loaded
    assert "cvpn_shared.monitoring.dal.dynamodb_json" in loaded
    assert _packages(loaded) == {"cvpn_shared"}
    assert _within(loaded, LOGIN_NEVER_LOADS) == []
    assert _within(loaded, HEAVY_MODULES) == []
