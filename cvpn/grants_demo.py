"""The demo's access chapter: access is granted per person on the shared endpoint, not built per ticket.

The endpoint the demo provisioned becomes the shared endpoint of a grants profile (``engineering``).
Alice asks for two hours of access on the request form (`POST /requests`, signed in): a pending grant,
nothing provisioned. The approvers get a signed link; opening it decides nothing, Grace (in the
profile's approver group) confirms it, and the grant becomes active. Alice connects; Bob, without a
grant, is refused with the reason and where to ask. The emulated clock then passes the grant's end:
its at() expiry schedule fires, the grant expires and Alice's live session is cut; a reconnect is
refused. `cvpn access list` shows the record an access review reads.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from cvpn.common import project_dir

__all__ = ["APPROVER_GROUP", "GRANTS_PROFILE", "run_grants_chapter"]

GRANTS_PROFILE = "engineering"
APPROVER_GROUP = "vpn-approvers"
ENGINEERING_GROUP = "S-1-5-21-1004336348-1177238915-682003330-512"
GRANT_HOURS = 2


def _profile_document(network: Any, request_id: str) -> dict[str, Any]:
    """The example grants profile (events/profiles/engineering.json) on the demo's network, naming the
    demo's provisioned request as its shared endpoint."""
    document: dict[str, Any] = json.loads(
        (project_dir() / "events" / "profiles" / "engineering.json").read_text()
    )
    document.update(
        vpc_id=network.vpc_id,
        subnet_ids=network.subnet_ids[:2],
        server_certificate_arn=network.server_certificate_arn,
        authentication=[{"type": "active-directory", "directory_id": network.directory_id}],
        security_group_ids=[network.security_group_id],
        connection_log={"enabled": True, "log_group_name": network.log_group_name, "retention_days": 90},
        access="grants",
        endpoint_request_id=request_id,
        default_grant_hours=GRANT_HOURS,
        max_grant_hours=12,
        approver_group=APPROVER_GROUP,
    )
    return document


def _cvpn(cloud: Any, stack: Any, *arguments: str) -> tuple[int, str, str]:
    """`cvpn access ...` against the local cloud, as an administrator runs it: (status, out, err)."""
    from cvpn import access_cli
    from cvpn.common import CliError, resolve_target

    parser = argparse.ArgumentParser(prog="cvpn")
    access_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "access", *arguments, "--local", "--endpoint-url", cloud.endpoint_url,
            "--region", cloud.region, "--stack-name", stack.stack_name,
        ]
    )  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            resolve_target(args)
            code = int(args.func(args))
        except CliError as error:
            print(f"cvpn: error: {error}", file=sys.stderr)
            code = 2
    return code, out.getvalue(), err.getvalue()


def _api(
    cloud: Any, method: str, path: str, token: str | None, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """A call to the intake's HTTP API through the local gateway: (status, JSON answer or text)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{cloud.api_url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw or b"{}")
    except ValueError:
        return status, raw.decode(errors="replace")


def _wait(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class _Inbox:
    """The approvers' inbox: an SQS queue subscribed to the approval requests topic."""

    def __init__(self, cloud: Any, topic_arn: str) -> None:
        self._sqs = cloud.client("sqs")
        self.url = self._sqs.create_queue(QueueName="demo-approvers-inbox")["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        cloud.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)

    def message_about(self, request_id: str, timeout: float = 60.0) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self._sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in answer.get("Messages", []):
                envelope = json.loads(message["Body"])
                attributes = envelope.get("MessageAttributes", {})
                if attributes.get("request_id", {}).get("Value") == request_id:
                    return str(envelope.get("Message", ""))
        return None


def run_grants_chapter(
    cloud: Any,
    stack: Any,
    network: Any,
    endpoint_id: str,
    request_id: str,
    *,
    connect: Callable[[str], Any],
    say: Callable[..., None],
) -> bool:
    """Ask, approve, connect, refuse, expire on the shared endpoint; True when each step did what it
    says. ``connect(user)`` is a client's login to the endpoint (the local cloud's simulated client)."""
    path = stack.outputs["ProfilesParameterPath"]
    cloud.client("ssm").put_parameter(
        Name=f"{path}/{GRANTS_PROFILE}",
        Type="String",
        Value=json.dumps(_profile_document(network, request_id)),
        Overwrite=True,
    )
    say(
        "access grants",
        f"profile {GRANTS_PROFILE} (access: grants) names {endpoint_id} as its shared endpoint: people"
        " ask for time-bound access to it; no endpoint is built per request",
    )
    inbox = _Inbox(cloud, stack.outputs["ApprovalRequestsTopicArn"])

    # A real clock for the hours of a grant: the clock moves only when the chapter moves it. The
    # ingest's every-minute schedule is paused meanwhile, so an expiry does not queue behind its runs.
    clock, scheduler, runtime = cloud.clock, cloud.scheduler, cloud.runtime
    scale = clock.time_scale
    clock.time_scale = 1.0
    if scheduler is not None:
        scheduler.remove_stack(stack.stack_name)
    if runtime is not None:
        runtime.wait_for_events(timeout=120)
    try:
        return _chapter(cloud, stack, endpoint_id, inbox, connect, say)
    finally:
        clock.time_scale = scale
        if scheduler is not None:
            scheduler.add_stack(stack)


def _chapter(
    cloud: Any,
    stack: Any,
    endpoint_id: str,
    inbox: _Inbox,
    connect: Callable[[str], Any],
    say: Callable[..., None],
) -> bool:
    ec2 = cloud.client("ec2")
    oidc = cloud.oidc
    alice = oidc.mint_token(
        "00u-alice", "alice@example.com", name="Alice", token_use="id", preferred_username="alice"
    )
    grace = oidc.mint_token(
        "00u-grace", "grace@example.com", name="Grace", token_use="id", groups=[APPROVER_GROUP]
    )
    form = {
        "profile": GRANTS_PROFILE,
        "access_groups": [ENGINEERING_GROUP],
        "justification": "INC-4711: database failover on the build farm",
        "hours": GRANT_HOURS,
    }
    status, answer = _api(cloud, "POST", "/requests", alice, form)
    if status != 202:
        say("access request FAILED", f"POST /requests -> HTTP {status} {answer}")
        return False
    grant_id, ask_id = answer["grant_id"], answer["request_id"]
    say(
        "Alice asks on the form",
        f"POST /requests -> HTTP {status}: grant {grant_id} pending, request {ask_id}",
    )

    message = inbox.message_about(ask_id)
    found = re.search(r"Approve: (\S+)", message or "")
    if found is None:
        say("approval FAILED", f"no approval link reached the approvers for {ask_id}")
        return False
    link = urllib.parse.urlsplit(found.group(1))
    page_path = f"{link.path}?{link.query}"
    status, _ = _api(cloud, "GET", page_path, None)
    say(
        "approvers notified",
        f"opening the signed link shows a confirm page (HTTP {status}); it decides nothing",
    )
    fields = dict(urllib.parse.parse_qsl(link.query))
    status, answer = _api(cloud, "POST", link.path, alice, fields)
    say("Alice confirms her own request", f"HTTP {status}: {_message(answer)}")
    status, answer = _api(cloud, "POST", link.path, grace, fields)
    if status != 200:
        say("approval FAILED", f"HTTP {status} {answer}")
        return False
    say("Grace (vpn-approvers) confirms", f"HTTP {status}: {_message(answer)}")

    def grant() -> dict[str, Any]:
        code, out, _ = _cvpn(cloud, stack, "list", "--user", "alice", "--json")
        rows = json.loads(out) if code == 0 else []
        return next((row for row in rows if row["grant_id"] == grant_id), {})

    if not _wait(lambda: grant().get("state") == "active"):
        say("activation FAILED", f"grant {grant()}")
        return False
    active = grant()
    say(
        "grant active",
        f"{grant_id}: alice on {endpoint_id} until {active['ends_at']}, approved by {active['approved_by']}",
    )
    status, view = _api(cloud, "GET", f"/requests/{ask_id}", alice)
    if status == 200 and isinstance(view, dict):
        for phase in view.get("phases", [])[-2:]:
            print(f"    {phase.get('text', phase)}", flush=True)

    def session_status(connection_id: str) -> str:
        [connection] = ec2.describe_client_vpn_connections(
            ClientVpnEndpointId=endpoint_id, Filters=[{"Name": "connection-id", "Values": [connection_id]}]
        )["Connections"]
        return str(connection["Status"]["Code"])

    first = connect("alice")
    if not first.connected:
        say("access FAILED", f"alice holds a grant but was refused: {first.detail}")
        return False
    say("alice connects", f"allowed ({first.connection_id})")
    bob = connect("bob")
    if bob.connected:
        say("access FAILED", "bob holds no grant but connected")
        return False
    say("bob connects", f"refused: {bob.detail}")

    cloud.clock.advance(GRANT_HOURS * 3600 + 60)
    say("clock", f"{GRANT_HOURS} h later: the grant's at() expiry schedule fires")
    if not _wait(lambda: grant().get("state") == "expired") or not _wait(
        lambda: session_status(first.connection_id) == "terminated"
    ):
        say("expiry FAILED", f"grant {grant().get('state')}, session {session_status(first.connection_id)}")
        return False
    say("grant expired", f"{grant_id}; alice's session {first.connection_id} was terminated")
    again = connect("alice")
    if again.connected:
        say("expiry FAILED", "alice reconnected after her grant ended")
        return False
    say("alice reconnects", f"refused: {again.detail}")
    code, out, _ = _cvpn(cloud, stack, "list", "--endpoint", endpoint_id)
    say("cvpn access list --endpoint (what an access review reads)", "")
    print(out.rstrip(), flush=True)
    return code == 0


def _message(answer: Any) -> str:
    if isinstance(answer, dict):
        return str(answer.get("message") or answer.get("title") or answer)
    return str(answer)[:200]
