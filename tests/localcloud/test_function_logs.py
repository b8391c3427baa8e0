"""Function logs on the running local cloud, read back the way a user reads them on AWS.

A function deployed to the local cloud (as ``cvpn local up`` runs it) logs into the embedded CloudWatch
Logs: group ``/aws/lambda/<function name>``, one stream per worker named as Lambda names it, START,
the function's lines, END and REPORT, on the emulated clock. ``aws logs tail`` reads them with
FilterLogEvents, ``aws logs get-log-events`` with GetLogEvents.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from localcloud.cloud import LocalCloud
from tests.fixtures import FIXTURES

STREAM_NAME = re.compile(r"^(\d{4}/\d{2}/\d{2})/\[\$LATEST\][0-9a-f]{32}$")
THREE_DAYS = 3 * 86_400


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(time_scale=60.0) as running:
        # Days ahead of the real clock, where moto's own PutLogEvents would refuse the lines as too new.
        running.clock.advance(THREE_DAYS)
        yield running


@pytest.fixture(scope="module")
def role_arn(cloud: LocalCloud) -> str:
    return str(
        cloud.client("iam").create_role(
            RoleName="function-logs", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
        )["Role"]["Arn"]
    )


def _deploy(cloud: LocalCloud, role_arn: str, name: str, *, memory_mb: int = 128) -> None:
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.write(FIXTURES / "lambdaruntime" / "functions" / "app.py", "app.py")
    cloud.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role_arn,
        Handler="app.write_logs",
        Code={"ZipFile": package.getvalue()},
        Timeout=30,
        MemorySize=memory_mb,
    )


def _invoke(cloud: LocalCloud, name: str, event: dict[str, Any]) -> dict[str, Any]:
    response = cloud.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    assert "FunctionError" not in response
    answer: dict[str, Any] = json.loads(response["Payload"].read())
    return answer


def _tail(cloud: LocalCloud, group: str, request_ids: list[str], timeout: float = 30) -> list[dict[str, Any]]:
    """FilterLogEvents on the group (what ``aws logs tail`` calls) until each request's REPORT is in."""
    logs = cloud.client("logs")
    deadline = time.monotonic() + timeout
    while True:
        events: list[dict[str, Any]] = []
        try:
            pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
            events = [event for page in pages for event in page["events"]]
        except logs.exceptions.ResourceNotFoundException:
            pass
        reported = {e["message"].split("\t")[0].removeprefix("REPORT RequestId: ") for e in events}
        if set(request_ids) <= reported or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def test_function_logs_are_in_cloudwatch_logs_as_on_aws(cloud: LocalCloud, role_arn: str) -> None:
    """Given a deployed function whose log group the stack declared with a retention, when it is
    invoked, its lines are read back from /aws/lambda/<name> in a stream named as Lambda names it
    (the emulated date), between START and END, followed by REPORT, timestamped on the emulated clock."""
    name = "logs-as-on-aws"
    group = f"/aws/lambda/{name}"
    logs = cloud.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.put_retention_policy(logGroupName=group, retentionInDays=30)
    _deploy(cloud, role_arn, name, memory_mb=256)
    before = cloud.clock.millis()

    answer = _invoke(
        cloud, name, {"stdout": ["checking endpoint cvpn-endpoint-1"], "warning": "quota almost reached"}
    )

    request_id = answer["request_id"]
    events = _tail(cloud, group, [request_id])
    after = cloud.clock.millis()
    stream = answer["log_stream_name"]
    match = STREAM_NAME.match(stream)
    assert match and match.group(1) == datetime.fromtimestamp(before / 1000, tz=UTC).strftime("%Y/%m/%d")
    assert {event["logStreamName"] for event in events} == {stream}
    messages = [event["message"] for event in events]
    assert messages[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert messages[1] == "checking endpoint cvpn-endpoint-1"
    assert re.match(rf"^\[WARNING\]\t\S+Z\t{request_id}\tquota almost reached$", messages[2])
    assert messages[3] == f"END RequestId: {request_id}"
    assert re.match(
        rf"^REPORT RequestId: {request_id}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms"
        r"\tMemory Size: 256 MB\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d\d ms$",
        messages[4],
    )
    assert all(before <= event["timestamp"] <= after for event in events)
    streamed = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert [event["message"] for event in streamed] == messages
    [declared] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert declared["retentionInDays"] == 30


def test_two_concurrent_workers_write_two_streams(cloud: LocalCloud, role_arn: str) -> None:
    """Two invocations at once run in two workers, each logging to its own stream; the log group,
    which nothing declared, is created; a later warm invocation logs to one of them without Init
    Duration."""
    name = "logs-two-workers"
    group = f"/aws/lambda/{name}"
    _deploy(cloud, role_arn, name)
    answers: list[dict[str, Any]] = []

    def invoke(index: int) -> None:
        answers.append(_invoke(cloud, name, {"stdout": [f"worker call {index}"], "seconds": 1}))

    threads = [threading.Thread(target=invoke, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    warm = _invoke(cloud, name, {"stdout": ["warm call"]})

    events = _tail(cloud, group, [answer["request_id"] for answer in [*answers, warm]])
    streams = {answer["log_stream_name"] for answer in answers}
    assert len(streams) == 2 and all(STREAM_NAME.match(stream) for stream in streams)
    assert {event["logStreamName"] for event in events} == streams
    for answer in answers:
        request_id = answer["request_id"]
        own = [e["message"] for e in events if e["logStreamName"] == answer["log_stream_name"]]
        assert own[:2] == [f"START RequestId: {request_id} Version: $LATEST", own[1]]
        assert own[1].startswith("worker call ")
        assert own[2] == f"END RequestId: {request_id}"
        assert own[3].startswith(f"REPORT RequestId: {request_id}\t") and "\tInit Duration: " in own[3]
    assert warm["log_stream_name"] in streams
    [warm_report] = [
        e["message"] for e in events if e["message"].startswith(f"REPORT RequestId: {warm['request_id']}")
    ]
    assert "Init Duration" not in warm_report
    assert (
        cloud.client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["logGroupName"]
        == group
    )


def test_a_deleted_log_group_is_created_again(cloud: LocalCloud, role_arn: str) -> None:
    """Deleting the function's log group breaks nothing: the next invocation's lines create it again."""
    name = "logs-deleted-group"
    group = f"/aws/lambda/{name}"
    _deploy(cloud, role_arn, name)
    first = _invoke(cloud, name, {"stdout": ["before the deletion"]})
    _tail(cloud, group, [first["request_id"]])
    cloud.client("logs").delete_log_group(logGroupName=group)

    second = _invoke(cloud, name, {"stdout": ["after the deletion"]})

    messages = [event["message"] for event in _tail(cloud, group, [second["request_id"]])]
    assert "after the deletion" in messages and "before the deletion" not in messages
    assert messages[-1].startswith(f"REPORT RequestId: {second['request_id']}\t")
