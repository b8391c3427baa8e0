"""`make demo`: the product end to end on the local cloud, as a person would watch it.

1. Brings the local cloud up and deploys template.yaml on it (HTTP API and schedules served).
2. Builds a realistic network: a VPC with subnets in three Availability Zones, a security group, an
   Active Directory directory, a server certificate generated with `cryptography` and imported into
   ACM, a connection log group.
3. Configures the intake as an operator does: a signing secret and a mapping parameter for Jira.
4. A Jira ticket is approved: its signed webhook reaches `POST /webhooks/jira`, which starts the
   intake workflow, which runs the provisioning state machine (the same definitions and handlers as
   on AWS). Each provisioning step is printed as it happens. The seed scenario: an AD group SID
   authorised for 0.0.0.0/0, a default route and an on-premises 10.200.0.0/24 route through every
   associated subnet, a /22 client CIDR, UDP 443, two AZs, the client-connect handler on.
5. Downloads the client configuration through a presigned link made then into out/<endpoint>.ovpn.
6. Monitoring: users connect, an attacker sprays passwords from one address, the scheduled ingest
   flags it, the alert is delivered, and the attacker's next attempt is refused.
7. Update in place: a second document adds an office route and a group; the plan shows it, the
   update state machine applies it, the endpoint keeps its id and DNS name.
8. Access grants: the endpoint becomes a grants profile's shared endpoint; a person asks on the
   request form for two hours of access, an approver confirms the signed link (the requester cannot),
   the person connects, another without a grant is refused, and at the grant's end the expiry
   schedule ends it and cuts the session. Nothing is provisioned for the request.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from cvpn.common import project_dir
from localcloud.clock import get_clock

PROJECT_ROOT = project_dir()
WEBHOOKS = PROJECT_ROOT / "events" / "webhooks"
SEED_REQUEST = PROJECT_ROOT / "events" / "requests" / "seed-active-directory.json"
DEMO_JIRA_SECRET = "demo-jira-signing-secret"


def _say(step: str, detail: str = "") -> None:
    print(f"[{get_clock().now():%H:%M:%S} emulated] {step}{(': ' + detail) if detail else ''}", flush=True)


def seed_request_for(network: Any) -> dict[str, Any]:
    """The seed request (events/requests/seed-active-directory.json) pointed at ``network``."""
    request: dict[str, Any] = json.loads(SEED_REQUEST.read_text())
    request.update(
        vpc_id=network.vpc_id,
        subnet_ids=network.subnet_ids[:2],
        server_certificate_arn=network.server_certificate_arn,
        security_group_ids=[network.security_group_id],
    )
    request["authentication"] = [{"type": "active-directory", "directory_id": network.directory_id}]
    request["connection_log"]["log_group_name"] = network.log_group_name
    return request


def configure_jira_source(cloud: Any, stack: Any, network: Any) -> None:
    """What an operator does once: the signing secret and the mapping parameter of the Jira source."""
    prefix = stack.outputs["IntakeSecretsPrefix"]
    cloud.client("secretsmanager").create_secret(
        Name=f"{prefix}jira", SecretString=json.dumps({"current": DEMO_JIRA_SECRET, "previous": ""})
    )
    config = json.loads((WEBHOOKS / "sources" / "jira.json").read_text())
    config["secret_id"] = f"{prefix}jira"
    config.pop("callback", None)  # no ticket system to comment on in the demo
    config["defaults"].update(
        vpc_id=network.vpc_id,
        subnet_ids=network.subnet_ids[:2],
        server_certificate_arn=network.server_certificate_arn,
        authentication=[{"type": "active-directory", "directory_id": network.directory_id}],
        security_group_ids=[network.security_group_id],
        connection_log={"enabled": True, "log_group_name": network.log_group_name, "retention_days": 90},
        client_connect_handler=True,
    )
    cloud.client("ssm").put_parameter(
        Name=f"{stack.outputs['IntakeSourcesParameterPath']}/jira", Type="String", Value=json.dumps(config)
    )


def seed_ticket() -> bytes:
    """The approved Jira ticket of the seed scenario, as Jira sends it."""
    payload = json.loads((WEBHOOKS / "jira-issue-updated.json").read_text())
    seed = json.loads(SEED_REQUEST.read_text())
    fields = payload["issue"]["fields"]
    payload["issue"]["key"] = seed["request_id"]
    fields["summary"] = seed["description"]
    fields["reporter"]["emailAddress"] = seed["requester"]
    fields["customfield_10050"] = seed["name"]
    fields["customfield_10051"] = seed["client_cidr_block"]
    fields["customfield_10052"] = seed["authorization_rules"][0]["access_group_id"]
    fields["customfield_10053"]["value"] = seed["transport_protocol"]
    fields["customfield_10054"] = ", ".join(route["destination_cidr"] for route in seed["routes"])
    return json.dumps(payload, indent=1).encode()


def _child_execution(sfn: Any, provision_arn: str, request_id: str, timeout: float = 120) -> str:
    """The provisioning execution the intake started for ``request_id``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for execution in sfn.list_executions(stateMachineArn=provision_arn)["executions"]:
            if request_id in execution["name"]:
                return str(execution["executionArn"])
        time.sleep(0.1)
    raise TimeoutError(f"no provisioning execution for {request_id} after {timeout:g} s")


def run_demo(*, time_scale: float = 120.0, out_dir: Path = Path("out")) -> int:
    from botocore.config import Config

    from cvpn.intake_cli import signed_headers, submit_webhook
    from cvpn.monitoring_demo import run_attack_scenario
    from cvpn.provision import configuration_link, follow_execution
    from localcloud.cloud import LocalCloud
    from localcloud.sample_network import build_sample_network

    started = time.monotonic()
    with LocalCloud(time_scale=time_scale) as cloud:
        _say("local cloud up", f"{cloud.endpoint_url}, time scale {time_scale:g}x")
        stack = cloud.deploy(PROJECT_ROOT / "template.yaml", stack_name="cvpn-autopilot")
        _say("template.yaml deployed", f"stack {stack.stack_name}, {len(stack.physical_ids)} resources")
        _say("HTTP API", f"{cloud.api_url} (request form at {cloud.api_url}/)")

        network = build_sample_network(cloud.client, region=cloud.region)
        _say(
            "sample network",
            f"{network.vpc_id} ({network.vpc_cidr}), subnets in {', '.join(network.availability_zones)}, "
            f"directory {network.directory_id}",
        )
        configure_jira_source(cloud, stack, network)
        _say("intake configured", "Jira source: signing secret in Secrets Manager, field mapping in SSM")

        assert cloud.api_url is not None
        body = seed_ticket()
        headers = signed_headers(
            "jira", body, DEMO_JIRA_SECRET, timestamp=int(time.time()), delivery_id=str(uuid.uuid4())
        )
        status, answer = submit_webhook(cloud.api_url, "jira", body, headers)
        _say("Jira webhook", f"POST /webhooks/jira -> HTTP {status} {json.dumps(answer)}")
        if status != 202:
            return 1
        request_id = answer["request_id"]

        sfn = cloud.client("stepfunctions")
        provisioning = _child_execution(sfn, stack.outputs["ProvisionEndpointStateMachineArn"], request_id)
        _say("provisioning", f"request {request_id}")
        progress = follow_execution(
            sfn,
            provisioning,
            on_step=lambda step: _say("  step", step),
            poll_seconds=0.1,
            timeout_seconds=600,
        )
        if progress.status != "SUCCEEDED":
            _say("provisioning FAILED", f"{progress.error}: {progress.cause}")
            return 1
        result = progress.output["result"]
        endpoint_id = result["endpoint_id"]
        _say("endpoint ready", f"{endpoint_id} is {result['status']} ({result['dns_name']})")
        for association in result["associations"]:
            assoc_id, subnet_id = association["association_id"], association["subnet_id"]
            print(f"    association {assoc_id}  {subnet_id}  {association['status']}")
        for rule in result["authorization_rules"]:
            print(
                f"    rule        {rule['target_network_cidr']:<16} group {rule['access_group_id'] or 'all'}"
            )
        for route in result["routes"]:
            cidr, subnet_id = route["destination_cidr"], route["subnet_id"]
            print(f"    route       {cidr:<16} via {subnet_id}  ({route['origin']})")
        print(f"    cost        {result['cost']['hourly_usd']} USD/hour ({result['cost']['basis']})")

        # The workflow names where the configuration is stored; the link is made now, as `cvpn status` does.
        link = configuration_link(cloud.client("s3", config=Config(signature_version="s3v4")), result)
        assert link is not None, "the provisioning stored no client configuration"
        with urllib.request.urlopen(link[0], timeout=30) as response:
            profile = response.read().decode()
        out_dir.mkdir(parents=True, exist_ok=True)
        profile_path = out_dir / f"{endpoint_id}.ovpn"
        profile_path.write_text(profile)
        _say("client configuration", f"downloaded through a fresh presigned link into {profile_path}")

        summary = run_attack_scenario(cloud, stack, endpoint_id, log_group_name=network.log_group_name)
        if not summary.attacker_refused:
            _say("monitoring FAILED", "the attacker was not refused")
            return 1

        from cvpn.update_demo import run_update_chapter

        if not run_update_chapter(cloud, stack, request_id, _say):
            return 1

        from cvpn.grants_demo import run_grants_chapter
        from localcloud.clientvpn.connections import simulate_connect_by_id

        def login(user: str) -> Any:
            return simulate_connect_by_id(
                stack.account_id, cloud.region, endpoint_id, username=user, device_ip="198.51.100.40"
            )

        if not run_grants_chapter(cloud, stack, network, endpoint_id, request_id, connect=login, say=_say):
            return 1
    print(f"demo finished in {time.monotonic() - started:.1f} s (real time)")
    return 0
