"""Data access to the live connections of a Client VPN endpoint (describe them, cut them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import error_code

__all__ = ["ClientVpnConnections"]

ACTIVE = "active"
# TerminateClientVpnConnections by Username: "can only be used if the user has established up to five
# connections" (EC2 API reference).
MAX_CONNECTIONS_BY_USERNAME = 5
# Refusals that say nothing about the by-user form: the caller must see them.
_RAISED_AS_THEY_ARE = frozenset(
    {
        "UnauthorizedOperation",
        "AccessDenied",
        "AccessDeniedException",
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "InvalidClientVpnEndpointId.NotFound",
    }
)


class ClientVpnConnections:
    """DescribeClientVpnConnections and TerminateClientVpnConnections over one EC2 client.

    TerminateClientVpnConnections takes a ConnectionId or a Username, and a Username is the user name
    of an Active Directory or SAML user; a connection authenticated by certificate alone has none
    (DescribeClientVpnConnections gives its ``CommonName``, and filters by ``connection-id`` and
    ``username`` only). So a certificate user's connections are listed, matched on ``CommonName``
    here, and cut one ConnectionId at a time (botocore's ec2 model, 2016-11-15).
    """

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
        """Cut every live session of the Active Directory or SAML user ``username``; an unknown user
        (no session) is not an error.

        One call by ``Username`` first. AWS documents that form for a user with up to five
        connections, so when it cut five, or refused the form itself, the user's connections that
        are still active are then cut one ConnectionId at a time. Errors of permission and
        throttling are raised as they are.
        """
        statuses: list[dict[str, Any]] = []
        try:
            answer = self._ec2.terminate_client_vpn_connections(
                ClientVpnEndpointId=endpoint_id, Username=username
            )
        except ClientError as error:
            code = error_code(error)
            if code == "InvalidClientVpnConnection.UserNotFound":
                return []
            if code in _RAISED_AS_THEY_ARE:
                raise
        else:
            statuses = list(answer.get("ConnectionStatuses", []))
            if len(statuses) < MAX_CONNECTIONS_BY_USERNAME:
                return statuses
        cut = {str(status.get("ConnectionId")) for status in statuses}
        return statuses + self._terminate_each(
            endpoint_id, lambda connection: connection.get("Username") == username, skip=cut
        )

    def terminate_common_name(self, endpoint_id: str, common_name: str) -> list[dict[str, Any]]:
        """Cut every active connection whose client certificate's common name is ``common_name``
        (exactly, as the connection log gave it), one by one; a connection that ended meanwhile is
        not an error. The statuses of the connections cut."""
        return self._terminate_each(
            endpoint_id, lambda connection: connection.get("CommonName") == common_name, skip=set()
        )

    def terminate_user_connections(
        self, endpoint_id: str, user: str, connection_ids: frozenset[str]
    ) -> list[dict[str, Any]]:
        """Cut the active connections among ``connection_ids`` whose user name or certificate common
        name is ``user``, one by one; the statuses of the connections cut."""
        if not connection_ids:
            return []
        return self._terminate_each(
            endpoint_id,
            lambda connection: (
                connection.get("ConnectionId") in connection_ids
                and user in (connection.get("Username"), connection.get("CommonName"))
            ),
            skip=set(),
        )

    def _terminate_each(
        self, endpoint_id: str, matches: Callable[[dict[str, Any]], bool], *, skip: set[str]
    ) -> list[dict[str, Any]]:
        """Cut the active connections ``matches`` accepts (not those in ``skip``), one ConnectionId at
        a time; one that ended meanwhile is skipped."""
        statuses: list[dict[str, Any]] = []
        for connection in self.describe(endpoint_id):
            if not matches(connection) or connection.get("ConnectionId") in skip:
                continue
            if connection.get("Status", {}).get("Code") != ACTIVE:
                continue
            try:
                answer = self._ec2.terminate_client_vpn_connections(
                    ClientVpnEndpointId=endpoint_id, ConnectionId=connection["ConnectionId"]
                )
            except ClientError as error:
                if error_code(error) == "InvalidClientVpnConnection.IdNotFound":
                    continue
                raise
            statuses.extend(answer.get("ConnectionStatuses", []))
        return statuses
