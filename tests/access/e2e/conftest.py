"""The product deployed from template.yaml on a local cloud, with the intake configured as an operator
would: one signing secret and one mapping parameter per source (through boto3), an approvers' inbox
(an SQS queue on the approval topic) and a ticket system (a small HTTP server on 127.0.0.1). The
request API's JWT authorizer trusts the local cloud's OIDC issuer, which mints the people's tokens."""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from cvpn.cli import main
from cvpn.provision import describe_progress
from cvpn_shared.access.signatures import SignatureScheme, sign
from localcloud.clientvpn.connections import simulate_connect_by_id
from localcloud.cloud import LocalCloud
from localcloud.sample_network import SampleNetwork, build_sample_network
from localcloud.stack import DeployedStack
from tests.fixtures import REPO_ROOT
from tests.fixtures.access_stack import APPROVER_GROUP, PARAMETERS
from tests.provisioning.workflow.conftest import cloud_backend_quota

ROOT = REPO_ROOT
WEBHOOKS = ROOT / "events" / "webhooks"
STACK_NAME = "cvpn-autopilot"
TIME_SCALE = 1200.0
SECRETS = {
    "jira": "jira-secret-current",
    "github": "github-secret-current",
    "servicenow": "snow-secret-current",
}
PREVIOUS_SECRETS = {"jira": "jira-secret-previous"}
CALLBACK_SIGNING_SECRET = "callback-signing-secret"


@dataclass
class TicketSystem:
    """An HTTP server on loopback that records every callback it receives."""

    server: ThreadingHTTPServer
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def callbacks_for(self, path_part: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Callbacks whose path contains ``path_part``, waiting up to ``timeout`` for the first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [item for item in self.received if path_part in item["path"]]
            if found:
                return found
            time.sleep(0.05)
        return []


def _ticket_system() -> TicketSystem:
    holder: dict[str, TicketSystem] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            system = holder["system"]
            with system.lock:
                system.received.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
            self.send_response(201)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["system"] = TicketSystem(server)
    threading.Thread(target=server.serve_forever, name="ticket-system", daemon=True).start()
    return holder["system"]


@dataclass
class Intake:
    """The deployed product, its intake API and what an operator configured."""

    cloud: LocalCloud
    stack: DeployedStack
    network: SampleNetwork
    tickets: TicketSystem
    approvals_queue_url: str

    @property
    def api_url(self) -> str:
        assert self.cloud.api_url is not None
        return self.cloud.api_url

    @property
    def intake_arn(self) -> str:
        return self.stack.outputs["IntakeStateMachineArn"]

    def post_webhook(self, source: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """POST /webhooks/{source} through the local gateway; the status and the JSON answer."""
        request = urllib.request.Request(
            f"{self.api_url}/webhooks/{source}",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **headers},
        )
        return _exchange(request)

    def api(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        """A call of the request API as the person's page makes it (signed in with ``token``)."""
        request = urllib.request.Request(
            f"{self.api_url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        return _exchange(request)

    def ask(
        self,
        token: str,
        profile: str,
        access_groups: list[str],
        justification: str,
        hours: float | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """The form's POST /requests by the person signed in with ``token`` (hours on a grants profile)."""
        form: dict[str, Any] = {
            "profile": profile,
            "access_groups": access_groups,
            "justification": justification,
        }
        if hours is not None:
            form["hours"] = hours
        return self.api("POST", "/requests", token, form)

    def token_for(self, email: str) -> str:
        """An access token the local cloud's issuer signs for the person with this (verified) email."""
        assert self.cloud.oidc is not None, "the local cloud runs a sign-in issuer"
        return self.cloud.oidc.mint_token(email.split("@")[0], email, token_use="access", email_verified=True)

    def id_token_for(
        self, subject: str, name: str, groups: list[str] | None = None, email: str = "", **claims: Any
    ) -> str:
        """An ID token the issuer signs for ``subject``, carrying ``groups`` when given."""
        assert self.cloud.oidc is not None, "the local cloud runs a sign-in issuer"
        extra = {"groups": groups} if groups is not None else {}
        return self.cloud.oidc.mint_token(
            subject, email or f"{subject}@example.com", name=name, token_use="id", **{**extra, **claims}
        )

    def approver_token(self, subject: str = "grace") -> str:
        """The ID token of an approver: in the stack's approver group, and no requester's."""
        return self.id_token_for(subject, subject.title(), [APPROVER_GROUP])

    def confirm(self, link: str, token: str | None) -> tuple[int, dict[str, Any]]:
        """What the page a link opens sends on confirm: a POST of the link's fields, signed in."""
        parts = urlsplit(link)
        fields = dict(parse_qsl(parts.query))
        request = urllib.request.Request(
            f"{self.api_url}{parts.path}",
            data=json.dumps(fields).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {token}"} if token else {}),
            },
        )
        return _exchange(request)

    def get_status(self, status_url: str, token: str) -> tuple[int, dict[str, Any]]:
        """GET the status URL a webhook answered (a path on the intake API), signed in with ``token``."""
        return self.api("GET", status_url, token)

    def follow(self, link: str) -> tuple[int, str]:
        """Follow an approval link as a browser would, through the local gateway (same path and query)."""
        parts = urlsplit(link)
        try:
            with urllib.request.urlopen(f"{self.api_url}{parts.path}?{parts.query}", timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.cloud.client("stepfunctions")
        return list(sfn.list_executions(stateMachineArn=self.intake_arn)["executions"])

    def wait_status(self, execution_arn: str, wanted: set[str], timeout: float = 90) -> str:
        sfn = self.cloud.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            status = str(sfn.describe_execution(executionArn=execution_arn)["status"])
            if status in wanted:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} is {status}, not {wanted}, after {timeout:g} s")
            time.sleep(0.05)

    def progress(self, execution_arn: str) -> Any:
        return describe_progress(self.cloud.client("stepfunctions"), execution_arn)

    def approval_message(self, request_id: str, timeout: float = 30) -> dict[str, Any]:
        """The approvers' notification about ``request_id`` (SNS envelope from the inbox queue)."""
        sqs = self.cloud.client("sqs")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in sqs.receive_message(
                QueueUrl=self.approvals_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", []):
                envelope = json.loads(message["Body"])
                if envelope.get("MessageAttributes", {}).get("request_id", {}).get("Value") == request_id:
                    sqs.delete_message(
                        QueueUrl=self.approvals_queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
                    return dict(envelope)
        raise AssertionError(f"no approval request about {request_id}")

    def approval_links(self, request_id: str) -> dict[str, str]:
        """The approve and reject links of the approvers' notification about ``request_id``."""
        return links_of(self.approval_message(request_id))

    def live_endpoints(self) -> list[str]:
        """The ids of every endpoint not deleted, sorted."""
        described = self.cloud.client("ec2").describe_client_vpn_endpoints()["ClientVpnEndpoints"]
        return sorted(e["ClientVpnEndpointId"] for e in described if e["Status"]["Code"] != "deleted")

    def endpoints_for(self, request_id: str) -> list[dict[str, Any]]:
        endpoints = self.cloud.client("ec2").describe_client_vpn_endpoints()["ClientVpnEndpoints"]
        tag = {"Key": "cvpn-autopilot:request-id", "Value": request_id}
        return [e for e in endpoints if tag in e.get("Tags", []) and e["Status"]["Code"] != "deleted"]

    # ------------------------------------------------------------------ the VPN and grants
    def attempt(self, endpoint_id: str, user: str, device_ip: str = "198.51.100.7", **client: Any) -> Any:
        """The simulated client connecting to ``endpoint_id`` as ``user`` (``client``: its certificate)."""
        return simulate_connect_by_id(
            self.stack.account_id,
            self.cloud.region,
            endpoint_id,
            username=user,
            device_ip=device_ip,
            **client,
        )

    def session(self, endpoint_id: str, connection_id: str) -> str:
        """The state of a connection (active, terminated, ...)."""
        [connection] = self.cloud.client("ec2").describe_client_vpn_connections(
            ClientVpnEndpointId=endpoint_id,
            Filters=[{"Name": "connection-id", "Values": [connection_id]}],
        )["Connections"]
        return str(connection["Status"]["Code"])

    def schedule_names(self) -> set[str]:
        """The names of the schedules in the grants' schedule group (expiries and reminders)."""
        group = self.stack.outputs["GrantScheduleGroupName"]
        answer = self.cloud.client("scheduler").list_schedules(GroupName=group)
        return {item["Name"] for item in answer["Schedules"]}

    def cvpn(self, *arguments: str) -> tuple[int, str, str]:
        """Run `cvpn <arguments>` against this stack; its exit code, stdout and stderr."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(
                [
                    *arguments, "--local", "--endpoint-url", self.cloud.endpoint_url,
                    "--region", self.cloud.region, "--stack-name", STACK_NAME,
                ]
            )  # fmt: skip
        return code, out.getvalue(), err.getvalue()

    @contextlib.contextmanager
    def at_real_speed(self) -> Iterator[None]:
        """The emulated clock at real speed (a grant of hours lasts until a test moves the clock) and
        the template's schedules off, so that none of their invocations queues ahead of a grant's
        expiry. What earlier tests left queued is drained first; both are restored after."""
        clock = self.cloud.clock
        scale = clock.time_scale
        clock.time_scale = 1.0
        scheduler, runtime = self.cloud.scheduler, self.cloud.runtime
        assert scheduler is not None and runtime is not None
        scheduler.remove_stack(STACK_NAME)
        runtime.wait_for_events(timeout=120)
        try:
            yield
        finally:
            clock.time_scale = scale
            scheduler.add_stack(self.stack)

    # ------------------------------------------------------------------ payloads
    def jira_delivery(self, request_id: str, *, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        """A Jira issue-updated delivery for a new ticket ``request_id``, signed, with a delivery id."""
        payload = json.loads((WEBHOOKS / "jira-issue-updated.json").read_text())
        payload["issue"]["key"] = request_id
        body = json.dumps(payload, indent=1).encode()  # as sent: never re-serialised by the receiver
        headers = sign(SignatureScheme.JIRA, body, secret or SECRETS["jira"], timestamp=int(time.time()))
        headers["X-Atlassian-Webhook-Identifier"] = str(uuid.uuid4())
        return body, headers

    def github_delivery(self, number: int) -> tuple[bytes, dict[str, str]]:
        payload = json.loads((WEBHOOKS / "github-issues-labeled.json").read_text())
        payload["issue"]["number"] = number
        body = json.dumps(payload).encode()
        headers = sign(SignatureScheme.GITHUB, body, SECRETS["github"], timestamp=int(time.time()))
        headers["X-GitHub-Delivery"] = str(uuid.uuid4())
        return body, headers


def _exchange(request: urllib.request.Request) -> tuple[int, dict[str, Any]]:
    """Send ``request``; the status and the JSON answer, also of an error."""
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def links_of(message: dict[str, Any]) -> dict[str, str]:
    """The approve and reject links an approvers' notification (SNS envelope) carries."""
    text = message["Message"]
    return {
        "approve": re.search(r"Approve: (\S+)", text).group(1),  # type: ignore[union-attr]
        "reject": re.search(r"Reject:\s+(\S+)", text).group(1),  # type: ignore[union-attr]
    }


def _defaults(network: SampleNetwork) -> dict[str, Any]:
    return {
        "vpc_id": network.vpc_id,
        "subnet_ids": network.subnet_ids[:2],
        "server_certificate_arn": network.server_certificate_arn,
        "authentication": [{"type": "active-directory", "directory_id": network.directory_id}],
        "security_group_ids": [network.security_group_id],
        "connection_log": {
            "enabled": True,
            "log_group_name": "/cvpn-autopilot/connections",
            "retention_days": 90,
        },
    }


def _configure_sources(
    cloud: LocalCloud, stack: DeployedStack, network: SampleNetwork, tickets: TicketSystem
) -> None:
    """What an operator does: a secret per source and a mapping parameter per source."""
    secrets = cloud.client("secretsmanager")
    prefix = stack.outputs["IntakeSecretsPrefix"]
    for source, current in SECRETS.items():
        secrets.create_secret(
            Name=f"{prefix}{source}",
            SecretString=json.dumps({"current": current, "previous": PREVIOUS_SECRETS.get(source, "")}),
        )
    callbacks = stack.outputs["IntakeCallbackSecretsPrefix"]
    secrets.create_secret(
        Name=f"{callbacks}jira",
        SecretString=json.dumps({"email": "bot@example.com", "api_token": "t0k3n"}),
    )
    secrets.create_secret(Name=f"{callbacks}github", SecretString=json.dumps({"token": "ghp_example"}))
    secrets.create_secret(
        Name=f"{callbacks}servicenow", SecretString=json.dumps({"current": CALLBACK_SIGNING_SECRET})
    )
    ssm = cloud.client("ssm")
    path = stack.outputs["IntakeSourcesParameterPath"]
    for source, callback_path in (
        ("jira", "/rest/api/3/issue/{request_id}/comment"),
        ("github", "/repos/example/infra-requests/issues/{number}/comments"),
        ("servicenow", "/api/x_cvpn/result/{request_id}"),
    ):
        config = json.loads((WEBHOOKS / "sources" / f"{source}.json").read_text())
        config["secret_id"] = f"{prefix}{source}"
        config["defaults"].update(_defaults(network))
        config["callback"]["url_template"] = tickets.base_url + callback_path
        config["callback"]["credentials_secret_id"] = f"{callbacks}{source}"
        ssm.put_parameter(Name=f"{path}/{source}", Type="String", Value=json.dumps(config))


def _approvals_inbox(cloud: LocalCloud, topic_arn: str) -> str:
    sqs = cloud.client("sqs")
    queue_url = sqs.create_queue(QueueName="approvers-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    cloud.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return str(queue_url)


@pytest.fixture(scope="package")
def intake() -> Iterator[Intake]:
    tickets = _ticket_system()
    try:
        with LocalCloud(time_scale=TIME_SCALE, fault_seed=5) as cloud:
            stack = cloud.deploy(
                ROOT / "template.yaml",
                stack_name=STACK_NAME,
                # OidcIssuerUrl/OidcAudience default to the local cloud's issuer (no Cognito user pool).
                parameter_overrides=PARAMETERS,
            )
            # Tokens last their lifetime in emulated seconds too: a day (Cognito's longest) outlasts a
            # test that polls with one token at this scale.
            assert cloud.oidc is not None
            cloud.oidc.token_ttl_seconds = 86400
            cloud_backend_quota(cloud, 100)
            network = build_sample_network(cloud.client, region=cloud.region)
            _configure_sources(cloud, stack, network, tickets)
            queue_url = _approvals_inbox(cloud, stack.outputs["ApprovalRequestsTopicArn"])
            yield Intake(cloud, stack, network, tickets, queue_url)
    finally:
        tickets.server.shutdown()
        tickets.server.server_close()
