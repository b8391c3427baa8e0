"""`make demo`: the local cloud end to end, as a person would watch it.

Brings the local cloud up with template.yaml deployed, builds a sample network, drives a Client VPN
endpoint through the API to `available` (associations in two Availability Zones, an Active Directory
group authorised for 0.0.0.0/0, a default route and an on-premises route through every associated
subnet), exports the client configuration, simulates a few client connections and prints what the
connection log recorded.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from localcloud.clock import get_clock

PROJECT_ROOT = Path(__file__).resolve().parent.parent
GROUP_SID = "S-1-5-21-1004336348-1177238915-682003330-512"


def _say(step: str, detail: str = "") -> None:
    clock = get_clock()
    print(f"[{clock.now():%H:%M:%S} emulated] {step}{(': ' + detail) if detail else ''}", flush=True)


def _wait_until(
    predicate: Any, *, what: str, poll_seconds: float = 10.0, timeout_seconds: float = 1800.0
) -> None:
    """Poll in emulated time until ``predicate()`` is true."""
    clock = get_clock()
    deadline = clock.timestamp() + timeout_seconds
    while not predicate():
        if clock.timestamp() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout_seconds:g} emulated seconds")
        clock.sleep(poll_seconds)


def run_demo(*, time_scale: float = 120.0, out_dir: Path = Path("out")) -> int:
    from localcloud.clientvpn import connections
    from localcloud.clientvpn.models import clientvpn_backends
    from localcloud.cloud import DEFAULT_ACCOUNT_ID, LocalCloud
    from localcloud.sample_network import build_sample_network

    started = time.monotonic()
    with LocalCloud(time_scale=time_scale) as cloud:
        _say("local cloud up", f"{cloud.endpoint_url}, time scale {time_scale:g}x")
        stack = cloud.deploy(PROJECT_ROOT / "template.yaml", stack_name="cvpn-autopilot")
        _say("template.yaml deployed", f"stack {stack.stack_name}, {len(stack.physical_ids)} resources")

        network = build_sample_network(cloud.client, region=cloud.region)
        _say(
            "sample network",
            f"{network.vpc_id} ({network.vpc_cidr}), subnets in {', '.join(network.availability_zones)}, "
            f"directory {network.directory_id}",
        )
        ec2 = cloud.client("ec2")
        endpoint = ec2.create_client_vpn_endpoint(
            ClientCidrBlock="172.16.0.0/22",
            ServerCertificateArn=network.server_certificate_arn,
            AuthenticationOptions=[
                {
                    "Type": "directory-service-authentication",
                    "ActiveDirectory": {"DirectoryId": network.directory_id},
                }
            ],
            ConnectionLogOptions={"Enabled": True, "CloudwatchLogGroup": network.log_group_name},
            TransportProtocol="udp",
            VpnPort=443,
            SplitTunnel=False,
            VpcId=network.vpc_id,
            SecurityGroupIds=[network.security_group_id],
            Description="demo: remote access for engineering",
            TagSpecifications=[
                {"ResourceType": "client-vpn-endpoint", "Tags": [{"Key": "Name", "Value": "cvpn-demo"}]}
            ],
            ClientToken="demo-endpoint-1",
        )
        endpoint_id = endpoint["ClientVpnEndpointId"]
        _say("endpoint created", f"{endpoint_id} is {endpoint['Status']['Code']}")

        for subnet_id in network.subnet_ids[:2]:
            association = ec2.associate_client_vpn_target_network(
                ClientVpnEndpointId=endpoint_id, SubnetId=subnet_id, ClientToken=f"demo-assoc-{subnet_id}"
            )
            _say(
                "associating",
                f"{subnet_id} -> {association['AssociationId']} {association['Status']['Code']}",
            )

        def associated() -> bool:
            networks = ec2.describe_client_vpn_target_networks(ClientVpnEndpointId=endpoint_id)[
                "ClientVpnTargetNetworks"
            ]
            return all(item["Status"]["Code"] == "associated" for item in networks)

        _wait_until(associated, what="subnet associations")
        state = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]
        _say("associations complete", f"endpoint is {state['Status']['Code']}")

        ec2.authorize_client_vpn_ingress(
            ClientVpnEndpointId=endpoint_id,
            TargetNetworkCidr="0.0.0.0/0",
            AccessGroupId=GROUP_SID,
            Description="engineering to everywhere",
        )
        for subnet_id in network.subnet_ids[:2]:
            for cidr, description in (("0.0.0.0/0", "default route"), ("10.200.0.0/24", "on-premises")):
                ec2.create_client_vpn_route(
                    ClientVpnEndpointId=endpoint_id,
                    DestinationCidrBlock=cidr,
                    TargetVpcSubnetId=subnet_id,
                    Description=description,
                )

        def rules_and_routes_active() -> bool:
            rules = ec2.describe_client_vpn_authorization_rules(ClientVpnEndpointId=endpoint_id)[
                "AuthorizationRules"
            ]
            routes = ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"]
            return all(r["Status"]["Code"] == "active" for r in rules + routes)

        _wait_until(rules_and_routes_active, what="authorization rules and routes")
        routes = ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"]
        _say("rules and routes active", f"{len(routes)} routes")
        for route in routes:
            print(f"    {route['DestinationCidr']:<16} via {route['TargetSubnet']}  origin {route['Origin']}")

        profile = ec2.export_client_vpn_client_configuration(ClientVpnEndpointId=endpoint_id)[
            "ClientConfiguration"
        ]
        out_dir.mkdir(parents=True, exist_ok=True)
        profile_path = out_dir / f"{endpoint_id}.ovpn"
        profile_path.write_text(profile)
        _say("client configuration", f"written to {profile_path}")

        endpoint_model = clientvpn_backends[DEFAULT_ACCOUNT_ID][cloud.region].get_endpoint(endpoint_id)
        attempts = [
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
            connections.simulate_connect(endpoint_model, **attempt)
        live = ec2.describe_client_vpn_connections(ClientVpnEndpointId=endpoint_id)["Connections"]
        _say("connections", f"{len(live)} live")
        for connection in live:
            print(
                f"    {connection['ConnectionId']}  {connection['Username']:<8} {connection['ClientIp']:<14} "
                f"{connection['Status']['Code']}"
            )

        logs = cloud.client("logs")
        events = logs.filter_log_events(logGroupName=network.log_group_name)["events"]
        _say("connection log", f"{len(events)} records in {network.log_group_name}")
        for event in events:
            record = json.loads(event["message"])
            print(
                f"    {record['connection-attempt-status']:<10} user={record.get('username')} "
                f"from {record['device-ip']} reason={record['connection-attempt-failure-reason']}"
            )
    print(f"demo finished in {time.monotonic() - started:.1f} s (real time)")
    return 0
