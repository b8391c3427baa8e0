"""Data access to the AWS Client VPN API (EC2). boto3 lives here, not in the logic.

Every call goes through ``_call``, which turns the API's throttling, concurrency and server errors into
the named, retryable errors of ``cvpn_shared.provisioning.errors`` (Step Functions retries them by name)
and any other error into ``ClientVpnApiError`` with its code. Idempotency: create-style calls take a
``ClientToken`` derived from the request, so a retried task returns the first result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import error_code
from cvpn_shared.provisioning.errors import ClientVpnApiError, EndpointNotYetVisible, raise_if_retryable

__all__ = ["CHANGE_OPERATIONS", "ClientVpnApi", "error_code"]

T = TypeVar("T")


class ClientVpnApi:
    """The Client VPN operations the product uses, over one EC2 client."""

    def __init__(self, ec2_client: Any) -> None:
        self._ec2 = ec2_client

    def _call(self, operation: str, method: Callable[..., T], **params: Any) -> T:
        try:
            return method(**params)
        except ClientError as error:
            raise_if_retryable(error, operation)
            message = str(error.response.get("Error", {}).get("Message", ""))
            raise ClientVpnApiError(error_code(error), message, operation) from error

    def _pages(self, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        method = getattr(self._ec2, _snake(operation))
        token: str | None = None
        while True:
            page = self._call(operation, method, **params, **({"NextToken": token} if token else {}))
            yield from page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return

    # --------------------------------------------------------------------------- endpoints
    def create_endpoint(self, **params: Any) -> dict[str, Any]:
        return self._call("CreateClientVpnEndpoint", self._ec2.create_client_vpn_endpoint, **params)

    def describe_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """The endpoint; raises EndpointNotYetVisible when Describe does not know it (yet)."""
        endpoints = list(
            self._pages(
                "DescribeClientVpnEndpoints", "ClientVpnEndpoints", ClientVpnEndpointIds=[endpoint_id]
            )
        )
        if not endpoints:
            raise EndpointNotYetVisible(f"DescribeClientVpnEndpoints: {endpoint_id} not found")
        return endpoints[0]

    def list_endpoints(self) -> list[dict[str, Any]]:
        return list(self._pages("DescribeClientVpnEndpoints", "ClientVpnEndpoints"))

    def tag_endpoint(self, endpoint_id: str, tags: dict[str, str]) -> None:
        self._call(
            "CreateTags",
            self._ec2.create_tags,
            Resources=[endpoint_id],
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
        )

    def delete_endpoint(self, endpoint_id: str) -> None:
        self._call(
            "DeleteClientVpnEndpoint", self._ec2.delete_client_vpn_endpoint, ClientVpnEndpointId=endpoint_id
        )

    def import_revocation_list(self, endpoint_id: str, revocation_list_pem: str) -> None:
        """Replace the endpoint's client certificate revocation list (an import replaces the last)."""
        self._call(
            "ImportClientVpnClientCertificateRevocationList",
            self._ec2.import_client_vpn_client_certificate_revocation_list,
            ClientVpnEndpointId=endpoint_id,
            CertificateRevocationList=revocation_list_pem,
        )

    # --------------------------------------------------------------------------- associations
    def associate(self, endpoint_id: str, subnet_id: str, client_token: str) -> dict[str, Any]:
        return self._call(
            "AssociateClientVpnTargetNetwork",
            self._ec2.associate_client_vpn_target_network,
            ClientVpnEndpointId=endpoint_id,
            SubnetId=subnet_id,
            ClientToken=client_token,
        )

    def target_networks(self, endpoint_id: str) -> list[dict[str, Any]]:
        return list(
            self._pages(
                "DescribeClientVpnTargetNetworks", "ClientVpnTargetNetworks", ClientVpnEndpointId=endpoint_id
            )
        )

    def disassociate(self, endpoint_id: str, association_id: str) -> None:
        self._call(
            "DisassociateClientVpnTargetNetwork",
            self._ec2.disassociate_client_vpn_target_network,
            ClientVpnEndpointId=endpoint_id,
            AssociationId=association_id,
        )

    def apply_security_groups(
        self, endpoint_id: str, vpc_id: str, security_group_ids: list[str]
    ) -> list[str]:
        answer = self._call(
            "ApplySecurityGroupsToClientVpnTargetNetwork",
            self._ec2.apply_security_groups_to_client_vpn_target_network,
            ClientVpnEndpointId=endpoint_id,
            VpcId=vpc_id,
            SecurityGroupIds=security_group_ids,
        )
        return list(answer.get("SecurityGroupIds", []))

    # --------------------------------------------------------------------------- rules
    def authorize(self, endpoint_id: str, client_token: str, **params: Any) -> dict[str, Any]:
        return self._call(
            "AuthorizeClientVpnIngress",
            self._ec2.authorize_client_vpn_ingress,
            ClientVpnEndpointId=endpoint_id,
            ClientToken=client_token,
            **params,
        )

    def authorization_rules(self, endpoint_id: str) -> list[dict[str, Any]]:
        return list(
            self._pages(
                "DescribeClientVpnAuthorizationRules", "AuthorizationRules", ClientVpnEndpointId=endpoint_id
            )
        )

    def revoke(self, endpoint_id: str, target_network_cidr: str, access_group_id: str | None) -> None:
        params: dict[str, Any] = {
            "ClientVpnEndpointId": endpoint_id,
            "TargetNetworkCidr": target_network_cidr,
        }
        if access_group_id:
            params["AccessGroupId"] = access_group_id
        else:
            params["RevokeAllGroups"] = True
        self._call("RevokeClientVpnIngress", self._ec2.revoke_client_vpn_ingress, **params)

    # --------------------------------------------------------------------------- routes
    def create_route(
        self, endpoint_id: str, destination_cidr: str, subnet_id: str, description: str, client_token: str
    ) -> dict[str, Any]:
        return self._call(
            "CreateClientVpnRoute",
            self._ec2.create_client_vpn_route,
            ClientVpnEndpointId=endpoint_id,
            DestinationCidrBlock=destination_cidr,
            TargetVpcSubnetId=subnet_id,
            Description=description,
            ClientToken=client_token,
        )

    def routes(self, endpoint_id: str) -> list[dict[str, Any]]:
        return list(self._pages("DescribeClientVpnRoutes", "Routes", ClientVpnEndpointId=endpoint_id))

    def delete_route(self, endpoint_id: str, destination_cidr: str, subnet_id: str) -> None:
        self._call(
            "DeleteClientVpnRoute",
            self._ec2.delete_client_vpn_route,
            ClientVpnEndpointId=endpoint_id,
            DestinationCidrBlock=destination_cidr,
            TargetVpcSubnetId=subnet_id,
        )

    # --------------------------------------------------------------------------- connections
    def connections(self, endpoint_id: str) -> list[dict[str, Any]]:
        """Every connection DescribeClientVpnConnections lists (active and recently ended)."""
        return list(
            self._pages("DescribeClientVpnConnections", "Connections", ClientVpnEndpointId=endpoint_id)
        )

    def revocation_list(self, endpoint_id: str) -> str | None:
        """The client certificate revocation list (PEM) imported into the endpoint; None when none is."""
        answer = self._call(
            "ExportClientVpnClientCertificateRevocationList",
            self._ec2.export_client_vpn_client_certificate_revocation_list,
            ClientVpnEndpointId=endpoint_id,
        )
        return str(answer.get("CertificateRevocationList") or "") or None

    # --------------------------------------------------------------------------- configuration
    def export_client_configuration(self, endpoint_id: str) -> str:
        answer = self._call(
            "ExportClientVpnClientConfiguration",
            self._ec2.export_client_vpn_client_configuration,
            ClientVpnEndpointId=endpoint_id,
        )
        return str(answer["ClientConfiguration"])

    # --------------------------------------------------------------------------- plan changes
    def perform(self, operation: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """Make one call of a plan (``Change.forward`` or ``Change.undo``); only the calls that change
        an endpoint in place, so a plan can never delete or create an endpoint."""
        if operation not in CHANGE_OPERATIONS:
            raise ClientVpnApiError(
                "UnsupportedOperation", f"a plan may not call {operation}", operation or "(none)"
            )
        method = getattr(self._ec2, _snake(operation))
        answer = self._call(operation, method, **parameters)
        answer.pop("ResponseMetadata", None)
        return dict(answer)


# The operations a plan's changes (and their undos) may call.
CHANGE_OPERATIONS = frozenset(
    {
        "ModifyClientVpnEndpoint",
        "ImportClientVpnClientCertificateRevocationList",
        "ApplySecurityGroupsToClientVpnTargetNetwork",
        "AssociateClientVpnTargetNetwork",
        "DisassociateClientVpnTargetNetwork",
        "AuthorizeClientVpnIngress",
        "RevokeClientVpnIngress",
        "CreateClientVpnRoute",
        "DeleteClientVpnRoute",
        "CreateTags",
        "DeleteTags",
    }
)


def _snake(operation: str) -> str:
    out = []
    for index, char in enumerate(operation):
        if char.isupper() and index:
            out.append("_")
        out.append(char.lower())
    return "".join(out)
