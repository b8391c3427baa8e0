"""A worker's log as Lambda writes it (lines, START/END/REPORT) and its way into CloudWatch Logs."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.clock import get_clock
from localcloud.lambdaruntime import (
    CloudWatchLogsWriter,
    FunctionSpec,
    LambdaRuntime,
    LogEvent,
    cloudwatch_logs,
)

MakeFunction = Callable[..., FunctionSpec]
STREAM_NAME = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")
WRITER_REGION = "us-east-1"


class RecordingSink:
    """A log sink that keeps every event by stream, in the order the runtime hands them over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.streams: dict[str, list[LogEvent]] = {}

    def __call__(self, spec: FunctionSpec, stream: str, events: list[LogEvent]) -> None:
        with self._lock:
            self.streams.setdefault(stream, []).extend(events)

    def messages(self, stream: str) -> list[str]:
        with self._lock:
            return [event.message for event in self.streams.get(stream, [])]


@pytest.fixture
def sink(runtime: LambdaRuntime) -> Iterator[RecordingSink]:
    recording = RecordingSink()
    runtime.log_sink = recording
    yield recording
    runtime.log_sink = None


def _invoke(runtime: LambdaRuntime, spec: FunctionSpec, event: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    result = runtime.invoke(spec.function_name, json.dumps(event).encode())
    return result, json.loads(result.payload)


def _stream_of(sink: RecordingSink, request_id: str) -> str:
    [stream] = [
        name for name in sink.streams if any(request_id in message for message in sink.messages(name))
    ]
    return stream


def _report_fields(line: str) -> dict[str, str]:
    name, *fields = line.split("\t")
    assert name.startswith("REPORT RequestId: ")
    return dict(field.split(": ", 1) for field in fields)


def test_each_line_is_an_event_between_start_and_end(
    make_function: MakeFunction, runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    """Given a handler writing to stdout, stderr and the logging module, the worker's stream holds
    START, each line as its own event in the order written, END and REPORT, timestamped on the
    emulated clock within the invocation; the stream is the one the handler's context names."""
    spec = make_function("app.write_logs", memory_mb=256)
    before = get_clock().millis()

    result, answer = _invoke(
        runtime,
        spec,
        {"stdout": ["first line", "second line"], "stderr": ["on stderr"], "warning": "careful"},
    )

    after = get_clock().millis()
    stream = answer["log_stream_name"]
    assert STREAM_NAME.match(stream)
    assert answer["log_group_name"] == f"/aws/lambda/{spec.function_name}"
    events = sink.streams[stream]
    messages = [event.message for event in events]
    request_id = result.request_id
    assert messages[:4] == [
        f"START RequestId: {request_id} Version: $LATEST",
        "first line",
        "second line",
        "on stderr",
    ]
    assert re.match(rf"^\[WARNING\]\t\S+Z\t{request_id}\tcareful$", messages[4])
    assert messages[5] == f"END RequestId: {request_id}"
    assert messages[6].startswith(f"REPORT RequestId: {request_id}\t")
    assert len(messages) == 7
    timestamps = [event.timestamp for event in events]
    assert timestamps == sorted(timestamps)
    assert before <= timestamps[0] and timestamps[-1] <= after


def test_report_line_has_lambdas_fields_and_init_duration_on_a_cold_start(
    make_function: MakeFunction, runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    """REPORT gives Duration, Billed Duration (the init phase included, in whole milliseconds), Memory
    Size, Max Memory Used, and Init Duration on the cold start only."""
    spec = make_function("app.write_logs", memory_mb=512)

    cold, answer = _invoke(runtime, spec, {})
    warm, _ = _invoke(runtime, spec, {})

    cold_report, warm_report = (
        next(m for m in sink.messages(answer["log_stream_name"]) if m.startswith(f"REPORT RequestId: {r}"))
        for r in (cold.request_id, warm.request_id)
    )
    assert re.match(
        r"^REPORT RequestId: \S+\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: 512 MB"
        r"\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d\d ms$",
        cold_report,
    )
    cold_fields, warm_fields = _report_fields(cold_report), _report_fields(warm_report)
    duration, init = (float(cold_fields[key].removesuffix(" ms")) for key in ("Duration", "Init Duration"))
    assert int(cold_fields["Billed Duration"].removesuffix(" ms")) == max(1, math.ceil(duration + init))
    assert "Init Duration" not in warm_fields
    assert int(warm_fields["Billed Duration"].removesuffix(" ms")) == max(
        1, math.ceil(float(warm_fields["Duration"].removesuffix(" ms")))
    )
    assert 5 < int(warm_fields["Max Memory Used"].removesuffix(" MB")) < 512


def test_init_output_comes_before_start_and_stays_out_of_the_log_tail(
    make_function: MakeFunction, runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    """What the module prints while it is imported is logged before START, as Lambda's init phase."""
    spec = make_function("noisy_init.handler")

    result = runtime.invoke(spec.function_name, b"{}")

    messages = sink.messages(_stream_of(sink, result.request_id))
    assert messages[:3] == [
        "noisy_init: loading configuration",
        f"START RequestId: {result.request_id} Version: $LATEST",
        "noisy_init: handling",
    ]
    assert result.log_tail.startswith(f"START RequestId: {result.request_id}")
    assert "loading configuration" not in result.log_tail


def test_an_unhandled_error_is_one_event_with_its_stack_trace(
    make_function: MakeFunction, runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    """The runtime's report of an unhandled exception is one multi-line event, as Lambda shows it."""
    spec = make_function("app.fail_association")

    result = runtime.invoke(spec.function_name, b'{"subnet_id": "subnet-9"}')

    stream = _stream_of(sink, result.request_id)
    [error] = [m for m in sink.messages(stream) if m.startswith("[ERROR] AssociationFailed")]
    assert error.startswith("[ERROR] AssociationFailed: subnet subnet-9 is already associated\n")
    assert "\nTraceback (most recent call last):\n" in error
    assert result.request_id in sink.messages(stream)[-1]


def test_an_unfinished_last_line_is_logged_before_end(
    make_function: MakeFunction, runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    """Output without a final newline is still a line of the invocation, before its END."""
    spec = make_function("app.write_logs")

    result, answer = _invoke(runtime, spec, {"raw": "progress: 3/3"})

    messages = sink.messages(answer["log_stream_name"])
    assert messages[-3:-1] == ["progress: 3/3", f"END RequestId: {result.request_id}"]


def test_a_timeout_is_reported_with_status_timeout(
    make_function: MakeFunction, runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    """A timed-out invocation logs Lambda's timeout line, END, and a REPORT ending in Status: timeout."""
    spec = make_function("app.write_logs", timeout_seconds=1)

    result = runtime.invoke(spec.function_name, json.dumps({"stdout": ["working"], "seconds": 5}).encode())

    messages = sink.messages(_stream_of(sink, result.request_id))
    assert messages[1] == "working"
    assert re.match(rf"^\S+Z {result.request_id} Task timed out after 1\.00 seconds$", messages[2])
    assert messages[3] == f"END RequestId: {result.request_id}"
    assert messages[4].endswith("\tStatus: timeout")
    assert "Max Memory Used: " in messages[4]


# -- the CloudWatch Logs writer ---------------------------------------------------------------------


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("logs", region_name=WRITER_REGION)


@pytest.fixture
def writer() -> Iterator[CloudWatchLogsWriter]:
    running = CloudWatchLogsWriter(flush_interval_seconds=0.05)
    yield running
    running.close()


def _spec(name: str) -> FunctionSpec:
    return FunctionSpec(
        function_name=name,
        function_arn=f"arn:aws:lambda:{WRITER_REGION}:123456789012:function:{name}",
        handler="app.handler",
        code_dir=Path("."),
    )


def _messages(logs: Any, group: str, stream: str) -> list[str]:
    return [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]]


def test_writer_keeps_a_declared_group_and_creates_a_missing_one(
    logs: Any, writer: CloudWatchLogsWriter
) -> None:
    """A group the stack declared keeps its retention; a function without one gets a new group."""
    logs.create_log_group(logGroupName="/aws/lambda/declared")
    logs.put_retention_policy(logGroupName="/aws/lambda/declared", retentionInDays=30)
    stream = "2031/05/04/[$LATEST]" + "ab" * 16
    far_ahead = int(time.time() * 1000) + 3 * 86_400_000  # an emulated clock days ahead of the real one

    writer(_spec("declared"), stream, [LogEvent(far_ahead, "in a declared group")])
    writer(_spec("undeclared"), stream, [LogEvent(far_ahead, "in a new group"), LogEvent(far_ahead, "")])
    assert writer.flush()

    groups = {
        g["logGroupName"]: g for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
    }
    assert groups["/aws/lambda/declared"]["retentionInDays"] == 30
    assert "retentionInDays" not in groups["/aws/lambda/undeclared"]
    assert _messages(logs, "/aws/lambda/declared", stream) == ["in a declared group"]
    assert _messages(logs, "/aws/lambda/undeclared", stream) == ["in a new group"]


def test_writer_creates_a_deleted_group_again(logs: Any, writer: CloudWatchLogsWriter) -> None:
    """Deleting the function's log group loses what it held; the next lines create it again."""
    spec, stream = _spec("deleted"), "2031/05/04/[$LATEST]" + "cd" * 16
    now = int(time.time() * 1000)
    writer(spec, stream, [LogEvent(now, "before")])
    assert writer.flush()
    logs.delete_log_group(logGroupName="/aws/lambda/deleted")

    writer(spec, stream, [LogEvent(now + 1, "after")])
    assert writer.flush()

    assert _messages(logs, "/aws/lambda/deleted", stream) == ["after"]


def test_writer_drops_the_oldest_lines_beyond_its_bound(logs: Any) -> None:
    """Lines waiting to be written are bounded: the oldest go first, and are counted."""
    bounded = CloudWatchLogsWriter(max_buffered_events=4, flush_interval_seconds=60)
    try:
        spec, stream = _spec("bounded"), "2031/05/04/[$LATEST]" + "ef" * 16
        now = int(time.time() * 1000)
        for batch in range(3):
            bounded(spec, stream, [LogEvent(now + batch, f"batch {batch} line {line}") for line in range(2)])
        assert bounded.dropped_events == 2
        assert bounded.flush()
        assert _messages(logs, "/aws/lambda/bounded", stream) == [
            "batch 1 line 0",
            "batch 1 line 1",
            "batch 2 line 0",
            "batch 2 line 1",
        ]
    finally:
        bounded.close()


def test_invocations_do_not_wait_for_cloudwatch_logs(
    make_function: MakeFunction, runtime: LambdaRuntime, logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While CloudWatch Logs cannot be written, invocations still complete; their lines follow."""
    blocked = threading.Event()
    release = threading.Event()
    put = cloudwatch_logs._put

    def stuck_put(*args: Any) -> None:
        blocked.set()
        release.wait(30)
        put(*args)

    monkeypatch.setattr(cloudwatch_logs, "_put", stuck_put)
    writer = CloudWatchLogsWriter(flush_interval_seconds=0)
    runtime.log_sink = writer
    try:
        spec = make_function("app.write_logs")
        answers = []
        for index in range(3):
            result, answer = _invoke(runtime, spec, {"stdout": [f"invocation {index}"]})
            assert result.function_error is None
            answers.append(answer)
        assert blocked.is_set() and not release.is_set()
        release.set()
        assert writer.flush()
    finally:
        release.set()
        runtime.log_sink = None
        writer.close()

    function_logs = boto3.client("logs", region_name=spec.region)
    messages = _messages(function_logs, spec.log_group_name, answers[0]["log_stream_name"])
    assert [m for m in messages if m.startswith("invocation")] == [
        "invocation 0",
        "invocation 1",
        "invocation 2",
    ]
