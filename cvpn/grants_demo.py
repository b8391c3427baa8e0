"""The demo's access chapter: access is granted per person on the shared endpoint, not built per ticket.

The endpoint the demo provisioned becomes the shared endpoint of a grants profile (``engineering``).
An administrator gives a user a break-glass grant with `cvpn access grant` (recorded as such): the
endpoint now enforces grants at connect, so that user connects and another user, without a grant, is
refused with the reason and where to ask. The emulated clock then passes the grant's end: its at()
expiry schedule fires, the grant expires and the user's live session is cut; a reconnect is refused.
`cvpn access list` shows the record an access review reads.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from cvpn.common import project_dir

__all__ = ["GRANTS_PROFILE", "run_grants_chapter"]

GRANTS_PROFILE = "engineering"
ISSUER = "https://login.example.com/oauth2/default"
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


def _wait(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


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
    """Grant, connect, refuse, expire on the shared endpoint; True when each step did what it says.
    ``connect(user)`` is a client's login to the endpoint (the local cloud's simulated client)."""
    ec2 = cloud.client("ec2")

    def status(connection_id: str) -> str:
        [connection] = ec2.describe_client_vpn_connections(
            ClientVpnEndpointId=endpoint_id, Filters=[{"Name": "connection-id", "Values": [connection_id]}]
        )["Connections"]
        return str(connection["Status"]["Code"])

    path = stack.outputs["ProfilesParameterPath"]
    cloud.client("ssm").put_parameter(
        Name=f"{path}/{GRANTS_PROFILE}",
        Type="String",
        Value=json.dumps(_profile_document(network, request_id)),
        Overwrite=True,
    )
    say(
        "access grants",
        f"profile {GRANTS_PROFILE} (access: grants) names {endpoint_id} as its shared endpoint: a person is"
        " given time-bound access to it, no endpoint is built per ticket",
    )

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
        return _chapter(cloud, stack, endpoint_id, connect, status, say)
    finally:
        clock.time_scale = scale
        if scheduler is not None:
            scheduler.add_stack(stack)


def _chapter(
    cloud: Any,
    stack: Any,
    endpoint_id: str,
    connect: Callable[[str], Any],
    status: Callable[[str], str],
    say: Callable[..., None],
) -> bool:
    code, out, err = _cvpn(
        cloud, stack, "grant", "--profile", GRANTS_PROFILE, "--user", "alice", "--issuer", ISSUER,
        "--sub", "00u-alice", "--hours", str(GRANT_HOURS), "--reason", "INC-4711 database failover",
    )  # fmt: skip
    if code != 0:
        say("access grant FAILED", err.strip())
        return False
    say("cvpn access grant --profile engineering --user alice --hours 2 (break-glass)", out.strip())
    grant_id = out.split(":", 1)[0]

    alice = connect("alice")
    if not alice.connected:
        say("access FAILED", f"alice holds a grant but was refused: {alice.detail}")
        return False
    say("alice connects", f"allowed ({alice.connection_id})")
    bob = connect("bob")
    if bob.connected:
        say("access FAILED", "bob holds no grant but connected")
        return False
    say("bob connects", f"refused: {bob.detail}")

    cloud.clock.advance(GRANT_HOURS * 3600 + 60)
    say("clock", f"{GRANT_HOURS} h later: the grant's at() expiry schedule fires")

    def state() -> str:
        code, out, _ = _cvpn(cloud, stack, "list", "--user", "alice", "--json")
        rows = json.loads(out) if code == 0 else []
        return str(next((row["state"] for row in rows if row["grant_id"] == grant_id), "?"))

    if not _wait(lambda: state() == "expired") or not _wait(
        lambda: status(alice.connection_id) == "terminated"
    ):
        say("expiry FAILED", f"grant {state()}, alice's session {status(alice.connection_id)}")
        return False
    say("grant expired", f"{grant_id}; alice's session {alice.connection_id} was terminated")
    again = connect("alice")
    if again.connected:
        say("expiry FAILED", "alice reconnected after her grant ended")
        return False
    say("alice reconnects", f"refused: {again.detail}")
    code, out, err = _cvpn(cloud, stack, "list", "--endpoint", endpoint_id)
    say("cvpn access list --endpoint (what an access review reads)", "")
    print(out.rstrip(), flush=True)
    return code == 0
