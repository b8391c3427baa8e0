"""EC2 response methods for the Client VPN API, attached to moto's ``EC2Response``.

moto dispatches an EC2 action to the ``EC2Response`` method named after it in snake_case and
serializes the returned ``ActionResult`` from botocore's output shape; ``install()`` adds one
method per Client VPN operation. Every method first counts the call
(``localcloud.faults.api_call_counts``) and asks the fault injector whether to fail it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.responses import EC2Response

from localcloud.clientvpn import references
from localcloud.clientvpn.exceptions import ClientVpnError, UnsupportedOperation
from localcloud.clientvpn.models import BACKEND_LOCK, ClientVpnBackend, clientvpn_backends
from localcloud.clientvpn.paging import paginate
from localcloud.clientvpn.profile import build_client_configuration
from localcloud.faults import get_fault_injector, record_api_call

# What moto's call_action sends as it is: the body and the headers, the status among them.
Answer = tuple[str, dict[str, Any]]
ResponseMethod = Callable[[Any], ActionResult | Answer]

# Client VPN operations in botocore's EC2 model that the local cloud answers with UnsupportedOperation.
UNSUPPORTED_OPERATIONS = (
    "GetClientVpnEndpointAuthorizationPolicy",
    "ModifyClientVpnEndpointAuthorizationPolicy",
    "DeleteClientVpnEndpointAuthorizationPolicy",
    "AcceptTransitGatewayClientVpnAttachment",
    "RejectTransitGatewayClientVpnAttachment",
    "DeleteTransitGatewayClientVpnAttachment",
)


@functools.lru_cache(maxsize=1)
def _ec2_service_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("ec2")


def _request(
    response: Any, operation: str, exclude: Iterable[str] = ("DryRun", "ClientToken")
) -> dict[str, Any]:
    """Every parameter of ``operation`` the caller sent, parsed by moto from the botocore model."""
    members = _ec2_service_model().operation_model(operation).input_shape.members
    request = {}
    for name in members:
        if name in exclude:
            continue
        value = response._get_param(name)
        if value is not None:
            request[name] = value
    return request


def _backend(response: Any) -> ClientVpnBackend:
    return clientvpn_backends[response.current_account][response.region]


def _begin(response: Any, operation: str) -> str | None:
    """Count the call, let the fault injector speak, honour DryRun; return the endpoint id."""
    endpoint_id = response._get_param("ClientVpnEndpointId")
    named = [endpoint_id] if endpoint_id else list(response._get_param("ClientVpnEndpointIds") or [])
    record_api_call(operation)
    get_fault_injector().before_call(operation, named)
    response.error_on_dryrun()
    return endpoint_id  # type: ignore[no-any-return]


def _page(response: Any, key: str, items: list[dict[str, Any]]) -> ActionResult:
    page, token = paginate(items, response._get_param("MaxResults"), response._get_param("NextToken"))
    result: dict[str, Any] = {key: page}
    if token:
        result["NextToken"] = token
    return ActionResult(result)


# -- endpoints ---------------------------------------------------------------------------------
def create_client_vpn_endpoint(self: Any) -> ActionResult:
    _begin(self, "CreateClientVpnEndpoint")
    request = _request(self, "CreateClientVpnEndpoint")
    backend = _backend(self)

    def create() -> dict[str, Any]:
        endpoint = backend.create_endpoint(request)
        get_fault_injector().record_endpoint_created(endpoint.id, endpoint.created_at)
        return {
            "ClientVpnEndpointId": endpoint.id,
            "Status": {"Code": "pending-associate"},
            "DnsName": endpoint.dns_name,
        }

    return ActionResult(
        backend.idempotent("CreateClientVpnEndpoint", self._get_param("ClientToken"), request, create)
    )


def modify_client_vpn_endpoint(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "ModifyClientVpnEndpoint")
    _backend(self).modify_endpoint(endpoint_id or "", _request(self, "ModifyClientVpnEndpoint"))
    return ActionResult({"Return": True})


def delete_client_vpn_endpoint(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "DeleteClientVpnEndpoint")
    endpoint = _backend(self).delete_endpoint(endpoint_id or "")
    return ActionResult({"Status": {"Code": endpoint.state}})


def describe_client_vpn_endpoints(self: Any) -> ActionResult:
    _begin(self, "DescribeClientVpnEndpoints")
    endpoints = _backend(self).describe_endpoints(
        list(self._get_param("ClientVpnEndpointIds") or []), self._filters_from_querystring()
    )
    hidden = get_fault_injector().endpoints_not_yet_visible("DescribeClientVpnEndpoints")
    endpoints = [e for e in endpoints if e["ClientVpnEndpointId"] not in hidden]
    return _page(self, "ClientVpnEndpoints", endpoints)


# -- target networks ---------------------------------------------------------------------------
def associate_client_vpn_target_network(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "AssociateClientVpnTargetNetwork") or ""
    request = _request(self, "AssociateClientVpnTargetNetwork")
    backend = _backend(self)

    def associate() -> dict[str, Any]:
        association = backend.associate_target_network(
            endpoint_id, request.get("SubnetId"), get_fault_injector().association_failure
        )
        return {"AssociationId": association.id, "Status": {"Code": "associating"}}

    return ActionResult(
        backend.idempotent(
            "AssociateClientVpnTargetNetwork", self._get_param("ClientToken"), request, associate
        )
    )


def disassociate_client_vpn_target_network(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "DisassociateClientVpnTargetNetwork") or ""
    association = _backend(self).disassociate_target_network(endpoint_id, self._get_param("AssociationId"))
    return ActionResult({"AssociationId": association.id, "Status": {"Code": "disassociating"}})


def describe_client_vpn_target_networks(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "DescribeClientVpnTargetNetworks") or ""
    networks = _backend(self).describe_target_networks(
        endpoint_id, list(self._get_param("AssociationIds") or []), self._filters_from_querystring()
    )
    return _page(self, "ClientVpnTargetNetworks", networks)


def apply_security_groups_to_client_vpn_target_network(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "ApplySecurityGroupsToClientVpnTargetNetwork") or ""
    group_ids = _backend(self).apply_security_groups(
        endpoint_id, self._get_param("VpcId"), list(self._get_param("SecurityGroupIds") or [])
    )
    return ActionResult({"SecurityGroupIds": group_ids})


# -- authorization rules -----------------------------------------------------------------------
def authorize_client_vpn_ingress(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "AuthorizeClientVpnIngress") or ""
    request = _request(self, "AuthorizeClientVpnIngress")
    backend = _backend(self)

    def authorize() -> dict[str, Any]:
        rule = backend.authorize_ingress(
            endpoint_id,
            request.get("TargetNetworkCidr", ""),
            request.get("AccessGroupId"),
            bool(request.get("AuthorizeAllGroups", False)),
            request.get("Description"),
        )
        rule.fails = get_fault_injector().settle_failure("AuthorizeClientVpnIngress")
        return {"Status": {"Code": "authorizing"}}

    return ActionResult(
        backend.idempotent("AuthorizeClientVpnIngress", self._get_param("ClientToken"), request, authorize)
    )


def revoke_client_vpn_ingress(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "RevokeClientVpnIngress") or ""
    _backend(self).revoke_ingress(
        endpoint_id,
        self._get_param("TargetNetworkCidr") or "",
        self._get_param("AccessGroupId"),
        bool(self._get_param("RevokeAllGroups", False)),
    )
    return ActionResult({"Status": {"Code": "revoking"}})


def describe_client_vpn_authorization_rules(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "DescribeClientVpnAuthorizationRules") or ""
    rules = _backend(self).describe_authorization_rules(endpoint_id, self._filters_from_querystring())
    return _page(self, "AuthorizationRules", rules)


# -- routes ------------------------------------------------------------------------------------
def create_client_vpn_route(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "CreateClientVpnRoute") or ""
    request = _request(self, "CreateClientVpnRoute")
    backend = _backend(self)

    def create() -> dict[str, Any]:
        route = backend.create_route(
            endpoint_id,
            request.get("DestinationCidrBlock", ""),
            request.get("TargetVpcSubnetId"),
            request.get("Description"),
        )
        route.fails = get_fault_injector().settle_failure("CreateClientVpnRoute")
        return {"Status": {"Code": "creating"}}

    return ActionResult(
        backend.idempotent("CreateClientVpnRoute", self._get_param("ClientToken"), request, create)
    )


def delete_client_vpn_route(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "DeleteClientVpnRoute") or ""
    _backend(self).delete_route(
        endpoint_id, self._get_param("DestinationCidrBlock") or "", self._get_param("TargetVpcSubnetId")
    )
    return ActionResult({"Status": {"Code": "deleting"}})


def describe_client_vpn_routes(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "DescribeClientVpnRoutes") or ""
    routes = _backend(self).describe_routes(endpoint_id, self._filters_from_querystring())
    return _page(self, "Routes", routes)


# -- client configuration and certificate revocation list -------------------------------------
def export_client_vpn_client_configuration(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "ExportClientVpnClientConfiguration") or ""
    endpoint = _backend(self).get_endpoint(endpoint_id)
    bundle = references.find_certificate(
        endpoint.account_id, endpoint.region, endpoint.server_certificate_arn, "Server"
    )
    profile = build_client_configuration(endpoint, references.certificate_authority_pem(bundle))
    return ActionResult({"ClientConfiguration": profile})


def import_client_vpn_client_certificate_revocation_list(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "ImportClientVpnClientCertificateRevocationList") or ""
    _backend(self).import_certificate_revocation_list(
        endpoint_id, self._get_param("CertificateRevocationList") or ""
    )
    return ActionResult({"Return": True})


def export_client_vpn_client_certificate_revocation_list(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "ExportClientVpnClientCertificateRevocationList") or ""
    return ActionResult(_backend(self).export_certificate_revocation_list(endpoint_id))


# -- connections -------------------------------------------------------------------------------
def describe_client_vpn_connections(self: Any) -> ActionResult:
    """Connections come from the connection simulator (objects in ``endpoint.connections``)."""
    endpoint_id = _begin(self, "DescribeClientVpnConnections") or ""
    connections = _backend(self).describe_connections(endpoint_id, self._filters_from_querystring())
    return _page(self, "Connections", connections)


def terminate_client_vpn_connections(self: Any) -> ActionResult:
    endpoint_id = _begin(self, "TerminateClientVpnConnections") or ""
    username = self._get_param("Username")
    statuses = _backend(self).terminate_connections(endpoint_id, self._get_param("ConnectionId"), username)
    result: dict[str, Any] = {"ClientVpnEndpointId": endpoint_id, "ConnectionStatuses": statuses}
    if username:
        result["Username"] = username
    return ActionResult(result)


def _unsupported(operation: str) -> ResponseMethod:
    def answer(self: Any) -> ActionResult:
        _begin(self, operation)
        raise UnsupportedOperation(operation)

    answer.__name__ = _snake_case(operation)
    answer.__doc__ = f"{operation} is not emulated by the local cloud."
    return answer


def _snake_case(operation: str) -> str:
    from moto.core.utils import camelcase_to_underscores

    return camelcase_to_underscores(operation)  # type: ignore[no-any-return]


def _serialized(method: ResponseMethod) -> ResponseMethod:
    """Run ``method`` under the backend lock (the HTTP server is multi-threaded), and answer its
    error with the HTTP status AWS uses for that code."""

    @functools.wraps(method)
    def locked(self: Any) -> ActionResult | Answer:
        with BACKEND_LOCK:
            try:
                return method(self)
            except ClientVpnError as error:
                if error.http_status == 400:
                    raise
                return _error_answer(self, error)

    return locked


def _error_answer(response: Any, error: ClientVpnError) -> Answer:
    """``error`` as moto's EC2 serializer writes it, with the error's own status.

    moto takes an error's status from the service model's error shapes, and the EC2 model has none,
    so every EC2 error it raises is a 400. A (body, headers) answer whose headers carry ``status`` is
    sent as it is, the way moto itself answers a raised error.
    """
    _status, headers, body = response.serialized(ActionResult(error))
    return body, {**headers, "status": error.http_status}


_HANDLERS: dict[str, ResponseMethod] = {
    "CreateClientVpnEndpoint": create_client_vpn_endpoint,
    "ModifyClientVpnEndpoint": modify_client_vpn_endpoint,
    "DeleteClientVpnEndpoint": delete_client_vpn_endpoint,
    "DescribeClientVpnEndpoints": describe_client_vpn_endpoints,
    "AssociateClientVpnTargetNetwork": associate_client_vpn_target_network,
    "DisassociateClientVpnTargetNetwork": disassociate_client_vpn_target_network,
    "DescribeClientVpnTargetNetworks": describe_client_vpn_target_networks,
    "ApplySecurityGroupsToClientVpnTargetNetwork": apply_security_groups_to_client_vpn_target_network,
    "AuthorizeClientVpnIngress": authorize_client_vpn_ingress,
    "RevokeClientVpnIngress": revoke_client_vpn_ingress,
    "DescribeClientVpnAuthorizationRules": describe_client_vpn_authorization_rules,
    "CreateClientVpnRoute": create_client_vpn_route,
    "DeleteClientVpnRoute": delete_client_vpn_route,
    "DescribeClientVpnRoutes": describe_client_vpn_routes,
    "ExportClientVpnClientConfiguration": export_client_vpn_client_configuration,
    "ImportClientVpnClientCertificateRevocationList": import_client_vpn_client_certificate_revocation_list,
    "ExportClientVpnClientCertificateRevocationList": export_client_vpn_client_certificate_revocation_list,
    "DescribeClientVpnConnections": describe_client_vpn_connections,
    "TerminateClientVpnConnections": terminate_client_vpn_connections,
    **{operation: _unsupported(operation) for operation in UNSUPPORTED_OPERATIONS},
}
RESPONSE_METHODS: dict[str, ResponseMethod] = {
    name: _serialized(method) for name, method in _HANDLERS.items()
}

_install_lock = threading.Lock()


def install() -> None:
    """Attach every Client VPN response method to moto's EC2Response (idempotent).

    Also wraps EC2's generic CreateTags / DeleteTags / DescribeTags so they accept endpoint ids.
    """
    from localcloud.clientvpn.tagging import TAG_METHODS

    with _install_lock:
        methods = {_snake_case(operation): method for operation, method in RESPONSE_METHODS.items()}
        for name, method in {**methods, **TAG_METHODS}.items():
            if EC2Response.__dict__.get(name) is not method:
                setattr(EC2Response, name, method)
