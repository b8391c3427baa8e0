"""`make demo`: the product end to end on the local cloud, as a person would watch it.

1. Brings the local cloud up and deploys template.yaml on it.
2. Builds a realistic network: a VPC with subnets in three Availability Zones, a security group, an
   Active Directory directory, a server certificate generated with `cryptography` and imported into
   ACM, a connection log group.
3. Provisions the seed scenario through the provisioning state machine (the same definition and
   handlers as on AWS), printing each step as it happens: an AD group SID authorised for 0.0.0.0/0,
   a default route and an on-premises 10.200.0.0/24 route through every associated subnet, a /22
   client CIDR, UDP 443, two AZs.
4. Downloads the client configuration through its presigned link into out/<endpoint>.ovpn.
5. Simulates a few client connections and prints what the connection log recorded.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from localcloud.clock import get_clock

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEED_REQUEST = PROJECT_ROOT / "events" / "requests" / "seed-active-directory.json"


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


def run_demo(*, time_scale: float = 120.0, out_dir: Path = Path("out")) -> int:
    from cvpn.provision import follow_execution, start_provisioning
    from localcloud.clientvpn import connections
    from localcloud.clientvpn.models import clientvpn_backends
    from localcloud.cloud import DEFAULT_ACCOUNT_ID, LocalCloud
    from localcloud.sample_network import build_sample_network

    started = time.monotonic()
    with LocalCloud(time_scale=time_scale) as cloud:
        _say("local cloud up", f"{cloud.endpoint_url}, time scale {time_scale:g}x")
        stack = cloud.deploy(PROJECT_ROOT / "template.yaml", stack_name="cvpn-autopilot", serve=False)
        _say("template.yaml deployed", f"stack {stack.stack_name}, {len(stack.physical_ids)} resources")

        network = build_sample_network(cloud.client, region=cloud.region)
        _say(
            "sample network",
            f"{network.vpc_id} ({network.vpc_cidr}), subnets in {', '.join(network.availability_zones)}, "
            f"directory {network.directory_id}",
        )

        request = seed_request_for(network)
        sfn = cloud.client("stepfunctions")
        execution = start_provisioning(
            sfn, stack.outputs["ProvisionEndpointStateMachineArn"], request, source="demo"
        )
        _say("provisioning", f"request {request['request_id']} from {request['requester']}")
        progress = follow_execution(
            sfn, execution, on_step=lambda step: _say("  step", step), poll_seconds=0.1, timeout_seconds=600
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

        with urllib.request.urlopen(result["client_configuration"]["url"], timeout=30) as response:
            profile = response.read().decode()
        out_dir.mkdir(parents=True, exist_ok=True)
        profile_path = out_dir / f"{endpoint_id}.ovpn"
        profile_path.write_text(profile)
        _say("client configuration", f"downloaded through the presigned link into {profile_path}")

        endpoint = clientvpn_backends[DEFAULT_ACCOUNT_ID][cloud.region].get_endpoint(endpoint_id)
        attempts: list[dict[str, Any]] = [
            {"username": "alice", "device_ip": "198.51.100.7", "outcome": "success"},
            {"username": "bob", "device_ip": "198.51.100.23", "outcome": "success"},
            {
                "username": "mallory",
                "device_ip": "203.0.113.66",
                "outcome": "failure",
                "failure_reason": "Auth failed",
            },
        ]
        for attempt in attempts:
            connections.simulate_connect(endpoint, **attempt)
        live = cloud.client("ec2").describe_client_vpn_connections(ClientVpnEndpointId=endpoint_id)[
            "Connections"
        ]
        _say("connections", f"{len(live)} live")
        for connection in live:
            print(
                f"    {connection['ConnectionId']}  {connection['Username']:<8} {connection['ClientIp']:<14} "
                f"{connection['Status']['Code']}"
            )
        events = cloud.client("logs").filter_log_events(logGroupName=network.log_group_name)["events"]
        _say("connection log", f"{len(events)} records in {network.log_group_name}")
        for event in events:
            record = json.loads(event["message"])
            print(
                f"    {record['connection-attempt-status']:<10} user={record['username']:<8} "
                f"from {record['device-ip']:<14} reason={record['connection-attempt-failure-reason']}"
            )
    print(f"demo finished in {time.monotonic() - started:.1f} s (real time)")
    return 0
