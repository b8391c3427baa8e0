"""Access requests on a grants profile, end to end on the local cloud: people ask through the form,
an approver of the profile confirms on the approval page, and the grant becomes active on the one
shared endpoint (no endpoint is built per request); the grant expires on the emulated clock, is
extended through the same approval, and is revoked or offboarded with `cvpn access`.

The shared endpoint is tagged as the product's and recorded as a provisioned request, without a
client-connect handler: the first approved grant turns it on. People sign in with the local cloud's
OIDC issuer; their VPN user name is the token's ``username`` claim. The emulated clock runs at real
speed in this module, and moves only when a test moves it.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from cvpn_shared.access.naming import execution_name
from cvpn_shared.access.start import execution_arn_for
from tests.access.e2e.conftest import Intake
from tests.fixtures.polling import wait_until
from tests.fixtures.shared_endpoints import shared_endpoint

PROFILE = "shared-eng"
ENDPOINT_REQUEST = "NET-SHARED-1"
ENGINEERING = "S-1-5-21-1004336348-1177238915-682003330-512"
LEADS = "eng-leads"


@dataclass
class Asker:
    """A person who asked for access: their token, VPN user name, request and grant."""

    token: str
    vpn_user: str
    request_id: str
    grant_id: str


@dataclass
class Flow:
    intake: Intake
    endpoint_id: str
    approver: str  # a member of the profile's approver group who asks for nothing
    links: dict[str, dict[str, str]] = field(default_factory=dict)  # request id -> approve/reject link

    # ------------------------------------------------------------------ the API, as the page calls it
    def person(self, name: str, groups: list[str] | None = None) -> tuple[str, str]:
        """A new person's ID token and VPN user name (the token's username claim: its subject)."""
        subject = f"{name}-{uuid.uuid4().hex[:6]}"
        return self.intake.id_token_for(subject, name.title(), groups or []), subject

    def ask(self, token: str, vpn_user: str, hours: float) -> Asker:
        status, answer = self.intake.ask(token, PROFILE, [ENGINEERING], "on call for the build farm", hours)
        assert status == 202, answer
        assert answer["status_url"] == f"/requests/{answer['request_id']}"
        return Asker(token, vpn_user, answer["request_id"], answer["grant_id"])

    def link(self, request_id: str, decision: str = "approve", timeout: float = 30) -> str:
        """The approve or reject link the approvers were sent about ``request_id``."""
        sqs = self.intake.cloud.client("sqs")
        deadline = time.monotonic() + timeout
        while request_id not in self.links and time.monotonic() < deadline:
            for message in sqs.receive_message(
                QueueUrl=self.intake.approvals_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", []):
                envelope = json.loads(message["Body"])
                about = envelope.get("MessageAttributes", {}).get("request_id", {}).get("Value", "")
                text = envelope.get("Message", "")
                found = {kind: re.search(rf"{kind.title()}:\s+(\S+)", text) for kind in ("approve", "reject")}
                if all(found.values()):
                    self.links[about] = {kind: match.group(1) for kind, match in found.items() if match}
                sqs.delete_message(
                    QueueUrl=self.intake.approvals_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        assert request_id in self.links, f"no approval request about {request_id}"
        return self.links[request_id][decision]

    def status(self, asker: Asker, request_id: str | None = None) -> dict[str, Any]:
        code, answer = self.intake.api("GET", f"/requests/{request_id or asker.request_id}", asker.token)
        assert code == 200, answer
        return answer

    def wait_status(self, asker: Asker, wanted: str, request_id: str | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            answer = self.status(asker, request_id)
            if answer["status"] == wanted:
                return answer
            if time.monotonic() > deadline:
                raise AssertionError(f"request is {answer['status']}, not {wanted}: {answer}")
            time.sleep(0.2)

    def approve(self, asker: Asker, request_id: str | None = None) -> dict[str, Any]:
        code, decided = self.intake.confirm(self.link(request_id or asker.request_id), self.approver)
        assert code == 200, decided
        return self.wait_status(asker, "extended" if request_id else "active", request_id)

    def granted(self, name: str, hours: float) -> Asker:
        """A person holding an active grant on the shared endpoint (asked, approved)."""
        token, vpn_user = self.person(name)
        asker = self.ask(token, vpn_user, hours)
        self.approve(asker)
        return asker

    # ------------------------------------------------------------------ the VPN
    def attempt(self, vpn_user: str) -> Any:
        return self.intake.attempt(self.endpoint_id, vpn_user, device_ip="198.51.100.9")

    def connect(self, vpn_user: str) -> str:
        result = self.attempt(vpn_user)
        assert result.connected and result.connection_id, result.error_msg_on_denied_connection
        return str(result.connection_id)

    def session(self, connection_id: str) -> str:
        return self.intake.session(self.endpoint_id, connection_id)

    def endpoints(self) -> list[str]:
        return self.intake.live_endpoints()

    def cvpn_access(self, *arguments: str) -> tuple[int, str, str]:
        return self.intake.cvpn("access", *arguments)


@pytest.fixture(scope="module")
def flow(intake: Intake) -> Iterator[Flow]:
    with intake.at_real_speed():
        # The profile's endpoint, without a client-connect handler: the first approved grant turns it on.
        endpoint_id = shared_endpoint(
            intake,
            profile=PROFILE,
            request_id=ENDPOINT_REQUEST,
            cidr="10.240.0.0/22",
            approver_group_claim="groups",
            approver_group=LEADS,
        )
        intake.cloud.clock.advance(300)  # the subnet association completes: clients can connect
        approver = intake.id_token_for(f"lena-{uuid.uuid4().hex[:6]}", "Lena Lead", ["staff", LEADS])
        yield Flow(intake, endpoint_id, approver)


def test_two_people_get_grants_on_the_one_shared_endpoint_after_a_confirmed_approval(flow: Flow) -> None:
    intake = flow.intake
    before = flow.endpoints()
    ann_token, ann_user = flow.person("ann", [LEADS])  # an approver herself: not of her own request
    ben_token, ben_user = flow.person("ben")
    ann = flow.ask(ann_token, ann_user, 6)
    ben = flow.ask(ben_token, ben_user, 8)

    # A mail scanner fetching the link decides nothing; the page names who asks, for what, how long.
    link = flow.link(ann.request_id)
    for _ in range(2):
        code, page = intake.follow(link)
        assert code == 200 and f"Approve request {ann.request_id}?" in page
    assert "Ann" in page and "6.0 hours" in page and "on call for the build farm" in page
    waiting = flow.status(ann)
    assert waiting["status"] == "awaiting-approval" and waiting["grant_id"] == ann.grant_id
    assert [phase["text"] for phase in waiting["phases"]] == [
        "Submitted by Ann",
        f"Waiting for approval by a member of {LEADS}",
    ]

    code, refused = intake.confirm(link, ann_token)
    assert code == 403 and "You asked for this request" in refused["message"]
    code, refused = intake.confirm(link, intake.approver_token("grace"))  # the stack's group, not LEADS
    assert code == 403 and f"not in the approver group '{LEADS}'" in refused["message"]
    assert flow.status(ann)["status"] == "awaiting-approval"

    code, decided = intake.confirm(link, flow.approver)
    assert code == 200 and "approved by Lena Lead: access starts now" in decided["message"], decided
    active = flow.wait_status(ann, "active")
    assert active["approved_by"] == "Lena Lead" and active["endpoint_id"] == flow.endpoint_id
    texts = [phase["text"] for phase in active["phases"]]
    assert texts[2].startswith("Approved by Lena Lead at ") and texts[3].startswith("Active until ")
    flow.approve(ben)

    # One endpoint before and after; no request built one; the endpoint now refuses users without grants.
    assert flow.endpoints() == before
    assert intake.endpoints_for(ann.request_id) == [] and intake.endpoints_for(ben.request_id) == []
    ec2 = intake.cloud.client("ec2")
    [described] = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[flow.endpoint_id])[
        "ClientVpnEndpoints"
    ]
    assert described["ClientConnectOptions"] == {
        "Enabled": True,
        "LambdaFunctionArn": intake.stack.outputs["ClientConnectFunctionArn"],
        "Status": described["ClientConnectOptions"]["Status"],
    }

    flow.connect(ann.vpn_user)
    flow.connect(ben.vpn_user)
    refused_connect = flow.attempt(f"nobody-{uuid.uuid4().hex[:6]}")
    assert not refused_connect.connected
    assert refused_connect.error_msg_on_denied_connection == (
        "Access refused: you have no active access grant for this VPN. Ask for access at "
        f"{intake.stack.outputs['IntakeApiUrl']}/ (profile {PROFILE})."
    )

    # A token claiming Ann's e-mail (verified, even) is not Ann: it reads nothing of hers.
    mallory = intake.id_token_for(
        "mallory", "Mallory", [], email=f"{ann.vpn_user}@example.com", email_verified=True
    )
    code, hidden = flow.intake.api("GET", f"/requests/{ann.request_id}", mallory)
    assert (code, hidden) == (404, {"message": f"no request {ann.request_id} of yours"})
    code, hidden = flow.intake.api(
        "POST", f"/grants/{ann.grant_id}/extend", mallory, {"hours": 9, "reason": "mine"}
    )
    assert (code, hidden) == (404, {"message": f"no grant {ann.grant_id} of yours"})


def test_a_rejected_request_leaves_its_grant_revoked_with_who_rejected(flow: Flow) -> None:
    token, vpn_user = flow.person("gus")
    gus = flow.ask(token, vpn_user, 4)
    code, decided = flow.intake.confirm(flow.link(gus.request_id, "reject"), flow.approver)
    assert code == 200 and "no access is granted" in decided["message"], decided
    refused = flow.wait_status(gus, "refused")
    assert refused["state"] == "revoked" and refused["ends_at"] is None
    assert refused["phases"][-1] == {
        "phase": "refused",
        "text": "Refused: Lena Lead rejected it on the approval page",
        "at": refused["phases"][-1]["at"],
    }
    # The status and the intake's end say what happened to the grant, as a ticket's comment does.
    said = (
        f"The access request {gus.request_id} (grant {gus.grant_id}) was refused: Lena Lead rejected it "
        "on the approval page; no access was granted."
    )
    assert refused["error"] == {"error": "ApprovalRejected", "cause": said}
    arn = execution_arn_for(flow.intake.intake_arn, execution_name(gus.request_id, "request-form"))
    assert flow.intake.wait_status(arn, {"SUCCEEDED", "FAILED"}) == "FAILED"
    ended = flow.intake.cloud.client("stepfunctions").describe_execution(executionArn=arn)
    assert (ended["error"], ended["cause"]) == ("ApprovalRejected", said)
    assert not flow.attempt(gus.vpn_user).connected


def test_bad_input_is_refused_naming_the_field(flow: Flow) -> None:
    token, _ = flow.person("hal")
    code, answer = flow.intake.ask(token, PROFILE, ["S-1-5-21-1-2-3-4"], "x" * 12, hours=49)
    assert code == 422, answer
    assert {item["field"] for item in answer["errors"]} == {"access_groups[0]"}
    code, answer = flow.intake.ask(token, PROFILE, [ENGINEERING], "x" * 12, hours=49)
    assert code == 422 and answer["errors"][0]["field"] == "hours"
    assert "longer than profile shared-eng's longest grant (48 h)" in answer["errors"][0]["message"]


def test_at_its_end_a_grant_expires_and_the_users_sessions_are_cut(flow: Flow) -> None:
    cara = flow.granted("cara", 1)
    sessions = [flow.connect(cara.vpn_user), flow.connect(cara.vpn_user)]

    flow.intake.cloud.clock.advance(3600 + 5)

    ended = flow.wait_status(cara, "expired")
    assert ended["phases"][-1]["phase"] == "expired"
    wait_until("cara's sessions to be cut", lambda: {flow.session(s) for s in sessions} == {"terminated"})
    assert not flow.attempt(cara.vpn_user).connected


def test_an_extension_approved_moves_the_end_and_its_expiry(flow: Flow) -> None:
    dan = flow.granted("dan", 2)
    first_end = flow.status(dan)["ends_at"]
    code, asked = flow.intake.api(
        "POST", f"/grants/{dan.grant_id}/extend", dan.token, {"hours": 10, "reason": "migration"}
    )
    assert code == 202, asked
    assert asked["grant_id"] == dan.grant_id and asked["status_url"] == f"/requests/{asked['request_id']}"
    code, again = flow.intake.api(
        "POST", f"/grants/{dan.grant_id}/extend", dan.token, {"hours": 12, "reason": "more"}
    )
    assert code == 409 and "already waits for an extension" in again["message"]
    code, bad = flow.intake.api("POST", f"/grants/{dan.grant_id}/extend", dan.token, {"hours": "ten"})
    assert code == 422 and {item["field"] for item in bad["errors"]} == {"hours", "reason"}
    waiting = flow.status(dan, asked["request_id"])
    assert [phase["phase"] for phase in waiting["phases"]] == ["submitted", "extension-waiting"]

    extended = flow.approve(dan, asked["request_id"])

    assert extended["ends_at"] > first_end and extended["phases"][-1]["phase"] == "extended"
    assert "Extended by Lena Lead" in extended["phases"][-1]["text"]
    schedule = flow.intake.cloud.client("scheduler").get_schedule(
        Name=dan.grant_id, GroupName=flow.intake.stack.outputs["GrantScheduleGroupName"]
    )
    assert schedule["ScheduleExpression"] == f"at({extended['ends_at'][:19]})"


def test_cvpn_access_revoke_and_offboarding_end_grants_from_requests(flow: Flow) -> None:
    eve, fay = flow.granted("eve", 8), flow.granted("fay", 8)
    session = flow.connect(eve.vpn_user)

    code, out, err = flow.cvpn_access("revoke", eve.grant_id, "--reason", "no longer on call")
    assert code == 0, err
    assert "1 session(s) terminated" in out and flow.session(session) == "terminated"
    assert flow.status(eve)["status"] == "revoked"

    code, out, err = flow.cvpn_access("revoke", "--user", fay.vpn_user.upper(), "--all", "--reason", "left")
    assert code == 0, err
    revoked = flow.status(fay)
    assert revoked["status"] == "revoked" and revoked["phases"][-1]["text"].endswith(": left")
    assert not flow.attempt(fay.vpn_user).connected
