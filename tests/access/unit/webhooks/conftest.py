"""In-memory collaborators of the webhook intake (they keep the semantics of the real ones: a claim is
a conditional write, a started execution name cannot start again, a request is recorded once) and the
example sources."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from cvpn_shared.access.naming import run_execution_name
from cvpn_shared.access.signatures import SignatureScheme, sign
from cvpn_shared.access.start import ExecutionNameConflict, StartResult, execution_arn_for, status_url_path
from cvpn_shared.access.webhooks import WebhookIntake
from tests.fixtures import REPO_ROOT

ROOT = REPO_ROOT
WEBHOOKS = ROOT / "events" / "webhooks"
NOW = 1_800_000_000.0
STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:cvpn-intake-request"
SECRETS = {
    "jira": {"current": "jira-current", "previous": "jira-previous"},
    "github": {"current": "It's a Secret to Everybody", "previous": ""},
    "servicenow": {"current": "snow-current"},
    "slack": {"current": "slack-current"},
}


def source_config(source: str) -> dict[str, Any]:
    """The example configuration of ``source`` (events/webhooks/sources), secret id by source name."""
    if source == "slack":
        config = source_config("servicenow")
        config["signature"] = "slack"
    else:
        config = json.loads((WEBHOOKS / "sources" / f"{source}.json").read_text())
    config["secret_id"] = f"intake/{source}"
    return config


def example_payload(source: str) -> dict[str, Any]:
    name = {
        "jira": "jira-issue-updated",
        "github": "github-issues-labeled",
        "servicenow": "generic-servicenow",
        "slack": "generic-servicenow",
    }[source]
    return dict(json.loads((WEBHOOKS / f"{name}.json").read_text()))


@dataclass
class MemorySources:
    configs: dict[str, Any] = field(default_factory=dict)

    def get(self, source: str) -> Any:
        return copy.deepcopy(self.configs.get(source))


@dataclass
class MemorySecrets:
    """Secrets by id; ``stale`` values are what a cache still serves until a refresh."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    stale: dict[str, dict[str, Any]] = field(default_factory=dict)
    refreshes: int = 0

    def get_json(self, secret_id: str, *, refresh: bool = False) -> dict[str, Any] | None:
        if refresh:
            self.refreshes += 1
            self.stale.pop(secret_id, None)
        value = self.stale.get(secret_id, self.values.get(secret_id))
        return copy.deepcopy(value) if value is not None else None


@dataclass
class MemoryDeliveries:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)

    def claim(self, record: dict[str, Any], *, now: int) -> dict[str, Any] | None:
        existing = self.items.get(record["delivery_key"])
        if existing is not None and existing["expires_at"] >= now:
            return dict(existing)
        self.items[record["delivery_key"]] = dict(record)
        return None

    def release(self, delivery_key: str) -> None:
        self.released.append(delivery_key)
        self.items.pop(delivery_key, None)


@dataclass
class MemorySubmissions:
    """Requests recorded for GET /requests/{id}; a request id is recorded once (a conditional put)."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_with: Exception | None = None

    def put(self, submission: dict[str, Any], *, replace: bool = False) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        existing = self.items.get(submission["request_id"])
        if existing is not None and not (replace and existing.get("source") == submission.get("source")):
            raise RuntimeError(f"ConditionalCheckFailed: {submission['request_id']} is recorded")
        self.items[submission["request_id"]] = copy.deepcopy(submission)


@dataclass
class MemoryTickets:
    """The permanent ticket record: every change is conditional on the run, as the DynamoDB one."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: int = 0

    def get(self, ticket_key: str) -> dict[str, Any] | None:
        item = self.items.get(ticket_key)
        return copy.deepcopy(item) if item is not None else None

    def claim(self, record: dict[str, Any], *, previous_run: int) -> bool:
        existing = self.items.get(record["ticket_key"])
        if (existing["run"] if existing else 0) != previous_run:
            return False
        self.writes += 1
        self.items[record["ticket_key"]] = copy.deepcopy(record)
        return True

    def mark_started(self, ticket_key: str, run: int) -> None:
        item = self.items.get(ticket_key)
        if item is not None and item["run"] == run:
            self.writes += 1
            item["state"] = "started"

    def release(self, ticket_key: str, run: int, previous: dict[str, Any] | None) -> None:
        item = self.items.get(ticket_key)
        if item is None or item["run"] != run:
            return
        self.writes += 1
        if previous is None:
            del self.items[ticket_key]
        else:
            self.items[ticket_key] = copy.deepcopy(previous)


@dataclass
class MemoryStarter:
    """Executions by name, as Step Functions keeps them: a name starts once."""

    started: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_with: Exception | None = None

    def execution_arn(self, source: str, request_id: str, run: int = 1) -> str:
        return execution_arn_for(STATE_MACHINE_ARN, run_execution_name(request_id, source, run))

    def start(
        self,
        source: str,
        request: dict[str, Any],
        approval_required: bool,
        callback: dict[str, Any] | None,
        run: int = 1,
    ) -> StartResult:
        if self.fail_with is not None:
            raise self.fail_with
        request_id = request["request_id"]
        name = run_execution_name(request_id, source, run)
        arn = self.execution_arn(source, request_id, run)
        existing = self.started.get(name)
        if existing is not None:
            if existing["request"]["request_id"] != request_id:
                raise ExecutionNameConflict(name, request_id, existing["request"]["request_id"])
            return StartResult(request_id, arn, status_url_path(request_id), duplicate=True)
        self.started[name] = {
            "source": source,
            "request": request,
            "approval_required": approval_required,
            "callback": callback,
        }
        return StartResult(request_id, arn, status_url_path(request_id), duplicate=False)


@dataclass
class Harness:
    intake: WebhookIntake
    sources: MemorySources
    secrets: MemorySecrets
    deliveries: MemoryDeliveries
    starter: MemoryStarter
    submissions: MemorySubmissions
    tickets: MemoryTickets

    def signed(
        self, source: str, payload: Any = None, *, secret: str | None = None, timestamp: float = NOW
    ) -> tuple[bytes, dict[str, str]]:
        """The example (or given) payload of ``source`` as a sender signs it, with a delivery id."""
        body = (
            payload if isinstance(payload, bytes) else json.dumps(payload or example_payload(source)).encode()
        )
        scheme = SignatureScheme(source_config(source)["signature"])
        headers = sign(scheme, body, secret or SECRETS[source]["current"], timestamp=int(timestamp))
        if scheme is SignatureScheme.JIRA:
            headers["X-Atlassian-Webhook-Identifier"] = "delivery-1"
        elif scheme is SignatureScheme.GITHUB:
            headers["X-GitHub-Delivery"] = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
        return body, headers


@pytest.fixture
def harness() -> Harness:
    sources = MemorySources({name: source_config(name) for name in ("jira", "github", "servicenow", "slack")})
    secrets = MemorySecrets({f"intake/{name}": value for name, value in SECRETS.items()})
    deliveries = MemoryDeliveries()
    starter = MemoryStarter()
    submissions = MemorySubmissions()
    tickets = MemoryTickets()
    intake = WebhookIntake(
        sources=sources,
        secrets=secrets,
        deliveries=deliveries,
        starter=starter,
        submissions=submissions,
        tickets=tickets,
        delivery_ttl_days=7,
        max_body_bytes=64 * 1024,
        clock=lambda: NOW,
    )
    return Harness(intake, sources, secrets, deliveries, starter, submissions, tickets)
