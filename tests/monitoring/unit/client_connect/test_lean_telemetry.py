"""The client-connect handler's log lines and metrics read as Powertools' do: the same keys in the
same order with the same values (the time and the source line apart), the same EMF document, so the
README's log queries and the alarms on its metrics see no difference."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import logger as powertools_logger

from cvpn_shared.core.lean_telemetry import EmfMetrics, JsonLogger
from tests.fixtures.handlers import LambdaContext

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def handler_with(logger: Any, metrics: Any) -> Callable[[dict[str, Any], Any], str]:
    @logger.inject_lambda_context
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> str:
        if event.get("refuse"):
            logger.warning(
                "connection refused", extra={"endpoint_id": "cvpn-endpoint-1", "blocked": ["user#ann"]}
            )
            metrics.add_metric(name="ConnectionsRefused", unit="Count", value=1)
        else:
            logger.error(
                "blocklist unreadable: connection allowed (fail open)", extra={"error": "Throttled: é ✓"}
            )
            metrics.add_metric(name="BlocklistUnavailable", unit="Count", value=1)
            metrics.add_metric(name="ConnectionsAllowed", unit="Count", value=1)
        logger.info("answered")
        logger.debug("not shown at INFO")
        return "done"

    return handler


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def comparable(line: dict[str, Any]) -> dict[str, Any]:
    if "_aws" in line:
        return {**line, "_aws": {**line["_aws"], "Timestamp": 0}}
    return {**line, "timestamp": "-", "location": line["location"].split(":")[0]}


@pytest.mark.parametrize("trace", [TRACE, ""], ids=["traced", "untraced"])
def test_the_lines_are_powertools_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], trace: str
) -> None:
    """Given the template's Powertools settings, when the same handler runs twice (a cold start,
    then a warm one) with Powertools and with the lean writers, then every line matches."""
    # Powertools keeps one logger per service name, bound to the stdout of its first test, and one
    # cold-start flag per process: a fresh name and flag for each run.
    service = f"cvpn-autopilot-{'traced' if trace else 'untraced'}"
    monkeypatch.setattr(powertools_logger, "is_cold_start", True)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", service)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ClientVpnAutopilot")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
    if trace:
        monkeypatch.setenv("_X_AMZN_TRACE_ID", trace)
    else:
        monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    context = LambdaContext("AWSClientVPN-stack", aws_request_id="req-7")
    outputs = []
    for logger, metrics in (
        (Logger(service=service), Metrics(namespace="ClientVpnAutopilot")),
        (JsonLogger(), EmfMetrics()),
    ):
        handler = handler_with(logger, metrics)
        capsys.readouterr()
        handler({"refuse": True}, context)
        handler({}, context)
        outputs.append(lines(capsys.readouterr().out))
    powertools, lean = outputs

    assert [comparable(line) for line in lean] == [comparable(line) for line in powertools]
    assert [list(line) for line in lean] == [list(line) for line in powertools]  # key order too
    assert len(lean) == 6 and lean[0]["cold_start"] is True and lean[3]["cold_start"] is False
    assert all(
        re.fullmatch(
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\+0000",
            line.get("timestamp", "2000-01-01 00:00:00,000+0000"),
        )
        for line in lean
    )
    assert lean[0]["location"].startswith("handler:")
    assert ("xray_trace_id" in lean[0]) is bool(trace)


def test_a_higher_log_level_hides_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "ERROR")
    written: list[str] = []
    logger = JsonLogger(write=written.append)
    logger.warning("hidden")
    logger.error("shown")
    assert [json.loads(line)["message"] for line in written] == ["shown"]


def test_metrics_are_written_when_the_handler_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ClientVpnAutopilot")
    written: list[str] = []
    metrics = EmfMetrics(write=written.append)

    @metrics.log_metrics
    def handler(event: Any, context: Any) -> None:
        metrics.add_metric(name="MalformedRequests", unit="Count", value=1)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        handler({}, None)
    assert json.loads(written[0])["MalformedRequests"] == [1.0]
    handler_without_metrics = metrics.log_metrics(lambda event, context: None)
    handler_without_metrics({}, None)
    assert len(written) == 1
