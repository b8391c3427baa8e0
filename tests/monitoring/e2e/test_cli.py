"""`cvpn findings` and `cvpn connections` against the stack deployed on the local cloud, as an operator
runs them (found by --stack-name through CloudFormation, reached with --endpoint-url)."""

from __future__ import annotations

import json
import time

import pytest

from cvpn.cli import main
from cvpn.monitoring_demo import LocalMonitoring, wait_for


def aws(monitoring: LocalMonitoring) -> list[str]:
    return [
        "--stack-name",
        monitoring.stack.stack_name,
        "--endpoint-url",
        monitoring.cloud.endpoint_url,
        "--region",
        monitoring.cloud.region,
    ]


def test_findings_lists_what_the_alert_delivery_recorded(
    monitoring: LocalMonitoring, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a spray from 192.0.2.77 detected and delivered, when `cvpn findings --since 1h` runs, then
    the table and the JSON both show the finding; with `--since 1s` a moment later it is too old."""
    for user in ("henry", "irene", "jack", "kate", "liam", "mona"):
        monitoring.connect(user, "192.0.2.77", fail="Authentication failed")
    monitoring.run_ingest()
    wait_for(
        "the finding in the findings table",
        lambda: [f for f in monitoring.findings_recorded() if f["entity"].get("device_ip") == "192.0.2.77"],
        timeout=60,
    )

    assert main(["findings", "--since", "1h", *aws(monitoring)]) == 0
    table = capsys.readouterr().out
    assert "192.0.2.77" in table and "HIGH" in table and "R4" in table

    assert main(["findings", "--since", "1h", "--json", *aws(monitoring)]) == 0
    findings = json.loads(capsys.readouterr().out)
    spray = [f for f in findings if f["entity"]["device_ip"] == "192.0.2.77" and f["rule_id"] == "R4"]
    assert spray and spray[0]["endpoint_id"] == monitoring.endpoint_id

    time.sleep(2.1)
    assert main(["findings", "--since", "1s", "--json", *aws(monitoring)]) == 0
    assert not [f for f in json.loads(capsys.readouterr().out) if f["entity"]["device_ip"] == "192.0.2.77"]


def test_findings_on_a_stack_without_monitoring_output_is_a_clear_error(
    monitoring: LocalMonitoring, capsys: pytest.CaptureFixture[str]
) -> None:
    args = aws(monitoring)
    args[1] = "no-such-stack"
    assert main(["findings", *args]) == 2
    assert "--stack-name no-such-stack" in capsys.readouterr().err


def test_connections_shows_live_sessions_and_terminates_a_user(
    monitoring: LocalMonitoring, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given nina connected, when `cvpn connections ENDPOINT` runs, then she is listed active; with
    `--terminate nina` her session is cut and listed as terminated."""
    assert monitoring.connect("nina", "198.51.100.77").connected

    assert main(["connections", monitoring.endpoint_id, *aws(monitoring)]) == 0
    listing = capsys.readouterr().out
    line = next(line for line in listing.splitlines() if " nina " in line)
    assert "active" in line

    assert main(["connections", monitoring.endpoint_id, "--terminate", "nina", *aws(monitoring)]) == 0
    output = capsys.readouterr().out
    assert "terminated 1 connection(s) of nina" in output
    line = next(line for line in output.splitlines() if " nina " in line)
    assert "terminated" in line


def test_terminating_an_unknown_user_says_nothing_matched(
    monitoring: LocalMonitoring, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["connections", monitoring.endpoint_id, "--terminate", "nobody", *aws(monitoring)]) == 2
    assert "no live session of nobody" in capsys.readouterr().err


def test_connections_lists_the_failed_attempts_of_the_last_hour(
    monitoring: LocalMonitoring, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a refused attempt (it never becomes a connection), when `cvpn connections ENDPOINT` runs,
    then the attempt is listed from the connection log with its address and reason."""
    monitoring.connect("olga", "198.51.100.91", fail="Authentication failed")

    assert main(["connections", monitoring.endpoint_id, *aws(monitoring)]) == 0
    listing = capsys.readouterr().out
    assert "failed attempt(s) in the last hour (from the connection log)" in listing
    line = next(line for line in listing.splitlines() if " olga " in line)
    assert "198.51.100.91" in line and "Authentication failed" in line
