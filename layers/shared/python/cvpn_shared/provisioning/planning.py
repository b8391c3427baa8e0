"""The plan: every difference between a desired request document and the live endpoint, as changes.

``plan_update`` is pure (no AWS): ``cvpn plan``, the update workflow and the drift check call it with
what ``live_state.read_live_endpoint`` read. Each difference becomes one ``Change`` with the call that
makes it and the call that undoes it, or a ``Refusal`` when AWS cannot make it in place.

Conventions the executor relies on:

- ``ClientVpnEndpointId`` and ``ClientToken`` are never in the parameters (the executor adds them);
  ``CreateTags``/``DeleteTags`` also leave out ``Resources`` (the executor names the endpoint).
- The undo of ``associate-subnet`` is ``DisassociateClientVpnTargetNetwork`` with ``SubnetId``
  instead of the ``AssociationId`` that does not exist yet: the executor looks the association up.
- Removing an association also removes the routes through its subnet (AWS deletes them with it),
  so those routes get no ``delete-route`` change of their own: AWS would refuse to delete a route
  through a subnet that is no longer associated. The undo re-associates the subnet and, once it is
  associated again (AWS refuses a route through a subnet that is not), re-creates those routes as
  they were read live before the run (``undo_then``).
- A document without security groups leaves the endpoint's groups alone (AWS applies the VPC's
  default group at the first association), so such a document never plans a security group change.

What AWS does to connected users, by option (ModifyClientVpnEndpoint, Client VPN administrator
guide): changing the DNS servers resets every connection; a new server certificate or VPN port makes
clients reconnect and, for the port (and a certificate from another CA), fails until users import a new
configuration; split tunnel, session timeout, login banner and the client-connect handler apply to
sessions that start after the change; security groups and authorization rules apply to traffic at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cvpn_shared.provisioning.live_state import PRODUCT_TAGS, LiveEndpoint
from cvpn_shared.provisioning.models.plan import (
    ApiCall,
    Change,
    Plan,
    PlanFinding,
    Refusal,
)
from cvpn_shared.provisioning.models.request import ProvisionRequest
from cvpn_shared.provisioning.outcome import SUBNET_ASSOCIATION_HOURLY_USD
from cvpn_shared.provisioning.steps import route_targets

__all__ = ["REPLACE_INSTEAD", "plan_update"]

REPLACE_INSTEAD = (
    "run `cvpn apply --replace` to provision a new endpoint beside this one (a new DNS name and a new "
    "client configuration for every user); the old one is decommissioned once the new one is available"
)


def plan_update(
    desired: ProvisionRequest,
    live: LiveEndpoint,
    *,
    revision: int,
    live_connections: int,
    findings: list[PlanFinding] | None = None,
    client_connect_function_arn: str = "",
) -> Plan:
    """The changes that take ``live`` to ``desired``; ``findings`` are passed through to the plan.

    ``client_connect_function_arn`` is the stack's client-connect function: the document says only
    whether the handler is on, the stack says which function it is.
    """
    planner = _Planner(desired, live, live_connections, client_connect_function_arn)
    planner.refusals_for_replacement()
    planner.endpoint_options()
    planner.tags()
    planner.certificate()
    planner.security_groups()
    planner.associations_rules_and_routes()
    return Plan(
        request_id=desired.request_id,
        endpoint_id=live.endpoint_id,
        revision=revision,
        changes=planner.changes,
        refusals=planner.refusals,
        findings=[*(findings or []), *planner.findings],
        live_connections=live_connections,
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class _Planner:
    def __init__(
        self, desired: ProvisionRequest, live: LiveEndpoint, connections: int, client_connect_arn: str
    ) -> None:
        self.desired = desired
        self.live = live
        self.connections = connections
        self.client_connect_arn = client_connect_arn
        self.changes: list[Change] = []
        self.refusals: list[Refusal] = []
        self.findings: list[PlanFinding] = []

    # ------------------------------------------------------------------------------ helpers
    @property
    def _live_users(self) -> str:
        return _plural(self.connections, "live connection")

    def _modify(
        self,
        field: str,
        summary: str,
        forward: dict[str, Any],
        undo: dict[str, Any],
        *,
        disruption: str = "",
        disruptive: bool = False,
        new_configuration: bool = False,
        action: str = "modify-endpoint",
        group: str = "endpoint-options",
    ) -> None:
        self.changes.append(
            Change(
                group=group,  # type: ignore[arg-type]
                action=action,  # type: ignore[arg-type]
                summary=summary,
                field=field,
                disruptive=disruptive,
                disruption=disruption,
                new_configuration_needed=new_configuration,
                forward=ApiCall(operation="ModifyClientVpnEndpoint", parameters=forward),
                undo=ApiCall(operation="ModifyClientVpnEndpoint", parameters=undo),
            )
        )

    # ------------------------------------------------------------------------------ refusals
    def refusals_for_replacement(self) -> None:
        desired, live = self.desired, self.live
        if desired.endpoint_id and desired.endpoint_id != live.endpoint_id:
            self.refusals.append(
                Refusal(
                    field="endpoint_id",
                    reason=f"the document is the desired state of {desired.endpoint_id}, not of "
                    f"{live.endpoint_id}",
                    instead=f"plan the document against {desired.endpoint_id}, or correct endpoint_id",
                )
            )
        wanted_cidr = str(desired.client_cidr_block) if desired.client_cidr_block else None
        # An IPv6-only endpoint has no IPv4 client CIDR of the document's: AWS assigns its addresses.
        if wanted_cidr != live.client_cidr_block and (
            wanted_cidr or desired.traffic_ip_address_type != "ipv6"
        ):
            self.refusals.append(
                Refusal(
                    field="client_cidr_block",
                    reason=f"the client CIDR is {live.client_cidr_block or 'none'}; AWS cannot change an "
                    f"endpoint's client CIDR (to {wanted_cidr or 'none'}) after it is created",
                    instead=REPLACE_INSTEAD,
                )
            )
        for field, wanted_type, live_type in (
            ("endpoint_ip_address_type", desired.endpoint_ip_address_type, live.endpoint_ip_address_type),
            ("traffic_ip_address_type", desired.traffic_ip_address_type, live.traffic_ip_address_type),
        ):
            if wanted_type != live_type:
                self.refusals.append(
                    Refusal(
                        field=field,
                        reason=f"the endpoint's {field.replace('_', ' ')} is {live_type}; AWS sets it when "
                        f"the endpoint is created and cannot change it (to {wanted_type}) in place",
                        instead=REPLACE_INSTEAD,
                    )
                )
        wanted = sorted(_document_authentication(desired), key=lambda m: sorted(m.items()))
        actual = sorted(live.authentication, key=lambda m: sorted(m.items()))
        if wanted != actual:
            self.refusals.append(
                Refusal(
                    field="authentication",
                    reason=f"the endpoint authenticates with {_describe_methods(actual)}; AWS cannot "
                    f"change authentication options (to {_describe_methods(wanted)}) in place",
                    instead=REPLACE_INSTEAD,
                )
            )
        if desired.transport_protocol != live.transport_protocol:
            self.refusals.append(
                Refusal(
                    field="transport_protocol",
                    reason=f"the endpoint uses {live.transport_protocol.upper()}; AWS cannot change the "
                    f"transport protocol (to {desired.transport_protocol.upper()}) in place",
                    instead=REPLACE_INSTEAD,
                )
            )
        if live.vpc_id and desired.vpc_id != live.vpc_id:
            self.refusals.append(
                Refusal(
                    field="vpc_id",
                    reason=f"the endpoint is in {live.vpc_id}; AWS moves an endpoint to another VPC "
                    f"({desired.vpc_id}) only once every subnet is disassociated, which cuts every user",
                    instead=REPLACE_INSTEAD,
                )
            )

    # ------------------------------------------------------------------------------ options
    def endpoint_options(self) -> None:
        desired, live = self.desired, self.live
        description = (desired.description or desired.name)[:255]
        # An endpoint without a description reads as one described by its name, the default the
        # product creates with: the document of such an endpoint (adopt) then plans no change.
        if description != (live.description or description):
            self._modify(
                "description",
                f"description: {live.description!r} -> {description!r}",
                {"Description": description},
                {"Description": live.description},
                disruption="none: the description is for administrators",
            )
        dns = [str(server) for server in desired.dns_servers]
        if dns != live.dns_servers:
            self._modify(
                "dns_servers",
                f"DNS servers: {', '.join(live.dns_servers) or 'the VPC resolver'} -> "
                f"{', '.join(dns) or 'the VPC resolver'}",
                _dns_parameters(dns),
                _dns_parameters(live.dns_servers),
                disruptive=True,
                disruption=f"AWS resets every connection when the DNS servers change: the "
                f"{self._live_users} reconnect",
            )
        if desired.vpn_port != live.vpn_port:
            self._modify(
                "vpn_port",
                f"VPN port: {live.vpn_port} -> {desired.vpn_port}",
                {"VpnPort": desired.vpn_port},
                {"VpnPort": live.vpn_port},
                disruptive=True,
                new_configuration=True,
                disruption=f"the {self._live_users} drop and every user must download a new client "
                f"configuration: theirs points at port {live.vpn_port}",
            )
        if desired.split_tunnel != live.split_tunnel:
            self._modify(
                "split_tunnel",
                f"split tunnel: {'on' if live.split_tunnel else 'off'} -> "
                f"{'on' if desired.split_tunnel else 'off'}",
                {"SplitTunnel": desired.split_tunnel},
                {"SplitTunnel": live.split_tunnel},
                disruption="clients receive their routes when they connect: the "
                f"{self._live_users} keep the old routing until they reconnect"
                + (
                    "; with split tunnel off, all of a user's traffic goes through the VPN"
                    if not desired.split_tunnel
                    else "; with split tunnel on, only the endpoint's routes go through the VPN"
                ),
            )
        if desired.session_timeout_hours != live.session_timeout_hours:
            self._modify(
                "session_timeout_hours",
                f"session timeout: {live.session_timeout_hours} h -> {desired.session_timeout_hours} h",
                {"SessionTimeoutHours": desired.session_timeout_hours},
                {"SessionTimeoutHours": live.session_timeout_hours},
                disruption="applies to sessions that start after the change",
            )
        if desired.schema_version != "1":
            self._version_two_options()
        if (desired.login_banner or None) != live.login_banner:
            verb = "removed" if not desired.login_banner else "changed" if live.login_banner else "set"
            self._modify(
                "login_banner",
                f"login banner: {verb}",
                _banner_parameters(desired.login_banner),
                _banner_parameters(live.login_banner),
                disruption="shown to users when they next connect (AWS-provided clients)",
            )
        if desired.self_service_portal != live.self_service_portal:
            self._modify(
                "self_service_portal",
                f"self-service portal: {'enabled' if live.self_service_portal else 'disabled'} -> "
                f"{'enabled' if desired.self_service_portal else 'disabled'}",
                {"SelfServicePortal": "enabled" if desired.self_service_portal else "disabled"},
                {"SelfServicePortal": "enabled" if live.self_service_portal else "disabled"},
                disruption="no effect on connections; users "
                + ("can download" if desired.self_service_portal else "can no longer download")
                + " the configuration from the portal",
            )
        self._connection_log()
        self._client_connect()

    def _version_two_options(self) -> None:
        """Options only a version-2 document states (a version-1 document says nothing of them)."""
        desired, live = self.desired, self.live
        if (
            live.disconnect_on_session_timeout is not None
            and desired.disconnect_on_session_timeout != live.disconnect_on_session_timeout
        ):
            self._modify(
                "disconnect_on_session_timeout",
                "at the session timeout: "
                + ("disconnect" if live.disconnect_on_session_timeout else "reconnect")
                + " -> "
                + ("disconnect" if desired.disconnect_on_session_timeout else "reconnect"),
                {"DisconnectOnSessionTimeout": desired.disconnect_on_session_timeout},
                {"DisconnectOnSessionTimeout": live.disconnect_on_session_timeout},
                disruption="applies when a session reaches its timeout: "
                + (
                    "users are disconnected and sign in again"
                    if desired.disconnect_on_session_timeout
                    else "the client reconnects by itself"
                ),
            )
        if desired.client_route_enforcement != live.client_route_enforcement:
            self._modify(
                "client_route_enforcement",
                f"client route enforcement: {'on' if live.client_route_enforcement else 'off'} -> "
                f"{'on' if desired.client_route_enforcement else 'off'}",
                {"ClientRouteEnforcementOptions": {"Enforced": desired.client_route_enforcement}},
                {"ClientRouteEnforcementOptions": {"Enforced": live.client_route_enforcement}},
                disruption=(
                    "AWS-provided clients put back any route a user changes on the device that "
                    "bypasses the VPN (older clients are not affected)"
                    if desired.client_route_enforcement
                    else "users may again change the VPN routes on their devices"
                ),
            )
        self._revocation_list()

    def _revocation_list(self) -> None:
        desired, live = self.desired, self.live
        wanted = desired.certificate_revocation_list
        # No API removes a revocation list: a document without one leaves the imported list alone.
        if wanted is None or _pem_body(wanted) == _pem_body(live.certificate_revocation_list or ""):
            return
        self.changes.append(
            Change(
                group="certificate",
                action="import-revocation-list",
                summary="import the client certificate revocation list"
                + (" (replaces the imported one)" if live.certificate_revocation_list else ""),
                field="certificate_revocation_list",
                disruption="clients whose certificate is on the list can no longer connect",
                forward=ApiCall(
                    operation="ImportClientVpnClientCertificateRevocationList",
                    parameters={"CertificateRevocationList": wanted},
                ),
                undo=ApiCall(
                    operation="ImportClientVpnClientCertificateRevocationList",
                    parameters={"CertificateRevocationList": live.certificate_revocation_list},
                )
                if live.certificate_revocation_list
                else None,
            )
        )

    def _connection_log(self) -> None:
        log, live = self.desired.connection_log, self.live
        context = self.desired.schema_version != "1"  # a version-1 document says nothing of it
        same = log.enabled == live.connection_log_enabled and (
            not log.enabled
            or (
                log.log_group_name == live.connection_log_group
                and (log.log_stream_name is None or log.log_stream_name == live.connection_log_stream)
                and (
                    not context
                    or log.include_authorization_policy_context == live.connection_log_authorization_context
                )
            )
        )
        if same:
            return
        forward: dict[str, Any] = {"Enabled": log.enabled}
        if log.enabled:
            forward["CloudwatchLogGroup"] = log.log_group_name
            if log.log_stream_name:
                forward["CloudwatchLogStream"] = log.log_stream_name
            if context:
                forward["IncludeAuthorizationPolicyContext"] = log.include_authorization_policy_context
        undo: dict[str, Any] = {"Enabled": live.connection_log_enabled}
        if live.connection_log_enabled and live.connection_log_group:
            undo["CloudwatchLogGroup"] = live.connection_log_group
            if live.connection_log_stream:
                undo["CloudwatchLogStream"] = live.connection_log_stream
            if context:
                undo["IncludeAuthorizationPolicyContext"] = live.connection_log_authorization_context
        before = live.connection_log_group if live.connection_log_enabled else "off"
        after = log.log_group_name if log.enabled else "off"
        self._modify(
            "connection_log",
            f"connection logging: {before} -> {after}",
            {"ConnectionLogOptions": forward},
            {"ConnectionLogOptions": undo},
            disruption="no effect on connections; "
            + (
                f"connection attempts are logged to {after} from now on (monitoring reads it)"
                if log.enabled
                else "connection attempts are no longer logged, so monitoring sees none"
            ),
        )

    def _client_connect(self) -> None:
        desired, live = self.desired, self.live
        if not desired.client_connect_handler:
            if not live.client_connect_enabled:
                return
            forward: dict[str, Any] = {"Enabled": False}
        else:
            if not self.client_connect_arn:
                if not live.client_connect_enabled:
                    self.refusals.append(
                        Refusal(
                            field="client_connect_handler",
                            reason="the document turns the client-connect handler on but the stack has "
                            "no client-connect function",
                            instead="deploy the stack with its client-connect function, or set "
                            "client_connect_handler to false",
                        )
                    )
                return
            if live.client_connect_enabled and live.client_connect_function_arn == self.client_connect_arn:
                return
            forward = {"Enabled": True, "LambdaFunctionArn": self.client_connect_arn}
        undo: dict[str, Any] = {"Enabled": live.client_connect_enabled}
        if live.client_connect_enabled and live.client_connect_function_arn:
            undo["LambdaFunctionArn"] = live.client_connect_function_arn
        self._modify(
            "client_connect_handler",
            "client-connect handler: "
            + (live.client_connect_function_arn or "on" if live.client_connect_enabled else "off")
            + " -> "
            + (self.client_connect_arn if forward["Enabled"] else "off"),
            {"ClientConnectOptions": forward},
            {"ClientConnectOptions": undo},
            disruption="applies to connections that start after the change; "
            + (
                "new connections are checked by the product's handler (blocklist)"
                if forward["Enabled"]
                else "new connections are no longer checked by any handler"
            ),
        )

    # ------------------------------------------------------------------------------ tags
    def tags(self) -> None:
        live = self.live
        desired_tags = {"Name": self.desired.name, **dict(self.desired.tags)}
        current = {"Name": live.name, **live.user_tags} if live.name else dict(live.user_tags)
        for key in sorted(set(desired_tags) | set(current)):
            if key in PRODUCT_TAGS - {"Name"}:
                continue
            field = "name" if key == "Name" else f"tags.{key}"
            before, after = current.get(key), desired_tags.get(key)
            if before == after:
                continue
            if after is None:
                summary = f"remove tag {key}"
            elif before is None:
                summary = f"add tag {key}={after!r}"
            else:
                summary = f"tag {key}: {before!r} -> {after!r}"
            self.changes.append(
                Change(
                    group="endpoint-options",
                    action="update-tags",
                    summary=summary,
                    field=field,
                    disruption="none",
                    forward=_tag_call(key, after),
                    undo=_tag_call(key, before),
                )
            )

    # ------------------------------------------------------------------------------ certificate
    def certificate(self) -> None:
        desired, live = self.desired, self.live
        if desired.server_certificate_arn == live.server_certificate_arn:
            return
        self._modify(
            "server_certificate_arn",
            f"server certificate: {_short_arn(live.server_certificate_arn)} -> "
            f"{_short_arn(desired.server_certificate_arn)}",
            {"ServerCertificateArn": desired.server_certificate_arn},
            {"ServerCertificateArn": live.server_certificate_arn},
            action="replace-certificate",
            group="certificate",
            disruptive=True,
            new_configuration=True,
            disruption=f"the {self._live_users} reconnect to the new certificate; every user must "
            "download a new client configuration when it comes from another certificate authority",
        )

    # ------------------------------------------------------------------------------ security groups
    def security_groups(self) -> None:
        desired, live = self.desired, self.live
        wanted = list(desired.security_group_ids)
        if not wanted or sorted(wanted) == sorted(live.security_group_ids) or desired.vpc_id != live.vpc_id:
            return
        self.changes.append(
            Change(
                group="security-groups",
                action="apply-security-groups",
                summary=f"security groups: {', '.join(live.security_group_ids) or 'none'} -> "
                f"{', '.join(wanted)}",
                field="security_group_ids",
                disruptive=True,
                disruption=f"applies at once to the traffic of the {self._live_users}: what the new "
                "groups' rules do not allow stops",
                forward=ApiCall(
                    operation="ApplySecurityGroupsToClientVpnTargetNetwork",
                    parameters={"VpcId": desired.vpc_id, "SecurityGroupIds": wanted},
                ),
                undo=ApiCall(
                    operation="ApplySecurityGroupsToClientVpnTargetNetwork",
                    parameters={"VpcId": live.vpc_id, "SecurityGroupIds": list(live.security_group_ids)},
                )
                if live.security_group_ids
                else None,
            )
        )

    # ------------------------------------------------------------------------------ networks
    def associations_rules_and_routes(self) -> None:
        desired, live = self.desired, self.live
        present = {a.subnet_id: a for a in live.associations if a.present}
        added = [subnet for subnet in desired.subnet_ids if subnet not in present]
        removed = [a for subnet, a in present.items() if subnet not in desired.subnet_ids]
        removed_subnets = {a.subnet_id for a in removed}
        for subnet in added:
            self.changes.append(
                Change(
                    group="associations",
                    action="associate-subnet",
                    summary=f"associate {subnet}",
                    field=f"subnet_ids[{desired.subnet_ids.index(subnet)}]",
                    disruption="none: new connections may be placed in it "
                    f"(about {SUBNET_ASSOCIATION_HOURLY_USD} USD per hour more)",
                    forward=_associate(subnet),
                    undo=ApiCall(
                        operation="DisassociateClientVpnTargetNetwork", parameters={"SubnetId": subnet}
                    ),
                )
            )
        self._rules()
        self._routes(removed_subnets)
        remaining = len(present) - len(removed) + len(added)
        for association in removed:
            if remaining < 1:  # a document always keeps one subnet; guard the invariant all the same
                self.refusals.append(
                    Refusal(
                        field="subnet_ids",
                        reason=f"removing {association.subnet_id} would remove the last association",
                        instead="keep at least one subnet associated, or decommission the endpoint",
                    )
                )
                continue
            gone_routes = sorted(
                (
                    route
                    for route in live.routes
                    if route.subnet_id == association.subnet_id and route.origin == "add-route"
                ),
                key=lambda route: route.destination_cidr,
            )
            routes = [route.destination_cidr for route in gone_routes]
            self.changes.append(
                Change(
                    group="associations",
                    action="disassociate-subnet",
                    summary=f"disassociate {association.subnet_id} ({association.association_id})"
                    + (f", with its routes {', '.join(routes)}" if routes else ""),
                    field="subnet_ids",
                    disruptive=True,
                    disruption=f"drops the sessions placed in {association.subnet_id} (of the "
                    f"{self._live_users}; AWS does not say which): those users reconnect through "
                    "the other subnets",
                    forward=ApiCall(
                        operation="DisassociateClientVpnTargetNetwork",
                        parameters={"AssociationId": association.association_id},
                    ),
                    undo=_associate(association.subnet_id),
                    undo_then=[
                        _create_route(
                            route.destination_cidr, association.subnet_id, route.description or None
                        )
                        for route in gone_routes
                    ],
                )
            )

    def _rules(self) -> None:
        desired, live = self.desired, self.live
        current = {rule.key: rule for rule in live.authorization_rules}
        wanted_keys = set()
        for index, rule in enumerate(desired.authorization_rules):
            cidr = str(rule.target_network_cidr)
            key = (cidr, rule.access_group_id or "*")
            wanted_keys.add(key)
            who = f"group {rule.access_group_id}" if rule.access_group_id else "all users"
            existing = current.get(key)
            if existing is not None:
                if existing.description != rule.description:
                    self.findings.append(
                        PlanFinding(
                            severity="warning",
                            field=f"authorization_rules[{index}].description",
                            message=f"the live rule's description is {existing.description!r}: AWS "
                            "cannot change a rule's description in place, so the plan leaves it",
                        )
                    )
                continue
            self.changes.append(
                Change(
                    group="authorization-rules",
                    action="authorize-rule",
                    summary=f"authorize {who} to {cidr}",
                    field=f"authorization_rules[{index}]",
                    disruption="none: grants access, to connected users too",
                    forward=_authorize(cidr, rule.access_group_id, rule.description),
                    undo=_revoke(cidr, rule.access_group_id),
                )
            )
        for key, live_rule in current.items():
            if key in wanted_keys:
                continue
            cidr = live_rule.target_network_cidr
            who = f"group {live_rule.access_group_id}" if live_rule.access_group_id else "all users"
            self.changes.append(
                Change(
                    group="authorization-rules",
                    action="revoke-rule",
                    summary=f"revoke {who} from {cidr}",
                    field="authorization_rules",
                    disruptive=True,
                    disruption=f"{who} lose access to {cidr} at once, in connected sessions too (unless "
                    "another rule still covers them)",
                    forward=_revoke(cidr, live_rule.access_group_id),
                    undo=_authorize(cidr, live_rule.access_group_id, live_rule.description),
                )
            )

    def _routes(self, removed_subnets: set[str]) -> None:
        desired, live = self.desired, self.live
        current = {route.key: route for route in live.routes}
        index_of = {str(route.destination_cidr): index for index, route in enumerate(desired.routes)}
        wanted = route_targets(list(desired.routes), list(desired.subnet_ids))
        wanted_keys = set()
        reaches_connected = (
            "connected users get it when they reconnect (split tunnel pushes routes at connect)"
            if desired.split_tunnel
            else "none: adds a path"
        )
        for target in wanted:
            key = (target["destination_cidr"], target["subnet_id"])
            wanted_keys.add(key)
            existing = current.get(key)
            if existing is not None:
                if existing.origin == "add-route" and existing.description != target["description"]:
                    self.findings.append(
                        PlanFinding(
                            severity="warning",
                            field=f"routes[{index_of[key[0]]}].description",
                            message=f"the live route through {key[1]} is described {existing.description!r}: "
                            "AWS cannot change a route's description in place, so the plan leaves it",
                        )
                    )
                continue
            self.changes.append(
                Change(
                    group="routes",
                    action="create-route",
                    summary=f"add route {key[0]} via {key[1]}",
                    field=f"routes[{index_of[key[0]]}]",
                    disruption=reaches_connected,
                    forward=_create_route(key[0], key[1], target["description"]),
                    undo=_delete_route(key[0], key[1]),
                )
            )
        for key, route in current.items():
            # automatic routes come and go with their association; routes through a subnet that is
            # being disassociated go with it (AWS would refuse to delete them afterwards)
            if key in wanted_keys or route.origin != "add-route" or route.subnet_id in removed_subnets:
                continue
            self.changes.append(
                Change(
                    group="routes",
                    action="delete-route",
                    summary=f"delete route {key[0]} via {key[1]}",
                    field="routes",
                    disruptive=True,
                    disruption=f"connected users lose the path to {key[0]} through {key[1]} at once",
                    forward=_delete_route(key[0], key[1]),
                    undo=_create_route(key[0], key[1], route.description),
                )
            )


def _tag_call(key: str, value: str | None) -> ApiCall:
    """The call that gives the endpoint tag ``key`` the value ``value`` (None: no such tag)."""
    if value is None:
        return ApiCall(operation="DeleteTags", parameters={"Tags": [{"Key": key}]})
    return ApiCall(operation="CreateTags", parameters={"Tags": [{"Key": key, "Value": value}]})


def _associate(subnet_id: str) -> ApiCall:
    return ApiCall(operation="AssociateClientVpnTargetNetwork", parameters={"SubnetId": subnet_id})


def _authorize(cidr: str, group_id: str | None, description: str | None) -> ApiCall:
    """The rule letting ``group_id`` (all users when None) reach ``cidr``."""
    parameters: dict[str, Any] = {"TargetNetworkCidr": cidr}
    if group_id:
        parameters["AccessGroupId"] = group_id
    else:
        parameters["AuthorizeAllGroups"] = True
    if description:
        parameters["Description"] = description
    return ApiCall(operation="AuthorizeClientVpnIngress", parameters=parameters)


def _revoke(cidr: str, group_id: str | None) -> ApiCall:
    """Removes the rule of ``group_id`` (the all-users one when None) to ``cidr``."""
    parameters: dict[str, Any] = {"TargetNetworkCidr": cidr}
    if group_id:
        parameters["AccessGroupId"] = group_id
    else:
        parameters["RevokeAllGroups"] = True
    return ApiCall(operation="RevokeClientVpnIngress", parameters=parameters)


def _create_route(cidr: str, subnet_id: str, description: str | None) -> ApiCall:
    """The route to ``cidr`` through ``subnet_id``, described unless ``description`` is None."""
    parameters: dict[str, Any] = {"DestinationCidrBlock": cidr, "TargetVpcSubnetId": subnet_id}
    if description is not None:
        parameters["Description"] = description
    return ApiCall(operation="CreateClientVpnRoute", parameters=parameters)


def _delete_route(cidr: str, subnet_id: str) -> ApiCall:
    return ApiCall(
        operation="DeleteClientVpnRoute",
        parameters={"DestinationCidrBlock": cidr, "TargetVpcSubnetId": subnet_id},
    )


def _document_authentication(desired: ProvisionRequest) -> list[dict[str, str]]:
    return [
        {key: value for key, value in method.model_dump().items() if value is not None}
        for method in desired.authentication
    ]


def _describe_methods(methods: Iterable[dict[str, str]]) -> str:
    return (
        " + ".join(
            f"{method['type']} ({', '.join(v for k, v in method.items() if k != 'type')})"
            for method in methods
        )
        or "nothing"
    )


def _dns_parameters(servers: list[str]) -> dict[str, Any]:
    if servers:
        return {"DnsServers": {"CustomDnsServers": list(servers), "Enabled": True}}
    return {"DnsServers": {"Enabled": False}}


def _banner_parameters(text: str | None) -> dict[str, Any]:
    if text:
        return {"ClientLoginBannerOptions": {"Enabled": True, "BannerText": text}}
    return {"ClientLoginBannerOptions": {"Enabled": False}}


def _pem_body(pem: str) -> str:
    """A PEM's base64 body without its armour and whitespace: two spellings of one list compare equal."""
    lines = [line.strip() for line in pem.strip().splitlines()]
    return "".join(line for line in lines if line and not line.startswith("-----"))


def _short_arn(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if arn else "none"
