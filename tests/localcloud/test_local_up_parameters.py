"""`cvpn local up` deploys template.yaml with the user's parameters, as `sam deploy` takes them: from
`--parameter-overrides` and from an environment of samconfig.toml (`--config-env`), each run in its
own process as a user starts it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest

from cvpn.cli import main
from localcloud.cloud import free_port
from tests.fixtures import REPO_ROOT
from tests.fixtures.local_up import read_banner

CVPN = [sys.executable, "-m", "cvpn.cli"]
SPRAY_SETTINGS = {"r4_distinct_users": 3, "runbook_url": "https://wiki.example/vpn"}


@contextmanager
def local_up(*flags: str) -> Iterator[tuple[str, str]]:
    """`cvpn local up FLAGS` in its own process until its banner ends; yields its endpoint and banner,
    then stops it with Ctrl-C."""
    port, api_port = free_port(), free_port()
    process = subprocess.Popen(
        [*CVPN, "local", "up", "--port", str(port), "--api-port", str(api_port), *flags],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    text = read_banner(process, timeout=120)
    try:
        assert "Ctrl-C to stop" in text, text
        yield f"http://127.0.0.1:{port}", text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")  # type: ignore[call-overload]


def _ingest_function(endpoint: str, stack_name: str) -> dict[str, Any]:
    functions = _client(endpoint, "lambda").list_functions()["Functions"]
    (ingest,) = [
        function
        for function in functions
        if function["FunctionName"].startswith(f"{stack_name}-IngestConnectionLogsFunction")
    ]
    return dict(ingest)


@pytest.mark.slow
def test_parameter_overrides_reach_the_function_environment_and_the_schedule(tmp_path: Path) -> None:
    """Given a samconfig environment that names the stack and sets parameters, when a user runs
    `cvpn local up --config-env trial --parameter-overrides` with a JSON DetectionSettings and an
    ingest schedule, both quoted as SAM CLI reads them, then the ingest function's environment holds
    the JSON, its schedule rule has the expression, the stack has the environment's name, and the
    banner says the command line replaced the environment's parameter_overrides (as sam deploy does)."""
    config = tmp_path / "trial.toml"
    config.write_text(
        "version = 0.1\n"
        "[trial.global.parameters]\n"
        'stack_name = "cvpn-trial"\n'
        "[trial.deploy.parameters]\n"
        'parameter_overrides = "LogRetentionDays=7"\n'
    )
    detection = json.dumps(SPRAY_SETTINGS)
    with local_up(
        "--config-file",
        str(config),
        "--config-env",
        "trial",
        "--parameter-overrides",
        f"DetectionSettings='{detection}'",
        "IngestSchedule='rate(5 minutes)'",
    ) as (endpoint, banner):
        ingest = _ingest_function(endpoint, "cvpn-trial")
        variables = ingest["Environment"]["Variables"]
        assert json.loads(variables["DETECTION_SETTINGS"]) == SPRAY_SETTINGS
        rules = _client(endpoint, "events").list_rules(NamePrefix="cvpn-trial-IngestConnectionLogs")["Rules"]
        assert [rule["ScheduleExpression"] for rule in rules] == ["rate(5 minutes)"]
    assert "stack          cvpn-trial deployed" in banner, banner
    assert "IngestSchedule               rate(5 minutes)" in banner, banner
    assert "trial.toml [trial] as sam deploy does; not applied: LogRetentionDays" in banner, banner


@pytest.mark.slow
def test_config_env_deploys_the_environment_of_samconfig() -> None:
    """Given the repository's samconfig.toml, when a user runs `cvpn local up --config-env prod`, then
    the stack is the prod environment's stack_name and its parameter_overrides apply: log groups keep
    365 days and the requests table is tagged Stage=prod."""
    with local_up("--config-env", "prod") as (endpoint, banner):
        stack = _client(endpoint, "cloudformation").describe_stacks(StackName="cvpn-autopilot-prod")
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stack["Stacks"][0]["Outputs"]}
        dynamodb = _client(endpoint, "dynamodb")
        table = dynamodb.describe_table(TableName=outputs["RequestsTableName"])["Table"]
        tags = dynamodb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
        assert {"Key": "Stage", "Value": "prod"} in tags
        groups = _client(endpoint, "logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
        assert {group["retentionInDays"] for group in groups if "retentionInDays" in group} == {365}
    assert "parameters     from samconfig.toml [prod]" in banner, banner
    assert "(other commands: --local finds it; elsewhere --stack-name cvpn-autopilot-prod)" in banner, banner


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--parameter-overrides", "LogRetentionDays=8"],
            "parameter LogRetentionDays: '8' is not one of the AllowedValues (7, 14, 30, 60, 90, 180, 365)",
        ),
        (
            ["--parameter-overrides", "IngestSchedule='every 5 minutes'"],
            "parameter IngestSchedule: 'every 5 minutes' does not match AllowedPattern",
        ),
        (
            ["--parameter-overrides", "DetectionSetings={}"],
            "parameter DetectionSetings: the template declares no such parameter "
            "(did you mean DetectionSettings?)",
        ),
        (
            ["--parameter-overrides", 'DetectionSettings={"rules": 1}'],
            "--parameter-overrides: cannot read 'DetectionSettings={\"rules\": 1}'",
        ),
        (["--config-env", "staging"], "--config-env staging: samconfig.toml has no environment 'staging'"),
        (["--config-file", "missing.toml"], "--config-file missing.toml:"),
        (["--no-deploy", "--config-env", "prod"], "--config-env: nothing is deployed with --no-deploy"),
    ],
)
def test_bad_parameters_are_refused_before_anything_starts(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a value the template's constraints refuse, an unknown parameter, text SAM CLI cannot
    read or a samconfig environment that does not exist, `cvpn local up` exits with status 2 and
    names the flag or parameter and the reason, without a traceback and before serving anything."""
    assert main(["local", "up", "--port", str(free_port()), *flags]) == 2
    error = capsys.readouterr().err
    assert message in error, error
    assert "Traceback" not in error
