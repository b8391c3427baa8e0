"""The product as a user drives it from a shell: `cvpn local up`, then `cvpn provision --wait`,
`cvpn status` and `cvpn decommission` against it, each a separate process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from localcloud.cloud import free_port
from tests.fixtures import REPO_ROOT
from tests.fixtures.local_up import read_banner

ROOT = REPO_ROOT
CVPN = [sys.executable, "-m", "cvpn.cli"]
# Waits pass 1200 times faster; the ingest (every emulated minute by default, twenty times a real
# second here) and the revocation-list refresh (hourly) run weekly instead, so they leave the cores to
# the workflows under test.
FAST = [
    "--time-scale",
    "1200",
    "--parameter-overrides",
    "IngestSchedule='rate(7 days)' RevocationListRefreshSchedule='rate(7 days)'",
]


@pytest.fixture(scope="module")
def local_cloud_process() -> Iterator[str]:
    """`cvpn local up` in its own process, serving template.yaml until it is interrupted."""
    port, api_port = free_port(), free_port()
    process = subprocess.Popen(
        [*CVPN, "local", "up", "--port", str(port), "--api-port", str(api_port), *FAST],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    text = read_banner(process, timeout=90)
    assert f"AWS endpoint   http://127.0.0.1:{port}" in text, text
    assert "ProvisionEndpointStateMachineArn" in text, text
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert process.returncode == 0


def _cvpn(*args: str, endpoint: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CVPN, *args, "--endpoint-url", endpoint, "--region", "us-east-1", "--poll", "0.2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )


def test_provision_status_and_decommission_from_the_shell(local_cloud_process: str, tmp_path: Path) -> None:
    """Given a local cloud serving the product and its example network, when a user runs `cvpn provision
    request.json --wait`, the live progress names each step and ends SUCCEEDED with the endpoint;
    `cvpn status` shows the same, and `cvpn decommission --wait` removes the endpoint."""
    endpoint = local_cloud_process

    def client(service: str) -> object:
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")  # type: ignore[call-overload]

    # `cvpn local up` built the network the example requests name: only the request id changes.
    request = json.loads((ROOT / "events" / "requests" / "seed-active-directory.json").read_text())
    request.update(request_id="NET-E2E-1")
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(request))

    provisioned = _cvpn("provision", str(request_file), "--wait", endpoint=endpoint)
    assert provisioned.returncode == 0, provisioned.stderr + provisioned.stdout
    for step in (
        "-> ValidateRequest",
        "-> CreateEndpoint",
        "-> WaitForAssociations",
        "-> ExportConfiguration",
    ):
        assert step in provisioned.stdout
    assert "SUCCEEDED" in provisioned.stdout
    output, end = json.JSONDecoder().raw_decode(provisioned.stdout, provisioned.stdout.index("{"))
    endpoint_id = output["result"]["endpoint_id"]
    # then a fresh link to the stored configuration, made by the command with the caller's credentials
    link = provisioned.stdout[end:].split()[-1]
    assert "X-Amz-Signature=" in link and "X-Amz-Signature" not in json.dumps(output)
    with urllib.request.urlopen(link, timeout=30) as download:
        assert f"remote {endpoint_id}." in download.read().decode()

    status = _cvpn("status", "NET-E2E-1", endpoint=endpoint)
    assert status.returncode == 0, status.stderr
    assert endpoint_id in status.stdout

    decommissioned = _cvpn("decommission", "--request-id", "NET-E2E-1", "--wait", endpoint=endpoint)
    assert decommissioned.returncode == 0, decommissioned.stderr + decommissioned.stdout
    assert "-> TeardownStep" in decommissioned.stdout
    listed = client("ec2").describe_client_vpn_endpoints()["ClientVpnEndpoints"]  # type: ignore[attr-defined]
    assert all(e["Status"]["Code"] == "deleted" or e["ClientVpnEndpointId"] != endpoint_id for e in listed)


def test_bad_request_file_names_the_problem(local_cloud_process: str, tmp_path: Path) -> None:
    missing = _cvpn("provision", str(tmp_path / "nope.json"), endpoint=local_cloud_process)
    assert missing.returncode == 2
    assert "REQUEST: cannot read" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    answer = _cvpn("provision", str(broken), endpoint=local_cloud_process)
    assert answer.returncode == 2
    assert "is not JSON" in answer.stderr


def test_a_request_that_ran_is_not_replayed_and_retry_runs_it_again(
    local_cloud_process: str, tmp_path: Path
) -> None:
    """Given a request that failed (a subnet that does not exist), when the user provisions it again,
    then nothing starts: the answer says it already ran and ended FAILED, and how to try again; with
    the document fixed and --retry a new execution runs it to SUCCEEDED, and `cvpn status` shows that
    run, naming the earlier one."""
    endpoint = local_cloud_process
    request = json.loads((ROOT / "events" / "requests" / "mutual-tls.json").read_text())
    request.update(
        request_id="NET-E2E-RETRY", subnet_ids=["subnet-0a1b2c3d4e5f60001", "subnet-0fffffffffffffff0"]
    )
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(request))
    failed = _cvpn("provision", str(request_file), "--wait", endpoint=endpoint)
    assert failed.returncode == 1 and "FAILED" in failed.stdout, failed.stdout + failed.stderr

    again = _cvpn("provision", str(request_file), "--wait", endpoint=endpoint)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "request NET-E2E-RETRY already ran" in again.stdout and "ended FAILED" in again.stdout
    assert f"cvpn provision {request_file} --retry --wait --endpoint-url {endpoint}" in again.stdout
    assert "-> ValidateRequest" not in again.stdout  # no replay of the old run

    request["subnet_ids"] = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
    request_file.write_text(json.dumps(request))
    changed = _cvpn("provision", str(request_file), endpoint=endpoint)
    assert changed.returncode == 1 and "with another document" in changed.stdout
    retried = _cvpn("provision", str(request_file), "--retry", "--wait", endpoint=endpoint)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert ":cli-retry2-NET-E2E-RETRY" in retried.stdout and "SUCCEEDED" in retried.stdout

    status = _cvpn("status", "NET-E2E-RETRY", endpoint=endpoint)
    assert status.returncode == 0, status.stderr
    assert "request NET-E2E-RETRY: cli-retry2-NET-E2E-RETRY" in status.stdout
    assert "earlier runs: cli-NET-E2E-RETRY FAILED" in status.stdout
    gone = _cvpn("decommission", "--request-id", "NET-E2E-RETRY", "--wait", endpoint=endpoint)
    assert gone.returncode == 0, gone.stdout + gone.stderr


def test_status_of_an_unknown_request_or_stack_is_one_line(local_cloud_process: str) -> None:
    unknown = _cvpn("status", "NET-NEVER-SEEN", endpoint=local_cloud_process)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("cvpn: error: ID: no execution for request NET-NEVER-SEEN")
    missing = _cvpn("status", "NET-1", "--stack-name", "no-such-stack", endpoint=local_cloud_process)
    assert missing.returncode == 2
    assert missing.stderr.startswith("cvpn: error: --stack-name no-such-stack: Stack with id no-such-stack")
    assert "cvpn local up" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
