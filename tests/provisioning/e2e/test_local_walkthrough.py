"""The README's local walk-through, followed as a newcomer follows it: a shell with an empty HOME and no
AWS variables, `cvpn local up` in the background (on free ports: later commands find it with --local
alone), every example request of events/requests provisioned and followed, every example webhook
submitted, findings and connections listed, everything decommissioned. Every step must exit 0.

Each step is a process of its own, as in a shell.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.cloud import free_port
from tests.fixtures import REPO_ROOT
from tests.fixtures.local_up import read_banner

CVPN = [sys.executable, "-m", "cvpn.cli"]
REQUESTS = sorted((REPO_ROOT / "events" / "requests").glob("*.json"))
WEBHOOKS = {
    "jira": ("jira-issue-updated.json", "NET-2001"),
    "servicenow": ("generic-servicenow.json", "RITM0012345"),
    "github": ("github-issues-labeled.json", "GH-42"),  # its source needs an approver: it waits
}
# Waits pass 300 times faster; the ingest (every emulated minute by default) runs hourly and the
# revocation-list refresh (hourly) weekly, so they do not take the machine's cores from the steps
# being followed.
FAST = [
    "--time-scale",
    "300",
    "--parameter-overrides",
    "IngestSchedule='rate(1 hour)' RevocationListRefreshSchedule='rate(7 days)'",
]
NO_AWS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
)


class Shell:
    """A newcomer's shell: empty HOME, no AWS variables, the checkout as working directory."""

    def __init__(self, home: Path) -> None:
        self.env = {
            key: value for key, value in os.environ.items() if key not in NO_AWS and key != "AWS_PROFILE"
        }
        self.env.update(HOME=str(home))
        for name in ("CVPN_LOCAL_STATE", "XDG_STATE_HOME", "CVPN_WEBHOOK_SECRET", "AWS_ENDPOINT_URL"):
            self.env.pop(name, None)
        self.transcript: list[str] = []

    def run(self, *args: str, timeout: float = 120) -> str:
        """Run `cvpn ARGS`; fail the test, showing what was run, unless it exits 0."""
        started = time.monotonic()
        answer = subprocess.run(
            [*CVPN, *args], cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        took = time.monotonic() - started
        self.transcript.append(f"$ cvpn {' '.join(args)}   ({took:.1f} s)\n{answer.stdout}{answer.stderr}")
        print(f"{took:5.1f} s  cvpn {' '.join(args)}")
        assert answer.returncode == 0, "\n".join(self.transcript[-3:])
        assert "Traceback" not in answer.stderr, answer.stderr
        return answer.stdout


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    """`cvpn local up` started in the background of a newcomer's shell, stopped with Ctrl-C at the end."""
    home = tmp_path_factory.mktemp("home")
    shell = Shell(home)
    process = subprocess.Popen(
        [
            *CVPN,
            "local",
            "up",
            "--port",
            str(free_port()),
            "--api-port",
            str(free_port()),
            *FAST,
        ],
        cwd=REPO_ROOT,
        env=shell.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner = read_banner(process, timeout=120)
    shell.transcript.append("$ cvpn local up ...\n" + banner)
    state = home / ".local" / "state" / "cvpn" / "local.json"
    try:
        assert "Ctrl-C to stop" in banner, banner
        assert state.is_file()
        yield shell
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0
    assert not state.exists(), "a clean shutdown removes the state file"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_readme_local_walkthrough_works_as_written(shell: Shell) -> None:
    banner = shell.transcript[0]
    # Only the local API URL, never the template's API Gateway placeholder.
    assert "execute-api" not in banner
    secret = re.search(r"signed with the local secret (\S+)", banner)
    assert secret is not None, banner

    network = shell.run("local", "network", "--local")
    for request_file in REQUESTS:
        request = json.loads(request_file.read_text())
        assert request["vpc_id"] in network
        assert all(subnet in network for subnet in request["subnet_ids"])

    # Provision every example request as written, one after the other as the README does.
    request_ids, endpoints = [], {}
    for request_file in REQUESTS:
        request_id = json.loads(request_file.read_text())["request_id"]
        request_ids.append(request_id)
        provisioned = shell.run("provision", str(request_file.relative_to(REPO_ROOT)), "--local", "--wait")
        assert "-> CreateEndpoint" in provisioned and "SUCCEEDED" in provisioned, provisioned
        status = shell.run("status", request_id, "--local")
        found = re.search(r'"endpoint_id": "(cvpn-endpoint-[0-9a-f]+)"', status)
        assert found is not None, status
        endpoints[request_id] = found.group(1)
    again = shell.run("provision", str(REQUESTS[0].relative_to(REPO_ROOT)), "--local")
    assert "already ran" in again and "--retry" in again

    endpoint_id = endpoints["NET-1042"]
    shell.run("local", "connect", endpoint_id, "--user", "alice")
    shell.run("local", "connect", endpoint_id, "--user", "mallory", "--fail", "Authentication failed")
    connections = shell.run("connections", endpoint_id, "--local")
    assert "alice" in connections and "mallory" in connections
    shell.run("findings", "--local")

    for request_id in request_ids:
        decommissioned = shell.run("decommission", "--request-id", request_id, "--local", "--wait")
        assert "SUCCEEDED" in decommissioned

    # The example webhooks, signed with the secret `cvpn local up` printed and gave their sources.
    for source, (delivery, ticket) in WEBHOOKS.items():
        # --local signs with the secret the local cloud keeps; the printed one works the same.
        signing = ["--local"] if source != "servicenow" else ["--secret", secret.group(1)]
        accepted = shell.run("request", "submit", f"events/webhooks/{delivery}", "--source", source, *signing)
        assert "HTTP 202" in accepted and ticket in accepted
        status = _follow(shell, ticket)
        if source == "github":
            assert "no provisioning started yet" in status
        else:
            assert "SUCCEEDED" in status, status
            shell.run("decommission", "--request-id", ticket, "--local", "--wait")


def _follow(shell: Shell, request_id: str, timeout: float = 120) -> str:
    """`cvpn status` until the provisioning of ``request_id`` ends (or it waits for an approver)."""
    deadline = time.monotonic() + timeout
    while True:
        status = shell.run("status", request_id, "--local")
        waiting = "no provisioning started yet" in status and "RequestApproval" in status
        if "RUNNING after" not in status or waiting or time.monotonic() > deadline:
            return status
        time.sleep(1)
