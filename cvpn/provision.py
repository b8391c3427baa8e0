"""Client side of provisioning: start an execution for a request, follow it step by step, report.

Works against any Step Functions endpoint: a deployed stack on AWS (found by stack name through its
CloudFormation outputs) or the local cloud.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CONFIGURATION_LINK_SECONDS",
    "ExecutionProgress",
    "configuration_link",
    "execution_name",
    "find_configuration",
    "follow_execution",
    "request_executions",
    "retry_name",
    "stack_outputs",
    "start_provisioning",
]

PROVISION_OUTPUT = "ProvisionEndpointStateMachineArn"
# How long a link `cvpn status` makes to a client configuration lasts (the stack's default lifetime).
CONFIGURATION_LINK_SECONDS = 900
DECOMMISSION_OUTPUT = "DecommissionEndpointStateMachineArn"
INTAKE_OUTPUT = "IntakeStateMachineArn"
_MAX_LISTED_PAGES = 20  # executions listed per state machine when looking a request up: 20,000


class StackNotFound(Exception):
    """The stack, or the output we need from it, does not exist."""


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        message = error.response["Error"].get("Message", "not found")
        raise StackNotFound(
            f"{message}; deploy it (docs/deploying.md), start the local cloud with `cvpn local up`, "
            "or name yours with --stack-name"
        ) from error
    return {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}


def execution_name(request_id: str, source: str = "cli") -> str:
    """A Step Functions execution name from the source and ticket key: retries never provision twice.

    Names allow ``[A-Za-z0-9_-]`` and at most 80 characters; other characters become ``-``.
    """
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", f"{source}-{request_id}")
    return cleaned[:80]


def retry_name(request_id: str, attempt: int) -> str:
    """The execution name of the ``attempt``-th run (2, 3, ...) of a request started with --retry:
    ``cli-retry<N>-<request id>``, so every run of a request ends with ``-<request id>``."""
    return execution_name(request_id, f"cli-retry{attempt}")


def request_executions(sfn: Any, state_machine_arn: str, request_id: str) -> list[dict[str, Any]]:
    """Every execution of ``state_machine_arn`` for ``request_id``, newest first: named
    ``<source>-<request id>`` by the command line (``cli``, ``cli-retry<N>``) or by the intake (the
    ticket system's source name). A name that only looks alike (its input names another request) is
    left out."""
    suffix = "-" + execution_name(request_id, "x")[2:]
    found: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(_MAX_LISTED_PAGES):
        page = sfn.list_executions(
            stateMachineArn=state_machine_arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        found.extend(e for e in page["executions"] if str(e["name"]).endswith(suffix))
        token = page.get("nextToken")
        if not token:
            break
    mine = [e for e in found if _input_request_id(sfn, e["executionArn"]) in (request_id, None)]
    return sorted(mine, key=lambda e: e["startDate"], reverse=True)


def _input_request_id(sfn: Any, execution_arn: str) -> str | None:
    described = sfn.describe_execution(executionArn=execution_arn)
    try:
        request_id = json.loads(described.get("input") or "{}")["request"]["request_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return str(request_id)


def start_provisioning(
    sfn: Any, state_machine_arn: str, request: dict[str, Any], *, source: str = "cli", name: str | None = None
) -> str:
    """Start (or find) the execution for ``request`` (named ``name``, else after the source and
    request id); returns its ARN.

    StartExecution is idempotent by name while the execution runs with the same input. A closed
    execution of the same name is returned as is (ExecutionAlreadyExists), so nothing provisions twice.
    """
    name = name or execution_name(str(request.get("request_id", "")), source)
    payload = json.dumps({"request": request}, sort_keys=True)
    try:
        return str(
            sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)["executionArn"]
        )
    except sfn.exceptions.ExecutionAlreadyExists:
        arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        sfn.describe_execution(executionArn=arn)
        return arn


@dataclass
class ExecutionProgress:
    """What happened so far in one execution, from its history."""

    execution_arn: str
    status: str = "RUNNING"
    steps: list[str] = field(default_factory=list)
    output: Any = None
    error: str | None = None
    cause: str | None = None
    state_transitions: int = 0


def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events


def describe_progress(sfn: Any, execution_arn: str) -> ExecutionProgress:
    described = sfn.describe_execution(executionArn=execution_arn)
    progress = ExecutionProgress(execution_arn=execution_arn, status=described["status"])
    for event in _history(sfn, execution_arn):
        details = event.get("stateEnteredEventDetails")
        if details:
            progress.steps.append(details["name"])
    progress.state_transitions = len(progress.steps)
    if described.get("output"):
        progress.output = json.loads(described["output"])
    progress.error = described.get("error")
    progress.cause = described.get("cause")
    return progress


def follow_execution(
    sfn: Any,
    execution_arn: str,
    *,
    on_step: Callable[[str], None] | None = None,
    poll_seconds: float = 1.0,
    timeout_seconds: float = 3600.0,
) -> ExecutionProgress:
    """Poll the execution until it ends, calling ``on_step`` for each state entered, in order."""
    deadline = time.monotonic() + timeout_seconds
    shown = 0
    while True:
        progress = describe_progress(sfn, execution_arn)
        if on_step is not None:
            for step in progress.steps[shown:]:
                on_step(step)
        shown = len(progress.steps)
        if progress.status != "RUNNING":
            return progress
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still running after {timeout_seconds:g} s")
        time.sleep(poll_seconds)


def find_configuration(output: Any) -> dict[str, str] | None:
    """Where a finished provisioning stored the client configuration (``{"bucket", "key"}``), found
    anywhere in an execution's output: the provisioning's own, or an intake's that holds it."""
    if isinstance(output, dict):
        stored = output.get("client_configuration")
        if isinstance(stored, dict) and isinstance(stored.get("bucket"), str) and stored.get("key"):
            return {"bucket": stored["bucket"], "key": str(stored["key"])}
        values: list[Any] = list(output.values())
    elif isinstance(output, list):
        values = output
    else:
        return None
    for value in values:
        found = find_configuration(value)
        if found:
            return found
    return None


def configuration_link(
    s3: Any, output: Any, *, ttl_seconds: int = CONFIGURATION_LINK_SECONDS
) -> tuple[str, str] | None:
    """A fresh presigned link to the client configuration a provisioning stored, and the key it reads.

    The link is signed with the caller's own credentials (``s3`` must sign with Signature Version 4:
    S3 refuses others for objects encrypted with KMS), so only someone allowed to read the object can
    make one. None when the output names no stored configuration.
    """
    stored = find_configuration(output)
    if stored is None:
        return None
    filename = stored["key"].rsplit("/", 1)[-1]
    url = s3.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": stored["bucket"],
            "Key": stored["key"],
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
        },
        ExpiresIn=ttl_seconds,
    )
    return str(url), stored["key"]
