"""Monitoring on the local cloud: drive the deployed product as an operator and an attacker would.

``LocalMonitoring`` wraps a local cloud with template.yaml deployed: simulated client connections,
the ingest schedule fired and waited for, the alerts topic read through an SQS inbox, a tap on the
findings bus, the blocklist and the checkpoints. ``run_attack_scenario`` is the demo's monitoring
chapter, and the end-to-end tests use the same helpers.

Scenario: normal users connect, an attacker sprays passwords across users from one address, the
scheduled ingest reads the connection log, the detector raises a HIGH password-spray finding, the
alert arrives on the alerts topic, the attacker's address is blocklisted, and the attacker's next
attempt (with a valid password this time) is refused by the client-connect handler.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from localcloud.cloud import DEFAULT_ACCOUNT_ID, LocalCloud
from localcloud.stack import DeployedStack

if TYPE_CHECKING:
    from localcloud.scheduler import Scheduler

__all__ = ["AttackSummary", "LocalMonitoring", "Mailbox", "run_attack_scenario"]

INGEST_FUNCTION = "IngestConnectionLogsFunction"
INGEST_SCHEDULE = "IngestConnectionLogsFunctionIngestSchedule"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Mailbox:
    """An SQS queue subscribed to a topic or targeted by a bus rule; ``received`` keeps every body."""

    sqs: Any
    queue_url: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def drain(self) -> list[dict[str, Any]]:
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            messages = answer.get("Messages", [])
            if not messages:
                return self.received
            for message in messages:
                self.received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@dataclass
class LocalMonitoring:
    """The monitoring side of a deployed stack on a local cloud."""

    cloud: LocalCloud
    stack: DeployedStack
    endpoint_id: str
    log_group_name: str
    alerts: Mailbox = field(init=False)
    bus_tap: Mailbox = field(init=False)

    def __post_init__(self) -> None:
        self._own_scheduler: Scheduler | None = None
        # Named after the stack: another stack's monitoring on the same local cloud has queues of its own.
        self.alerts = self._queue_subscribed_to_topic(
            f"{self.stack.stack_name}-alerts-inbox", self.stack.outputs["AlertsTopicArn"]
        )
        self.bus_tap = self._queue_on_bus(
            f"{self.stack.stack_name}-findings-tap", self.stack.outputs["FindingsBusName"]
        )

    # ------------------------------------------------------------------ wiring an operator would do
    def _queue(self, name: str) -> tuple[Any, str, str]:
        sqs = self.cloud.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return sqs, url, arn

    def _queue_subscribed_to_topic(self, name: str, topic_arn: str) -> Mailbox:
        sqs, url, arn = self._queue(name)
        self.cloud.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
        return Mailbox(sqs, url)

    def subscribe_to_topic(self, queue_name: str, topic_output: str) -> Mailbox:
        """A new SQS inbox subscribed to the topic a stack output names (e.g. NotificationsTopicArn)."""
        return self._queue_subscribed_to_topic(queue_name, self.stack.outputs[topic_output])

    def _queue_on_bus(self, name: str, bus_name: str) -> Mailbox:
        """Every event on the findings bus, copied to a queue (as another team's rule would)."""
        sqs, url, arn = self._queue(name)
        events = self.cloud.client("events")
        events.put_rule(
            Name=f"{name}-rule", EventBusName=bus_name, EventPattern=json.dumps({"source": [{"prefix": ""}]})
        )
        events.put_targets(Rule=f"{name}-rule", EventBusName=bus_name, Targets=[{"Id": "tap", "Arn": arn}])
        return Mailbox(sqs, url)

    # ------------------------------------------------------------------ clients
    def endpoint(self) -> Any:
        from localcloud.clientvpn.models import clientvpn_backends

        return clientvpn_backends[DEFAULT_ACCOUNT_ID][self.cloud.region].get_endpoint(self.endpoint_id)

    def connect(self, username: str, device_ip: str, *, fail: str | None = None) -> Any:
        """One simulated client attempt (``fail``: the credential failure's reason)."""
        from localcloud.clientvpn.connections import simulate_connect

        if fail is not None:
            return simulate_connect(
                self.endpoint(),
                username=username,
                device_ip=device_ip,
                outcome="failure",
                failure_reason=fail,
            )
        return simulate_connect(self.endpoint(), username=username, device_ip=device_ip, outcome="success")

    def warm_client_connect_handler(self) -> dict[str, Any]:
        """Invoke the client-connect handler once, so that no real client meets its cold start: at a
        high time scale a cold start outlasts the 30 emulated seconds Client VPN waits for an answer."""
        answer = self.cloud.client("lambda").invoke(
            FunctionName=self.stack.outputs["ClientConnectFunctionArn"],
            Payload=json.dumps(
                {
                    "connection-id": "cvpn-connection-warmup",
                    "endpoint-id": self.endpoint_id,
                    "common-name": "warm-up",
                    "username": "warm-up",
                    "public-ip": "192.0.2.1",
                    "schema-version": "v2",
                }
            ).encode(),
        )
        result: dict[str, Any] = json.loads(answer["Payload"].read())
        return result

    def checkpoint(self) -> dict[str, Any]:
        """The ingest checkpoint of the endpoint's log group (plain values; {} before the first run)."""
        item = (
            self.cloud.client("dynamodb")
            .get_item(
                TableName=self.stack.outputs["IngestCheckpointsTableName"],
                Key={"log_group": {"S": self.log_group_name}},
                ConsistentRead=True,
            )
            .get("Item", {})
        )
        return {name: _plain(value) for name, value in item.items() if name != "seen_event_digests"}

    def blocklist(self) -> list[dict[str, Any]]:
        """Blocklist entries that have not expired (``pk``: source#<ip>, user#<name> or
        user_source#<ip>#<name>)."""
        items = self.cloud.client("dynamodb").scan(TableName=self.stack.outputs["BlocklistTableName"])[
            "Items"
        ]
        entries = [{name: _plain(value) for name, value in item.items()} for item in items]
        return sorted((e for e in entries if int(e["expires_at"]) > time.time()), key=lambda e: str(e["pk"]))

    def findings_recorded(self) -> list[dict[str, Any]]:
        """Findings in the findings table (what `cvpn findings` lists)."""
        items = self.cloud.client("dynamodb").scan(TableName=self.stack.outputs["FindingsTableName"])["Items"]
        return [json.loads(item["detail"]["S"]) for item in items]

    def log_records(self) -> list[dict[str, Any]]:
        """Every connection-log record of the endpoint, oldest first."""
        logs = self.cloud.client("logs")
        records: list[dict[str, Any]] = []
        params: dict[str, Any] = {"logGroupName": self.log_group_name, "interleaved": True}
        while True:
            page = logs.filter_log_events(**params)
            for event in page.get("events", []):
                try:
                    record = json.loads(event["message"])
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("client-vpn-endpoint-id") == self.endpoint_id:
                    records.append(record)
            if not page.get("nextToken"):
                return records
            params["nextToken"] = page["nextToken"]

    # ------------------------------------------------------------------ the schedule
    def _ingest_invocations(self) -> int:
        assert self.cloud.runtime is not None
        name = self.stack.physical_ids[INGEST_FUNCTION]
        functions = self.cloud.runtime.stats()["functions"]
        return int(functions.get(name, {}).get("invocations", 0))

    def _scheduler(self) -> Scheduler:
        """The local cloud's scheduler; a scheduler of our own (fired by hand only) when the stack was
        deployed without serving its schedules."""
        if self.cloud.scheduler is not None:
            return self.cloud.scheduler
        if self._own_scheduler is None:
            from localcloud.scheduler import Scheduler

            self._own_scheduler = Scheduler(endpoint_url=self.cloud.endpoint_url, region=self.cloud.region)
            self._own_scheduler.add_stack(self.stack)
        return self._own_scheduler

    def run_ingest(self, times: int = 1, timeout: float = 240.0) -> None:
        """Fire the ingest schedule ``times`` times at once and wait until every run has finished."""
        assert self.cloud.runtime is not None
        scheduler = self._scheduler()
        before = self._ingest_invocations()
        # By ARN: the scheduler serves every stack of the local cloud, and each has this logical id.
        schedule = next(s for s in self.stack.schedules if s.logical_id == INGEST_SCHEDULE)
        for _ in range(times):
            scheduler.fire_now(schedule.arn)
        wait_for("the ingest runs to start", lambda: self._ingest_invocations() >= before + times, timeout)
        if not self.cloud.runtime.wait_for_events(timeout=timeout):
            raise TimeoutError("the ingest did not finish")

    def ingest_logs(self) -> str:
        assert self.cloud.runtime is not None
        return self.cloud.runtime.logs(self.stack.physical_ids[INGEST_FUNCTION])

    def findings_on_bus(self) -> list[dict[str, Any]]:
        return [event for event in self.bus_tap.drain() if event.get("detail-type", "").endswith("Attempts")]

    def alert_envelopes(self) -> list[dict[str, Any]]:
        return self.alerts.drain()


@dataclass
class AttackSummary:
    """What the attack scenario showed."""

    endpoint_id: str
    attacker_ip: str
    normal_connections: int
    failed_attempts: int
    findings: list[dict[str, Any]]
    alerts: list[str]
    blocked: list[str]
    refused_message: str | None
    refused_in_log: bool

    @property
    def attacker_refused(self) -> bool:
        return self.refused_message is not None and self.refused_in_log


def _say(step: str, detail: str = "") -> None:
    from localcloud.clock import get_clock

    print(f"[{get_clock().now():%H:%M:%S} emulated] {step}{(': ' + detail) if detail else ''}", flush=True)


def run_attack_scenario(
    cloud: LocalCloud,
    stack: DeployedStack,
    endpoint_id: str,
    *,
    log_group_name: str | None = None,
    attacker_ip: str = "203.0.113.66",
    users: Iterable[str] = ("alice", "bob", "carol", "dave", "erin", "frank"),
    monitoring: LocalMonitoring | None = None,
) -> AttackSummary:
    """The monitoring story on a provisioned endpoint (user authentication, client-connect handler on).

    Prints what happens and returns an ``AttackSummary``. The endpoint's connection log group is read
    from DescribeClientVpnEndpoints unless given.
    """
    if log_group_name is None:
        described = cloud.client("ec2").describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])
        log_group_name = str(described["ClientVpnEndpoints"][0]["ConnectionLogOptions"]["CloudwatchLogGroup"])
    watch = monitoring or LocalMonitoring(cloud, stack, endpoint_id, log_group_name)
    names = list(users)

    _say("monitoring", f"the ingest reads {log_group_name} on a schedule")
    watch.warm_client_connect_handler()
    normal = 0
    for index, user in enumerate(names[:2]):
        result = watch.connect(user, f"198.51.100.{10 + index}")
        normal += int(result.connected)
        _say("  user connects", f"{user} from 198.51.100.{10 + index}: {result.detail}")
    for user in names:
        watch.connect(user, attacker_ip, fail="Authentication failed")
    _say("  attacker sprays", f"{len(names)} users from {attacker_ip}, every attempt fails")

    watch.run_ingest()
    checkpoint = watch.checkpoint()
    _say(
        "ingest ran",
        f"checkpoint v{checkpoint['version']}, {checkpoint['events_processed']} events processed",
    )

    def attack_findings() -> list[dict[str, Any]]:
        """Findings about the attacker on the bus, once a HIGH or CRITICAL one is among them."""
        about = [e for e in watch.findings_on_bus() if e["detail"]["entity"].get("device_ip") == attacker_ip]
        return about if any(e["detail"]["severity"] in ("HIGH", "CRITICAL") for e in about) else []

    findings = wait_for("a HIGH finding about the attacker on the bus", attack_findings, timeout=60)
    for event in findings:
        detail = event["detail"]
        _say(
            "  finding",
            f"{detail['severity']} {detail['rule_id']} {detail['title']} "
            f"(source {detail['entity'].get('device_ip')}, {detail['counts']['failures']} failures)",
        )
    finding_ids = {event["detail"]["finding_id"] for event in findings}

    def alerts_for_findings() -> list[dict[str, Any]]:
        """The alert of every finding about the attacker, once all have arrived."""
        delivered = [
            envelope
            for envelope in watch.alert_envelopes()
            if envelope.get("MessageAttributes", {}).get("finding_id", {}).get("Value") in finding_ids
        ]
        arrived = {envelope["MessageAttributes"]["finding_id"]["Value"] for envelope in delivered}
        return delivered if arrived >= finding_ids else []

    alerts = [
        envelope.get("Subject", "") for envelope in wait_for("the alerts", alerts_for_findings, timeout=60)
    ]
    for subject in alerts:
        _say("  alert delivered", subject)
    blocked = wait_for(
        "the attacker on the blocklist",
        lambda: [str(entry["pk"]) for entry in watch.blocklist() if entry["subject"] == attacker_ip],
        timeout=60,
    )
    _say("  blocklisted", ", ".join(blocked))

    victim = names[-1]
    attempt = watch.connect(victim, attacker_ip)
    refused_in_log = any(
        record.get("connection-id") == attempt.connection_id
        and record.get("connection-attempt-failure-reason") == "client-connect-failed"
        for record in watch.log_records()
    )
    verdict = "CONNECTED" if attempt.connected else "refused"
    _say("attacker tries a valid password", f"{verdict}: {attempt.error_msg_on_denied_connection or ''}")
    return AttackSummary(
        endpoint_id=endpoint_id,
        attacker_ip=attacker_ip,
        normal_connections=normal,
        failed_attempts=len(names),
        findings=[event["detail"] for event in findings],
        alerts=alerts,
        blocked=blocked,
        refused_message=attempt.error_msg_on_denied_connection if not attempt.connected else None,
        refused_in_log=refused_in_log,
    )


def _plain(attribute: dict[str, Any]) -> Any:
    if "N" in attribute:
        return int(attribute["N"])
    if "S" in attribute:
        return attribute["S"]
    if "BOOL" in attribute:
        return attribute["BOOL"]
    return None
