"""Grants end to end on the local cloud, as an administrator runs them with `cvpn access`.

Two shared endpoints (Active Directory users, tagged as the product's, recorded in the requests table
as provisioned requests) serve two grants profiles. Users connect with the local cloud's simulated
client. The emulated clock runs at real speed in this module and is moved past a grant's end: the
expiry schedule the grant created fires on it, the grant expires and the user's sessions are cut.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.access.e2e.conftest import STACK_NAME, Intake
from tests.fixtures.polling import wait_until
from tests.fixtures.shared_endpoints import record_provisioned, shared_endpoint

ISSUER = "https://login.example.com/oauth2/default"
ENGINEERING = "S-1-5-21-1004336348-1177238915-682003330-512"


@dataclass
class Shared:
    """The stack, its two shared endpoints by profile, and a way to run `cvpn access`."""

    intake: Intake
    endpoints: dict[str, str]  # profile -> endpoint id

    def run(self, *arguments: str) -> tuple[int, str, str]:
        return self.intake.cvpn("access", *arguments)

    def connect(self, profile: str, user: str) -> str:
        result = self.intake.attempt(self.endpoints[profile], user)
        assert result.connected and result.connection_id, result.detail
        return str(result.connection_id)

    def status(self, profile: str, connection_id: str) -> str:
        return self.intake.session(self.endpoints[profile], connection_id)

    def grants(self, *options: str) -> list[dict[str, Any]]:
        code, out, err = self.run("list", *options, "--json")
        assert code == 0, err
        return list(json.loads(out))

    def grant(self, grant_id: str) -> dict[str, Any]:
        [found] = [row for row in self.grants() if row["grant_id"] == grant_id]
        return found

    def break_glass(self, profile: str, user: str, hours: str = "2") -> dict[str, Any]:
        code, out, err = self.run(
            "grant", "--profile", profile, "--user", user, "--issuer", ISSUER, "--sub", f"00u-{user}",
            "--hours", hours, "--reason", f"incident for {user}", "--json",
        )  # fmt: skip
        assert code == 0, err
        return dict(json.loads(out))

    def schedule_names(self) -> set[str]:
        return self.intake.schedule_names()


@pytest.fixture(scope="module")
def shared(intake: Intake) -> Iterator[Shared]:
    with intake.at_real_speed():
        endpoints = {
            "grants-eng": shared_endpoint(
                intake, profile="grants-eng", request_id="NET-GR1", cidr="10.250.0.0/22"
            ),
            "grants-fin": shared_endpoint(
                intake, profile="grants-fin", request_id="NET-GR2", cidr="10.251.0.0/22"
            ),
        }
        record_provisioned(
            intake, "JIRA-OLD-1", "cvpn-endpoint-0000000000000001d", execution_name="jira-JIRA-OLD-1"
        )
        intake.cloud.clock.advance(300)  # the subnet associations complete: clients can connect
        yield Shared(intake, endpoints)


def test_a_break_glass_grant_expires_at_its_end_and_cuts_the_users_sessions(shared: Shared) -> None:
    """Given a 2-hour break-glass grant and two live sessions of its user, when the emulated clock
    passes the grant's end, the expiry schedule fires: the grant is expired and both sessions are
    terminated; another user's session on the endpoint (on a longer grant) stays."""
    grant = shared.break_glass("grants-eng", "alice", hours="2")
    shared.break_glass("grants-eng", "zed", hours="8")
    assert grant["state"] == "active" and grant["break_glass"] is True
    assert grant["granted_by"]["kind"] == "aws" and grant["endpoint_id"] == shared.endpoints["grants-eng"]
    assert grant["grant_id"] in shared.schedule_names()
    sessions = [shared.connect("grants-eng", "alice"), shared.connect("grants-eng", "alice")]
    bystander = shared.connect("grants-eng", "zed")

    shared.intake.cloud.clock.advance(2 * 3600 - 120)  # not yet
    time.sleep(1.0)
    assert shared.grant(grant["grant_id"])["state"] == "active"
    assert [shared.status("grants-eng", session) for session in sessions] == ["active", "active"]

    shared.intake.cloud.clock.advance(180)
    scheduler = shared.intake.cloud.scheduler
    assert scheduler is not None
    try:
        wait_until("the grant to expire", lambda: shared.grant(grant["grant_id"])["state"] == "expired")
    except AssertionError:
        fired = [item for item in scheduler.fired if item.schedule == grant["grant_id"]]
        logs = shared.intake.cloud.client("logs").filter_log_events(
            logGroupName=f"/aws/lambda/{shared.intake.stack.physical_ids['ExpireGrantFunction']}"
        )["events"]
        raise AssertionError(
            f"not expired; now {shared.intake.cloud.clock.now()}, grant {shared.grant(grant['grant_id'])}, "
            f"fired {fired}, schedules {shared.schedule_names()}, "
            f"known {[s.name for s in scheduler.schedules]}, log {[e['message'] for e in logs][-20:]}"
        ) from None
    wait_until(
        "alice's sessions to end",
        lambda: {shared.status("grants-eng", session) for session in sessions} == {"terminated"},
    )
    assert shared.status("grants-eng", bystander) == "active"
    assert grant["grant_id"] not in shared.schedule_names()  # a fired schedule deletes itself
    assert shared.grants("--user", "alice", "--active") == []


def test_revoke_ends_a_grant_at_once_and_extend_moves_its_end(shared: Shared) -> None:
    grant = shared.break_glass("grants-fin", "carol", hours="4")
    session = shared.connect("grants-fin", "carol")
    code, out, err = shared.run("extend", grant["grant_id"], "--hours", "10", "--reason", "long migration")
    assert code == 0, err
    extended = shared.grant(grant["grant_id"])
    assert extended["ends_at"] > grant["ends_at"]
    schedule = shared.intake.cloud.client("scheduler").get_schedule(
        Name=grant["grant_id"], GroupName=shared.intake.stack.outputs["GrantScheduleGroupName"]
    )
    assert schedule["ScheduleExpression"] == f"at({extended['ends_at'][:19]})"

    code, out, err = shared.run("revoke", grant["grant_id"], "--reason", "done")
    assert code == 0, err
    assert "1 session(s) terminated" in out
    assert shared.status("grants-fin", session) == "terminated"
    assert shared.grant(grant["grant_id"])["state"] == "revoked"
    assert grant["grant_id"] not in shared.schedule_names()
    code, out, err = shared.run("revoke", grant["grant_id"])
    assert code == 2 and "already revoked" in err


def test_offboarding_revokes_every_grant_of_the_person_on_both_endpoints(shared: Shared) -> None:
    # A name no other module of the package gives a grant: the stack is shared, offboarding is not.
    grants = [shared.break_glass("grants-eng", "drew"), shared.break_glass("grants-fin", "drew")]
    sessions = {
        "grants-eng": shared.connect("grants-eng", "drew"),
        "grants-fin": shared.connect("grants-fin", "drew"),
    }
    erin = shared.break_glass("grants-eng", "erin")

    code, out, err = shared.run("revoke", "--user", "Drew", "--all", "--reason", "left the company")
    assert code == 0, err
    assert out.count("revoked") == 2
    for grant in grants:
        assert shared.grant(grant["grant_id"])["state"] == "revoked"
    assert {profile: shared.status(profile, session) for profile, session in sessions.items()} == {
        "grants-eng": "terminated",
        "grants-fin": "terminated",
    }
    assert shared.grant(erin["grant_id"])["state"] == "active"
    assert shared.run("revoke", "--user", "drew")[0] == 2  # offboarding needs --all


def test_the_access_list_as_json_and_csv(shared: Shared) -> None:
    frank = shared.break_glass("grants-fin", "frank", hours="3")
    on_fin = shared.grants("--endpoint", shared.endpoints["grants-fin"], "--active")
    assert frank["grant_id"] in {row["grant_id"] for row in on_fin}
    assert all(
        row["endpoint_id"] == shared.endpoints["grants-fin"] and row["state"] == "active" for row in on_fin
    )
    [row] = [row for row in on_fin if row["grant_id"] == frank["grant_id"]]
    assert row["vpn_user"] == "frank" and row["issuer"] == ISSUER and row["sub"] == "00u-frank"
    assert row["approved_by"].startswith("break-glass by ") and row["access_groups"] == [
        ENGINEERING,
        "S-1-5-21-1004336348-1177238915-682003330-1105",
    ]

    code, out, err = shared.run("list", "--user", "frank", "--csv")
    assert code == 0, err
    [csv_row] = list(csv.DictReader(io.StringIO(out)))
    assert csv_row["grant_id"] == frank["grant_id"] and csv_row["ends_at"] == frank["ends_at"]
    assert csv_row["break_glass"] == "True" and ";" in csv_row["access_groups"]

    code, out, err = shared.run("list")
    assert code == 0 and frank["grant_id"] in out


def test_bad_input_names_the_option(shared: Shared) -> None:
    code, _, err = shared.run(
        "grant", "--profile", "grants-eng", "--user", "gina", "--issuer", ISSUER, "--sub", "00u-gina",
        "--hours", "49", "--reason", "too long",
    )  # fmt: skip
    assert code == 2 and "--hours: 49 is longer than profile grants-eng's longest grant (48 h)" in err
    code, _, err = shared.run(
        "grant", "--profile", "nope", "--user", "gina", "--issuer", ISSUER, "--sub", "s", "--reason", "r"
    )
    assert code == 2 and "--profile: no network profile named 'nope'" in err
    code, _, err = shared.run(
        "grant",
        "--profile",
        "grants-eng",
        "--user",
        "gina",
        "--issuer",
        "http://x",
        "--sub",
        "s",
        "--reason",
        "r",
    )
    assert code == 2 and "--issuer" in err
    assert shared.grants("--user", "gina") == []


def test_legacy_endpoints_are_listed_with_the_command_to_decommission_them(shared: Shared) -> None:
    code, out, err = shared.run("list", "--legacy-endpoints", "--json")
    assert code == 0, err
    listed = {record["request_id"]: record for record in json.loads(out)}
    assert "JIRA-OLD-1" in listed
    assert listed["JIRA-OLD-1"]["decommission"] == (
        f"cvpn decommission --request-id JIRA-OLD-1 --stack-name {STACK_NAME}"
    )
    # the shared endpoints (named by profiles, provisioned by an administrator) are not legacy
    assert not {"NET-GR1", "NET-GR2"} & set(listed)


def test_a_grants_endpoint_admits_only_users_holding_an_active_grant(shared: Shared) -> None:
    """Given a shared endpoint an administrator enforces grants on (its client-connect handler turned
    on by `cvpn access enforce`), a user without a grant is refused at connect with where to ask; a
    user granted break-glass connects; once the grant's end passes on the emulated clock and its
    expiry schedule fires, the session is cut and reconnecting is refused. A grant whose end passed
    on the emulated clock, not yet on the machine's, already admits nobody."""
    intake = shared.intake
    clock = intake.cloud.clock
    endpoint_id = shared_endpoint(intake, profile="grants-gate", request_id="NET-GR3", cidr="10.252.0.0/22")
    shared.endpoints["grants-gate"] = endpoint_id
    clock.advance(300)  # the subnet association completes

    code, out, err = shared.run("enforce", "--profile", "grants-gate")

    assert code == 0, err
    assert f"{endpoint_id} (profile grants-gate) now enforces grants at connect" in out
    assert "client-connect handler turned on" in out
    ec2 = intake.cloud.client("ec2")
    [described] = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"]
    assert described["ClientConnectOptions"]["Enabled"] is True
    assert (
        described["ClientConnectOptions"]["LambdaFunctionArn"]
        == (intake.stack.outputs["ClientConnectFunctionArn"])
    )
    code, out, _ = shared.run("enforce", "--profile", "grants-gate")
    assert code == 0 and "already enforced" in out and "handler already on" in out

    def attempt(user: str) -> Any:
        return intake.attempt(endpoint_id, user, device_ip="198.51.100.8")

    form = intake.stack.outputs["IntakeApiUrl"]
    refused = attempt("carol")
    assert not refused.connected
    assert refused.error_msg_on_denied_connection == (
        f"Access refused: you have no active access grant for this VPN. Ask for access at {form}/ "
        "(profile grants-gate)."
    )

    grant = shared.break_glass("grants-gate", "dora", hours="1")
    session = shared.connect("grants-gate", "dora")

    clock.advance(3600 + 5)
    wait_until("the grant to expire", lambda: shared.grant(grant["grant_id"])["state"] == "expired")
    wait_until("dora's session to be cut", lambda: shared.status("grants-gate", session) == "terminated")
    again = attempt("dora")
    assert not again.connected
    assert again.error_msg_on_denied_connection is not None
    assert again.error_msg_on_denied_connection.startswith(
        "Access refused: you have no active access grant for this VPN."
    )

    # The machine's clock is now more than an hour behind the emulated one the services run on.
    emulated = int(clock.now().timestamp())
    assert emulated - time.time() > 600
    intake.cloud.client("dynamodb").put_item(
        TableName=intake.stack.outputs["AccessGrantsTableName"],
        Item={
            "pk": {"S": f"connect#{endpoint_id}#erin"},
            "active_until": {"N": str(emulated - 60)},
            "grants": {"M": {}},
            "version": {"N": "1"},
        },
    )
    ended = attempt("erin")
    assert not ended.connected and ended.error_msg_on_denied_connection is not None
    assert "your access grant for this VPN ended at" in ended.error_msg_on_denied_connection
