"""Data access to the live connections of a Client VPN endpoint (describe them, cut them)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

__all__ = ["ClientVpnConnections"]


class ClientVpnConnections:
    """DescribeClientVpnConnections and TerminateClientVpnConnections over one EC2 client."""

    def __init__(self, ec2_client: Any) -> None:
        self._ec2 = ec2_client

    def describe(self, endpoint_id: str) -> list[dict[str, Any]]:
        """Active connections and those ended in the last 60 minutes, every page."""
        connections: list[dict[str, Any]] = []
        params: dict[str, Any] = {"ClientVpnEndpointId": endpoint_id}
        while True:
            page = self._ec2.describe_client_vpn_connections(**params)
            connections.extend(page.get("Connections", []))
            token = page.get("NextToken")
            if not token:
                return connections
            params["NextToken"] = token

    def terminate_user(self, endpoint_id: str, username: str) -> list[dict[str, Any]]:
        """Cut every live session of ``username``; an unknown user (no session) is not an error."""
        try:
            answer = self._ec2.terminate_client_vpn_connections(
                ClientVpnEndpointId=endpoint_id, Username=username
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidClientVpnConnection.UserNotFound":
                return []
            raise
        return list(answer.get("ConnectionStatuses", []))
