"""The link to a client configuration is made when a person asks for it, and goes nowhere else.

A presigned link is a bearer credential: anyone holding it downloads the configuration while it
lasts. The provisioning keeps only where the configuration is stored (bucket and key); a reader of the
execution history, its output, the notification topic or the functions' logs learns no link.
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from cvpn.cli import main
from tests.provisioning.workflow.harness import NotificationInbox, Provisioning

# What every S3 presigned link carries: SigV4 (X-Amz-Signature) or SigV2 (Signature=, AWSAccessKeyId=).
SIGNED_LINK = re.compile(r"X-Amz-Signature|X-Amz-Credential|AWSAccessKeyId=|[?&]Signature=", re.IGNORECASE)


def _history(product: Provisioning, execution_arn: str) -> list[dict[str, Any]]:
    sfn = product.cloud.client("stepfunctions")
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


def _function_log_lines(product: Provisioning) -> list[str]:
    logs = product.cloud.client("logs")
    lines: list[str] = []
    for group in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]:
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group["logGroupName"]):
            lines.extend(event["message"] for event in page["events"])
    return lines


def test_no_link_to_the_configuration_travels_with_the_workflow(
    product: Provisioning, inbox: NotificationInbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a provisioning that succeeds, no presigned link appears in its execution history, its
    output or DescribeExecution, the notification about it, or any function's log; the output names
    the stored object; and `cvpn status` makes a link, signed with the caller's credentials, that
    downloads the endpoint's configuration."""
    request = product.request()

    progress = product.provision(request)

    assert progress.status == "SUCCEEDED", (progress.error, progress.cause)
    described = product.cloud.client("stepfunctions").describe_execution(executionArn=progress.execution_arn)
    seen = {
        "history": json.dumps(_history(product, progress.execution_arn), default=str),
        "execution": json.dumps(described, default=str),
        "notifications": json.dumps(inbox.notifications_for(request["request_id"])),
        "function logs": "\n".join(_function_log_lines(product)),
    }
    assert request["request_id"] in seen["notifications"]  # the notification did arrive
    for place, text in seen.items():
        assert not SIGNED_LINK.search(text), f"a presigned link in the {place}"
    stored = progress.output["result"]["client_configuration"]
    endpoint_id = progress.output["result"]["endpoint_id"]
    assert stored["key"] == f"client-configurations/{request['request_id']}/{endpoint_id}.ovpn"
    assert json.loads(json.loads(seen["notifications"])[0]["Message"])["client_configuration"] == stored

    capsys.readouterr()
    exit_code = main(["status", progress.execution_arn, "--endpoint-url", product.cloud.endpoint_url,
                      "--region", product.cloud.region])  # fmt: skip
    printed = capsys.readouterr().out
    assert exit_code == 0, printed
    [link] = re.findall(r"^(https?://\S+X-Amz-Signature=\S+)$", printed, re.MULTILINE)
    with urllib.request.urlopen(link, timeout=10) as response:
        assert f"remote {endpoint_id}.prod.clientvpn" in response.read().decode()
