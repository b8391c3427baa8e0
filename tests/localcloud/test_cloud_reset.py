"""LocalCloud.reset(): moto's state is process-wide, so this runs with no other local cloud alive."""

from __future__ import annotations

from localcloud.cloud import LocalCloud
from localcloud.sample_network import build_sample_network


def test_reset_forgets_every_resource() -> None:
    """A separate local cloud: after reset(), the Client VPN endpoints and VPCs made before are gone."""
    with LocalCloud(time_scale=60.0) as other:
        network = build_sample_network(other.client, region=other.region)
        ec2 = other.client("ec2")
        ec2.create_client_vpn_endpoint(
            ClientCidrBlock="172.16.0.0/22",
            ServerCertificateArn=network.server_certificate_arn,
            AuthenticationOptions=[
                {
                    "Type": "directory-service-authentication",
                    "ActiveDirectory": {"DirectoryId": network.directory_id},
                }
            ],
            ConnectionLogOptions={"Enabled": False},
        )
        assert len(ec2.describe_client_vpn_endpoints()["ClientVpnEndpoints"]) == 1
        other.reset()
        assert ec2.describe_client_vpn_endpoints()["ClientVpnEndpoints"] == []
        assert network.vpc_id not in {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
