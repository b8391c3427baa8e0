"""Drive the real provisioning state machines on the local cloud, as the product's users do."""

from __future__ import annotations

import json
import time
import uuid
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from cvpn.provision import ExecutionProgress, describe_progress
from localcloud.cloud import DEFAULT_ACCOUNT_ID, LocalCloud
from localcloud.sample_network import SampleNetwork
from localcloud.stack import DeployedStack
from tests.fixtures import REPO_ROOT

ROOT = REPO_ROOT
SEED_REQUEST = ROOT / "events" / "requests" / "seed-active-directory.json"
GROUP_SID = "S-1-5-21-1004336348-1177238915-682003330-512"
REQUEST_ID_TAG = "cvpn-autopilot:request-id"
MANAGED_BY_TAG = "cvpn-autopilot:managed-by"


@dataclass(frozen=True)
class ClientVpnInventory:
    """Every Client VPN endpoint and association that exists, as Describe calls report them."""

    associations: dict[str, frozenset[str]] = field(default_factory=dict)  # endpoint id -> association ids

    @property
    def endpoint_ids(self) -> frozenset[str]:
        return frozenset(self.associations)

    @property
    def association_ids(self) -> frozenset[str]:
        return frozenset(a for ids in self.associations.values() for a in ids)


@dataclass
class Provisioning:
    """A deployed product on a local cloud, with a network to provision into."""

    cloud: LocalCloud
    stack: DeployedStack
    network: SampleNetwork

    @property
    def provision_arn(self) -> str:
        return self.stack.outputs["ProvisionEndpointStateMachineArn"]

    @property
    def decommission_arn(self) -> str:
        return self.stack.outputs["DecommissionEndpointStateMachineArn"]

    def request(self, *, zones: int = 2, **changes: Any) -> dict[str, Any]:
        """The seed request pointed at the sample network, with a fresh request id."""
        request = json.loads(SEED_REQUEST.read_text())
        request.update(
            request_id=f"NET-{uuid.uuid4().hex[:8]}",
            vpc_id=self.network.vpc_id,
            subnet_ids=self.network.subnet_ids[:zones],
            server_certificate_arn=self.network.server_certificate_arn,
            security_group_ids=[self.network.security_group_id],
        )
        request["authentication"] = [{"type": "active-directory", "directory_id": self.network.directory_id}]
        request.update(deepcopy(changes))
        return request

    def start(self, state_machine_arn: str, payload: dict[str, Any], name: str | None = None) -> str:
        """Start an execution (named ``test-<random>`` unless ``name`` is given); its ARN."""
        sfn = self.cloud.client("stepfunctions")
        return str(
            sfn.start_execution(
                stateMachineArn=state_machine_arn,
                name=name or f"test-{uuid.uuid4().hex[:12]}",
                input=json.dumps(payload),
            )["executionArn"]
        )

    def wait(self, execution_arn: str, timeout: float = 120) -> ExecutionProgress:
        """Wait for the execution to end; its status, output, error and the states it entered.

        Polls DescribeExecution only (the history of a long wait loop is large) and reads the
        history once at the end.
        """
        sfn = self.cloud.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still running after {timeout:g} s")
            time.sleep(0.05)
        return describe_progress(sfn, execution_arn)

    def run(self, state_machine_arn: str, payload: dict[str, Any], timeout: float = 120) -> ExecutionProgress:
        return self.wait(self.start(state_machine_arn, payload), timeout)

    def provision(self, request: dict[str, Any], timeout: float = 120) -> ExecutionProgress:
        return self.run(self.provision_arn, {"request": request}, timeout)

    def decommission(self, timeout: float = 120, **target: str) -> ExecutionProgress:
        return self.run(self.decommission_arn, target, timeout)

    # ------------------------------------------------------------------ what exists now
    def live_endpoints(self) -> list[dict[str, Any]]:
        endpoints = self.cloud.client("ec2").describe_client_vpn_endpoints()["ClientVpnEndpoints"]
        return [e for e in endpoints if e["Status"]["Code"] not in ("deleted",)]

    def endpoints_for(self, request_id: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.live_endpoints()
            if {"Key": REQUEST_ID_TAG, "Value": request_id} in e.get("Tags", [])
        ]

    def inventory(self) -> ClientVpnInventory:
        """Every endpoint and association that exists now (DescribeClientVpnEndpoints/TargetNetworks)."""
        ec2 = self.cloud.client("ec2")
        associations = {}
        for endpoint in self.live_endpoints():
            endpoint_id = endpoint["ClientVpnEndpointId"]
            networks = ec2.describe_client_vpn_target_networks(ClientVpnEndpointId=endpoint_id)
            associations[endpoint_id] = frozenset(
                n["AssociationId"] for n in networks["ClientVpnTargetNetworks"]
            )
        return ClientVpnInventory(associations)

    def describe_endpoint(self, endpoint_id: str) -> dict[str, Any] | None:
        """The endpoint as DescribeClientVpnEndpoints reports it; None when the API does not know it."""
        try:
            endpoints = self.cloud.client("ec2").describe_client_vpn_endpoints(
                ClientVpnEndpointIds=[endpoint_id]
            )["ClientVpnEndpoints"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "InvalidClientVpnEndpointId.NotFound":
                return None
            raise
        return endpoints[0] if endpoints else None

    def assert_endpoint_gone(self, endpoint_id: str) -> None:
        """Describe by id answers NotFound, and no listing shows the endpoint."""
        assert self.describe_endpoint(endpoint_id) is None, f"{endpoint_id} still exists"
        assert endpoint_id not in {e["ClientVpnEndpointId"] for e in self.live_endpoints()}

    def record(self, request_id: str) -> dict[str, Any] | None:
        item = self.cloud.client("dynamodb").get_item(
            TableName=self.stack.outputs["RequestsTableName"],
            Key={"request_id": {"S": request_id}},
            ConsistentRead=True,
        )
        return item.get("Item")

    def record_status(self, request_id: str) -> str | None:
        """The status the requests table holds for ``request_id`` (None without a record)."""
        item = self.record(request_id)
        return None if item is None else str(item["status"]["S"])

    def configuration_link(self, result: dict[str, Any]) -> str:
        """A fresh link to the configuration a provisioning stored, made as `cvpn status` makes it."""
        from botocore.config import Config

        from cvpn.provision import configuration_link

        link = configuration_link(self.cloud.client("s3", config=Config(signature_version="s3v4")), result)
        assert link is not None, f"no stored client configuration in {result}"
        return link[0]

    def backend(self) -> Any:
        from localcloud.clientvpn.models import clientvpn_backends

        return clientvpn_backends[DEFAULT_ACCOUNT_ID][self.cloud.region]

    def wait_until_gone(self, endpoint_id: str, timeout: float = 30) -> None:
        """Deleting endpoints disappear after the emulated deletion time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(e["ClientVpnEndpointId"] != endpoint_id for e in self.live_endpoints()):
                return
            time.sleep(0.05)
        raise AssertionError(f"{endpoint_id} still listed")


def failure_message(progress: ExecutionProgress) -> str:
    """The message of the error a failed execution ended with (the Lambda error's errorMessage)."""
    cause = progress.cause or ""
    try:
        payload = json.loads(cause)
    except ValueError:
        return cause
    return str(payload.get("errorMessage", cause)) if isinstance(payload, dict) else cause


@dataclass
class NotificationInbox:
    """An SQS queue subscribed to the product's notifications topic."""

    sqs: Any
    queue_url: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def _drain(self) -> None:
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            messages = answer.get("Messages", [])
            if not messages:
                return
            for message in messages:
                self.received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def notifications_for(self, request_id: str) -> list[dict[str, Any]]:
        """SNS envelopes (Subject, Message, MessageAttributes) published about ``request_id``, in order."""
        self._drain()
        return [
            envelope
            for envelope in self.received
            if envelope.get("MessageAttributes", {}).get("request_id", {}).get("Value") == request_id
        ]
