"""The product deployed a second time on the monitoring tests' local cloud, as an operator who turns
every alert channel on deploys it: the chat webhook's URL in a Secrets Manager secret (Slack) or an
SSM SecureString parameter (Teams Workflows), Security Hub integration on, attacked users blocked
outright (``BlockUsers``, the administrator's option) and their sessions cut, and two endpoints of
its own, provisioned by the stack's state machine with the client-connect handler on: one whose
users sign in to Active Directory, and one whose clients authenticate with a certificate alone
(mutual TLS: no user name, a user is the certificate's common name), both logging to the stack's
connection log group.

A stack of its own keeps these tests apart from the shared monitoring stack: its own findings bus,
blocklist, detection state and connection log group (which no other test fills). Its detection
settings have no cooldown, so a rule that fires again in the same episode is published again (the
Security Hub update the tests look for), and a runbook URL, so a finding carries one. ``configure``
switches the webhook and session termination
between tests on the alert function's configuration.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvpn.monitoring_demo import LocalMonitoring, wait_for
from localcloud.clientvpn.connections import simulate_connect
from localcloud.eventbridge import target_payload
from localcloud.stack import DeployedStack
from tests.fixtures.webhook_receiver import WebhookReceiver
from tests.provisioning.workflow.harness import ROOT, Provisioning

__all__ = ["AlertingStack", "deploy_alerting_stack"]

STACK_NAME = "cvpn-alerting"
LOG_GROUP = "/cvpn-alerting/connections"
PROVISIONING_TIME_SCALE = 100.0
DELIVER_ALERTS = "DeliverAlertsFunction"
SLACK_PATH = "/services/T0CVPN000/B0ALERTS0/slack-webhook-token"
# A Teams Workflows webhook ("Send webhook alerts to a channel"): the flow's manual trigger, signed in
# the query string.
TEAMS_PATH = (
    "/workflows/0c7a1e5bcvpnalerts/triggers/manual/paths/invoke"
    "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=teams-workflow-signature"
)
RUNBOOK_URL = "https://wiki.example.com/runbooks/client-vpn-suspicious-connections"
# What the client-connect handler answers for a refused certificate (a posture check, the blocklist):
# failed certificate logins are never logged, so these are the failures a certificate user has.
CLIENT_CONNECT_REFUSED = "client-connect-failed"
TURNED_ON = ("ALERT_WEBHOOK_SECRET_ARN", "SECURITY_HUB_ENABLED", "TERMINATE_BLOCKED_SESSIONS", "BLOCK_USERS")
TEAMS_PARAMETER = "cvpn-alerts-teams-webhook"  # ALERT_WEBHOOK_PARAMETER's IAM resource wants no leading "/"


@dataclass
class AlertingStack:
    """The second stack, one of its endpoints (``monitoring``) and the chat webhook it posts to.

    ``certificate_endpoint_id`` is its endpoint that authenticates by client certificate alone;
    ``on_certificate_endpoint()`` is the same stack seen through that endpoint (``certificates``)."""

    product: Provisioning
    monitoring: LocalMonitoring
    receiver: WebhookReceiver
    slack_secret_arn: str
    certificate_endpoint_id: str
    certificates: bool = False

    @property
    def stack(self) -> DeployedStack:
        return self.product.stack

    @property
    def endpoint_id(self) -> str:
        return self.monitoring.endpoint_id

    @property
    def deliver_alerts_function(self) -> str:
        return self.stack.physical_ids[DELIVER_ALERTS]

    def client(self, service: str) -> Any:
        return self.product.cloud.client(service)

    # ------------------------------------------------------------------ what an operator sets
    def configure(self, *, webhook: str = "slack", terminate_sessions: bool = True) -> None:
        """The alert function's settings, as the stack parameters set them: the webhook of ``webhook``
        (slack: the secret; teams: the parameter) and session termination on or off.

        Set on the function's configuration, not by a stack update: an update packages the working
        tree again, and would give every function of the stack a new code version mid-module."""
        settings = {
            "ALERT_WEBHOOK_FORMAT": webhook,
            "ALERT_WEBHOOK_SECRET_ARN": self.slack_secret_arn if webhook == "slack" else "",
            "ALERT_WEBHOOK_PARAMETER": TEAMS_PARAMETER if webhook == "teams" else "",
            "TERMINATE_BLOCKED_SESSIONS": str(terminate_sessions).lower(),
            "SSL_CERT_FILE": str(self.receiver.ca_file),  # as a function is made to trust a private CA
        }
        lambda_client = self.client("lambda")
        configuration = lambda_client.get_function_configuration(FunctionName=self.deliver_alerts_function)
        variables = {name: str(value) for name, value in configuration["Environment"]["Variables"].items()}
        if {name: variables.get(name) for name in settings} != settings:
            lambda_client.update_function_configuration(
                FunctionName=self.deliver_alerts_function,
                Environment={"Variables": {**variables, **settings}},
            )

    def on_certificate_endpoint(self) -> AlertingStack:
        """The stack seen through its certificate-only endpoint: connecting, detecting and looking at
        connections happen there."""
        monitoring = copy.copy(self.monitoring)  # the same inboxes and scheduler; no second subscription
        monitoring.endpoint_id = self.certificate_endpoint_id
        return dataclasses.replace(self, monitoring=monitoring, certificates=True)

    # ------------------------------------------------------------------ what attackers and users do
    def connect(self, user: str, device_ip: str, *, fail: str | None = None) -> Any:
        """One client's attempt from ``device_ip``: ``user`` signs in to Active Directory, or on the
        certificate endpoint presents a certificate whose common name is ``user`` (no user name);
        ``fail``: why the attempt fails."""
        if not self.certificates:
            return self.monitoring.connect(user, device_ip, fail=fail)
        return simulate_connect(
            self.monitoring.endpoint(),
            common_name=user,
            device_ip=device_ip,
            outcome="success" if fail is None else "failure",
            failure_reason=fail,
        )

    def fail_logins(self, pairs: Sequence[tuple[str, str]]) -> None:
        """A failed attempt for each (user, source address): a wrong password, or on the certificate
        endpoint a certificate the client-connect handler refuses."""
        reason = CLIENT_CONNECT_REFUSED if self.certificates else "Authentication failed"
        for user, source in pairs:
            self.connect(user, source, fail=reason)

    def detect(self, pairs: Sequence[tuple[str, str]], rule_id: str, *, about: str) -> dict[str, Any]:
        """Fail the logins of ``pairs``, run the scheduled ingest, and return the event of the
        ``rule_id`` finding about ``about`` (address or user) on the findings bus."""
        self.fail_logins(pairs)
        self.monitoring.run_ingest()
        return self.finding(rule_id, about=about)

    def finding(self, rule_id: str, *, about: str, timeout: float = 60.0) -> dict[str, Any]:
        """The event on the findings bus of ``rule_id`` whose entity names ``about`` (address, user
        name or certificate common name)."""

        def matching() -> list[dict[str, Any]]:
            self.monitoring.findings_on_bus()
            return [
                event
                for event in self.monitoring.bus_tap.received
                if event["detail"].get("rule_id") == rule_id
                and about
                in {event["detail"]["entity"].get(key) for key in ("device_ip", "username", "common_name")}
            ]

        return wait_for(f"a {rule_id} finding about {about}", matching, timeout=timeout)[-1]

    def retry_delivery(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the alert function with ``event`` (from the findings bus) as EventBridge delivers it,
        as Lambda retries a failed asynchronous invocation; the invoke's answer, payload parsed."""
        # moto's copy of an event to an SQS target leaves out ``account`` (its default input template
        # has none); EventBridge sends Lambda the whole event.
        delivered = {**target_payload({}, event), "account": self.stack.account_id}
        answer = self.client("lambda").invoke(
            FunctionName=self.deliver_alerts_function, Payload=json.dumps(delivered).encode()
        )
        return {**answer, "Payload": json.loads(answer["Payload"].read())}

    # ------------------------------------------------------------------ what the operator sees
    def security_hub_findings(self, finding_id: str) -> list[dict[str, Any]]:
        """Every Security Hub finding whose Id is ``finding_id`` (GetFindings, every page)."""
        securityhub = self.client("securityhub")
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"Filters": {"Id": [{"Value": finding_id, "Comparison": "EQUALS"}]}}
        while True:
            page = securityhub.get_findings(**params)
            found += [finding for finding in page["Findings"] if finding["Id"] == finding_id]
            if not page.get("NextToken"):
                return found
            params["NextToken"] = page["NextToken"]

    def connection(self, connection_id: str) -> dict[str, Any]:
        """The connection as DescribeClientVpnConnections shows it."""
        answer = self.client("ec2").describe_client_vpn_connections(
            ClientVpnEndpointId=self.endpoint_id,
            Filters=[{"Name": "connection-id", "Values": [connection_id]}],
        )
        (connection,) = answer["Connections"]
        return dict(connection)

    def end_records(self, connection_id: str) -> list[dict[str, Any]]:
        """Connection-log records of ``connection_id`` that end it (an end time is set)."""
        return [
            record
            for record in self.monitoring.log_records()
            if record.get("connection-id") == connection_id and record.get("connection-end-time") != "NA"
        ]

    def delivery_log(self) -> str:
        """The alert function's recent log output (the local runtime keeps it)."""
        runtime = self.product.cloud.runtime
        assert runtime is not None
        return runtime.logs(self.deliver_alerts_function)

    def delivery_reports(
        self, finding_id: str, *, outcome: str = "finding delivered", timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """The reports the alert function logged for ``finding_id`` with ``outcome`` ("finding
        delivered" or "finding partly delivered"), once there is one."""

        def reports() -> list[dict[str, Any]]:
            found = []
            for line in self.delivery_log().splitlines():
                if f'"{outcome}"' not in line or finding_id not in line:
                    continue
                entry = json.loads(line[line.index("{") :])
                if entry.get("message") == outcome and entry["delivery"]["finding_id"] == finding_id:
                    found.append(entry["delivery"])
            return found

        return wait_for(f"{outcome!r} for {finding_id}", reports, timeout=timeout)


@contextmanager
def deploy_alerting_stack(product: Provisioning, work_dir: Path) -> Iterator[AlertingStack]:
    """Deploy the second stack on ``product``'s local cloud and provision its endpoints; the clock's
    time scale is given back afterwards (the shared fixtures provision at their own scale)."""
    cloud = product.cloud
    with WebhookReceiver(work_dir / "webhook") as receiver:
        slack_secret_arn = cloud.client("secretsmanager").create_secret(
            Name=f"{STACK_NAME}/slack-webhook", SecretString=receiver.url(SLACK_PATH)
        )["ARN"]
        cloud.client("ssm").put_parameter(
            Name=TEAMS_PARAMETER, Type="SecureString", Value=receiver.url(TEAMS_PATH)
        )
        cloud.client("securityhub").enable_security_hub(EnableDefaultStandards=False)
        parameters = {
            "IngestSchedule": "rate(7 days)",  # the tests fire it
            "SecurityHubIntegration": "Enabled",
            "DetectionSettings": json.dumps({"cooldown_seconds": 0, "runbook_url": RUNBOOK_URL}),
            "AlertWebhookFormat": "slack",
            "AlertWebhookSecretArn": slack_secret_arn,
            # Both webhook sources, so the alert function's role may read either: configure() picks
            # one through the function's environment, and the local cloud enforces the role.
            "AlertWebhookParameter": TEAMS_PARAMETER,
            "TerminateBlockedSessions": "true",
            "BlockUsers": "true",
        }
        time_scale = cloud.clock.time_scale
        cloud.clock.time_scale = 1.0  # deployed at real speed, as the shared stack is (conftest)
        try:
            stack = cloud.deploy(
                ROOT / "template.yaml", stack_name=STACK_NAME, parameter_overrides=parameters
            )
            deployed = cloud.client("lambda").get_function_configuration(
                FunctionName=stack.physical_ids[DELIVER_ALERTS]
            )["Environment"]["Variables"]
            assert {name: deployed[name] for name in TURNED_ON} == {
                "ALERT_WEBHOOK_SECRET_ARN": slack_secret_arn,
                "SECURITY_HUB_ENABLED": "true",
                "TERMINATE_BLOCKED_SESSIONS": "true",
                "BLOCK_USERS": "true",
            }, "the template passes the channels' parameters to the alert function"
            provisioning = Provisioning(cloud=cloud, stack=stack, network=product.network)
            directory, certificates = _provision_endpoints(provisioning)
            monitoring = LocalMonitoring(cloud, stack, directory, LOG_GROUP)
            alerting = AlertingStack(provisioning, monitoring, receiver, slack_secret_arn, certificates)
            alerting.configure()
            yield alerting
        finally:
            cloud.clock.time_scale = time_scale


def _provision_endpoints(provisioning: Provisioning) -> tuple[str, str]:
    """Provision the stack's two endpoints at once (Active Directory; certificate alone), both with the
    client-connect handler and logging to ``LOG_GROUP``, at a high time scale, then let the clock run
    at real speed; their ids."""
    network = provisioning.network
    common: dict[str, Any] = {
        "zones": 1,
        "client_connect_handler": True,
        "connection_log": {"enabled": True, "log_group_name": LOG_GROUP, "retention_days": 7},
    }
    requests = [
        provisioning.request(client_cidr_block="172.20.0.0/22", **common),
        provisioning.request(
            client_cidr_block="172.24.0.0/22",
            authentication=[
                {
                    "type": "mutual-tls",
                    "client_root_certificate_chain_arn": network.client_root_certificate_arn,
                }
            ],
            authorization_rules=[{"target_network_cidr": "0.0.0.0/0", "authorize_all_groups": True}],
            **common,
        ),
    ]
    clock = provisioning.cloud.clock
    clock.time_scale = PROVISIONING_TIME_SCALE
    try:
        executions = [provisioning.start(provisioning.provision_arn, {"request": r}) for r in requests]
        progresses = [provisioning.wait(execution, timeout=180) for execution in executions]
    finally:
        clock.time_scale = 1.0
    for progress in progresses:
        assert progress.status == "SUCCEEDED", progress.cause
    directory, certificates = (str(progress.output["result"]["endpoint_id"]) for progress in progresses)
    return directory, certificates
