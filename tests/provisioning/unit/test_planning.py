"""The planner: every kind of difference alone, all together, none, refusals, the last association,
and what each change does to connected users."""

from __future__ import annotations

from typing import Any

import pytest

from cvpn_shared.provisioning.live_state import (
    CannotAdopt,
    LiveAssociation,
    LiveEndpoint,
    LiveRoute,
    LiveRule,
    adoption_notes,
    desired_state_from_live,
)
from cvpn_shared.provisioning.models.plan import PHASE_ORDER, ApiCall, Change, Plan, PlanFinding
from cvpn_shared.provisioning.models.request import ProvisionRequest
from cvpn_shared.provisioning.planning import plan_update
from cvpn_shared.provisioning.tags import MANAGED_BY_TAG, REQUEST_ID_TAG
from tests.fixtures.crl import make_crl_pem

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-1111-1111-1111-111111111111"
OTHER_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/22222222-2222-2222-2222-222222222222"
GROUP = "S-1-5-21-1-2-3-1001"
OTHER_GROUP = "S-1-5-21-1-2-3-1002"
SUBNET_A = "subnet-0000000a"
SUBNET_B = "subnet-0000000b"
SUBNET_C = "subnet-0000000c"
CONNECT_ARN = "arn:aws:lambda:us-east-1:123456789012:function:client-connect"
ROOT_CHAIN = "arn:aws:acm:us-east-1:123456789012:certificate/33333333-3333-3333-3333-333333333333"
AD_AND_TLS = [
    {"type": "active-directory", "directory_id": "d-0123456789"},
    {"type": "mutual-tls", "client_root_certificate_chain_arn": ROOT_CHAIN},
]


def document(**overrides: Any) -> ProvisionRequest:
    base: dict[str, Any] = {
        "request_id": "NET-1",
        "requester": "alice@example.com",
        "name": "office",
        "vpc_id": "vpc-00000001",
        "subnet_ids": [SUBNET_A, SUBNET_B],
        "client_cidr_block": "172.16.0.0/22",
        "server_certificate_arn": CERT,
        "authentication": [{"type": "active-directory", "directory_id": "d-0123456789"}],
        "authorization_rules": [{"target_network_cidr": "10.0.0.0/16", "access_group_id": GROUP}],
        "routes": [{"destination_cidr": "10.50.0.0/16", "description": "office"}],
        "security_group_ids": ["sg-00000001"],
        "dns_servers": ["10.0.0.2"],
        "connection_log": {"enabled": True, "log_group_name": "/cvpn/NET-1"},
        "tags": {"team": "net"},
    }
    return ProvisionRequest.model_validate(base | overrides)


def live_endpoint(**overrides: Any) -> LiveEndpoint:
    """The live endpoint ``document()`` describes, as read_live_endpoint would give it."""
    base: dict[str, Any] = {
        "endpoint_id": "cvpn-endpoint-0123456789abcdef0",
        "status": "available",
        "name": "office",
        "description": "office",
        "vpc_id": "vpc-00000001",
        "client_cidr_block": "172.16.0.0/22",
        "server_certificate_arn": CERT,
        "authentication": [{"type": "active-directory", "directory_id": "d-0123456789"}],
        "dns_servers": ["10.0.0.2"],
        "connection_log_enabled": True,
        "connection_log_group": "/cvpn/NET-1",
        "connection_log_stream": "auto-stream",
        "security_group_ids": ["sg-00000001"],
        "tags": {
            "Name": "office",
            MANAGED_BY_TAG: "client-vpn-autopilot",
            REQUEST_ID_TAG: "NET-1",
            "team": "net",
        },
        "associations": [
            LiveAssociation(association_id="cvpn-assoc-a", subnet_id=SUBNET_A, status="associated"),
            LiveAssociation(association_id="cvpn-assoc-b", subnet_id=SUBNET_B, status="associated"),
        ],
        "authorization_rules": [LiveRule(target_network_cidr="10.0.0.0/16", access_group_id=GROUP)],
        "routes": [
            LiveRoute(destination_cidr="10.0.0.0/16", subnet_id=SUBNET_A, origin="associate"),
            LiveRoute(destination_cidr="10.0.0.0/16", subnet_id=SUBNET_B, origin="associate"),
            LiveRoute(destination_cidr="10.50.0.0/16", subnet_id=SUBNET_A, description="office"),
            LiveRoute(destination_cidr="10.50.0.0/16", subnet_id=SUBNET_B, description="office"),
        ],
    }
    return LiveEndpoint.model_validate(base | overrides)


def plan(desired: ProvisionRequest, live: LiveEndpoint, connections: int = 7, **kwargs: Any) -> Plan:
    return plan_update(desired, live, revision=2, live_connections=connections, **kwargs)


def only(result: Plan) -> Change:
    assert not result.refusals, result.refusals
    assert len(result.changes) == 1, [c.summary for c in result.changes]
    return result.changes[0]


# ------------------------------------------------------------------------------------------ none
def test_no_difference_plans_nothing() -> None:
    result = plan(document(), live_endpoint())
    assert result.no_changes and result.can_apply_in_place
    assert result.live_connections == 7 and result.revision == 2
    assert result.endpoint_id == "cvpn-endpoint-0123456789abcdef0" and result.request_id == "NET-1"


def test_an_unset_log_stream_does_not_differ_from_the_one_aws_chose() -> None:
    assert plan(document(), live_endpoint(connection_log_stream="2026-12-07-x")).no_changes


def test_cidrs_written_differently_compare_equal() -> None:
    live = live_endpoint(
        authorization_rules=[LiveRule(target_network_cidr="10.0.0.0/16", access_group_id=GROUP)]
    )
    assert plan(
        document(authorization_rules=[{"target_network_cidr": "10.0.0.0/16", "access_group_id": GROUP}]), live
    ).no_changes


# ------------------------------------------------------------------------------------------ options
@pytest.mark.parametrize(
    ("overrides", "field", "forward", "undo", "disruptive", "new_config"),
    [
        (
            {"description": "new text"},
            "description",
            {"Description": "new text"},
            {"Description": "office"},
            False,
            False,
        ),
        (
            {"dns_servers": ["10.0.0.2", "10.0.0.3"]},
            "dns_servers",
            {"DnsServers": {"CustomDnsServers": ["10.0.0.2", "10.0.0.3"], "Enabled": True}},
            {"DnsServers": {"CustomDnsServers": ["10.0.0.2"], "Enabled": True}},
            True,
            False,
        ),
        (
            {"dns_servers": []},
            "dns_servers",
            {"DnsServers": {"Enabled": False}},
            {"DnsServers": {"CustomDnsServers": ["10.0.0.2"], "Enabled": True}},
            True,
            False,
        ),
        ({"vpn_port": 1194}, "vpn_port", {"VpnPort": 1194}, {"VpnPort": 443}, True, True),
        ({"split_tunnel": True}, "split_tunnel", {"SplitTunnel": True}, {"SplitTunnel": False}, False, False),
        (
            {"session_timeout_hours": 8},
            "session_timeout_hours",
            {"SessionTimeoutHours": 8},
            {"SessionTimeoutHours": 24},
            False,
            False,
        ),
        (
            {"login_banner": "Authorised use only"},
            "login_banner",
            {"ClientLoginBannerOptions": {"Enabled": True, "BannerText": "Authorised use only"}},
            {"ClientLoginBannerOptions": {"Enabled": False}},
            False,
            False,
        ),
        (
            {"connection_log": {"enabled": True, "log_group_name": "/cvpn/other"}},
            "connection_log",
            {"ConnectionLogOptions": {"Enabled": True, "CloudwatchLogGroup": "/cvpn/other"}},
            {
                "ConnectionLogOptions": {
                    "Enabled": True,
                    "CloudwatchLogGroup": "/cvpn/NET-1",
                    "CloudwatchLogStream": "auto-stream",
                }
            },
            False,
            False,
        ),
        (
            {"connection_log": {"enabled": False}},
            "connection_log",
            {"ConnectionLogOptions": {"Enabled": False}},
            {
                "ConnectionLogOptions": {
                    "Enabled": True,
                    "CloudwatchLogGroup": "/cvpn/NET-1",
                    "CloudwatchLogStream": "auto-stream",
                }
            },
            False,
            False,
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_endpoint_option_alone(
    overrides: dict[str, Any],
    field: str,
    forward: dict[str, Any],
    undo: dict[str, Any],
    disruptive: bool,
    new_config: bool,
) -> None:
    change = only(plan(document(**overrides), live_endpoint()))
    assert (change.group, change.action, change.field) == ("endpoint-options", "modify-endpoint", field)
    assert change.forward.operation == change.undo.operation == "ModifyClientVpnEndpoint"  # type: ignore[union-attr]
    assert change.forward.parameters == forward
    assert change.undo is not None and change.undo.parameters == undo
    assert (change.disruptive, change.new_configuration_needed) == (disruptive, new_config)
    assert change.disruption


def test_dns_change_says_aws_resets_the_live_connections() -> None:
    change = only(plan(document(dns_servers=["10.0.0.9"]), live_endpoint(), connections=3))
    assert "resets every connection" in change.disruption and "3 live connections" in change.disruption


def test_self_service_portal_with_saml() -> None:
    saml = [{"type": "saml", "saml_provider_arn": "arn:aws:iam::123456789012:saml-provider/okta"}]
    desired = document(
        authentication=saml,
        authorization_rules=[{"target_network_cidr": "10.0.0.0/16", "access_group_id": "eng"}],
        self_service_portal=True,
    )
    live = live_endpoint(
        authentication=[
            {"type": "saml", "saml_provider_arn": "arn:aws:iam::123456789012:saml-provider/okta"}
        ],
        authorization_rules=[LiveRule(target_network_cidr="10.0.0.0/16", access_group_id="eng")],
    )
    change = only(plan(desired, live))
    assert change.forward.parameters == {"SelfServicePortal": "enabled"}
    assert change.undo is not None and change.undo.parameters == {"SelfServicePortal": "disabled"}


def test_client_connect_handler_on_uses_the_stacks_function() -> None:
    change = only(
        plan(document(client_connect_handler=True), live_endpoint(), client_connect_function_arn=CONNECT_ARN)
    )
    assert change.forward.parameters == {
        "ClientConnectOptions": {"Enabled": True, "LambdaFunctionArn": CONNECT_ARN}
    }
    assert change.undo is not None and change.undo.parameters == {"ClientConnectOptions": {"Enabled": False}}


def test_client_connect_handler_on_without_a_function_is_refused() -> None:
    result = plan(document(client_connect_handler=True), live_endpoint())
    assert [r.field for r in result.refusals] == ["client_connect_handler"] and not result.changes


def test_client_connect_handler_off() -> None:
    live = live_endpoint(client_connect_enabled=True, client_connect_function_arn=CONNECT_ARN)
    change = only(plan(document(), live))
    assert change.forward.parameters == {"ClientConnectOptions": {"Enabled": False}}
    assert change.undo is not None
    assert change.undo.parameters == {
        "ClientConnectOptions": {"Enabled": True, "LambdaFunctionArn": CONNECT_ARN}
    }


def test_server_certificate_is_its_own_group_and_needs_new_configurations() -> None:
    change = only(plan(document(server_certificate_arn=OTHER_CERT), live_endpoint()))
    assert (change.group, change.action) == ("certificate", "replace-certificate")
    assert change.forward.parameters == {"ServerCertificateArn": OTHER_CERT}
    assert change.undo is not None and change.undo.parameters == {"ServerCertificateArn": CERT}
    assert change.disruptive and change.new_configuration_needed


# ------------------------------------------------------------------------------------------ tags
def test_name_and_tags() -> None:
    result = plan(
        document(name="office-2", description="office", tags={"team": "sec", "cost": "42"}), live_endpoint()
    )
    by_field = {c.field: c for c in result.changes}
    assert set(by_field) == {"name", "tags.team", "tags.cost"}
    assert all(c.action == "update-tags" and not c.disruptive for c in result.changes)
    assert by_field["name"].forward.parameters == {"Tags": [{"Key": "Name", "Value": "office-2"}]}
    assert by_field["tags.cost"].undo == ApiCall(
        operation="DeleteTags", parameters={"Tags": [{"Key": "cost"}]}
    )
    assert by_field["tags.team"].undo is not None
    assert by_field["tags.team"].undo.parameters == {"Tags": [{"Key": "team", "Value": "net"}]}


def test_a_removed_tag_and_the_product_tags_never_touched() -> None:
    result = plan(document(tags={}), live_endpoint())
    change = only(result)
    assert change.forward.operation == "DeleteTags" and change.forward.parameters == {
        "Tags": [{"Key": "team"}]
    }
    assert all(MANAGED_BY_TAG not in str(c.forward.parameters) for c in result.changes)


# ------------------------------------------------------------------------------------------ security groups
def test_security_groups() -> None:
    change = only(plan(document(security_group_ids=["sg-00000002"]), live_endpoint()))
    assert (change.group, change.action) == ("security-groups", "apply-security-groups")
    assert change.forward.parameters == {"VpcId": "vpc-00000001", "SecurityGroupIds": ["sg-00000002"]}
    assert change.undo is not None
    assert change.undo.parameters == {"VpcId": "vpc-00000001", "SecurityGroupIds": ["sg-00000001"]}
    assert change.disruptive and "at once" in change.disruption


def test_no_security_groups_in_the_document_leaves_the_endpoints_alone() -> None:
    assert plan(document(security_group_ids=[]), live_endpoint(security_group_ids=["sg-0000000d"])).no_changes


# ------------------------------------------------------------------------------ associations and routes
def test_a_new_subnet_brings_the_documents_routes_through_it() -> None:
    result = plan(document(subnet_ids=[SUBNET_A, SUBNET_B, SUBNET_C]), live_endpoint())
    assert [(c.action, c.summary) for c in result.in_execution_order()] == [
        ("associate-subnet", f"associate {SUBNET_C}"),
        ("create-route", f"add route 10.50.0.0/16 via {SUBNET_C}"),
    ]
    associate = result.changes[0]
    assert associate.forward.parameters == {"SubnetId": SUBNET_C} and not associate.disruptive
    assert associate.undo is not None and associate.undo.operation == "DisassociateClientVpnTargetNetwork"
    route = result.in_execution_order()[1]
    assert route.forward.parameters == {
        "DestinationCidrBlock": "10.50.0.0/16",
        "TargetVpcSubnetId": SUBNET_C,
        "Description": "office",
    }
    assert route.undo is not None and route.undo.parameters == {
        "DestinationCidrBlock": "10.50.0.0/16",
        "TargetVpcSubnetId": SUBNET_C,
    }


def test_a_removed_subnet_takes_its_routes_without_a_delete_route() -> None:
    result = plan(document(subnet_ids=[SUBNET_A]), live_endpoint(), connections=4)
    change = only(result)
    assert change.action == "disassociate-subnet"
    assert change.forward.parameters == {"AssociationId": "cvpn-assoc-b"}
    assert change.undo is not None and change.undo.parameters == {"SubnetId": SUBNET_B}
    assert change.disruptive and f"drops the sessions placed in {SUBNET_B}" in change.disruption
    assert "4 live connections" in change.disruption and "10.50.0.0/16" in change.summary
    # the undo re-creates what AWS deletes with the association (its own automatic route comes back
    # with the association itself)
    assert [(c.operation, c.parameters) for c in change.undo_then] == [
        (
            "CreateClientVpnRoute",
            {"DestinationCidrBlock": "10.50.0.0/16", "TargetVpcSubnetId": SUBNET_B, "Description": "office"},
        )
    ]


def test_replacing_every_subnet_associates_first_and_never_removes_the_last() -> None:
    result = plan(document(subnet_ids=[SUBNET_C]), live_endpoint())
    order = [c.action for c in result.in_execution_order()]
    assert order == ["associate-subnet", "create-route", "disassociate-subnet", "disassociate-subnet"]
    assert not result.refusals


def test_an_association_on_its_way_out_counts_as_absent() -> None:
    live = live_endpoint(
        associations=[
            LiveAssociation(association_id="cvpn-assoc-a", subnet_id=SUBNET_A, status="associated"),
            LiveAssociation(association_id="cvpn-assoc-b", subnet_id=SUBNET_B, status="disassociating"),
        ]
    )
    result = plan(document(), live)
    assert [c.action for c in result.changes] == ["associate-subnet"]


def test_a_new_route() -> None:
    routes = [
        {"destination_cidr": "10.50.0.0/16", "description": "office"},
        {"destination_cidr": "10.60.0.0/16"},
    ]
    result = plan(document(routes=routes), live_endpoint())
    assert [(c.action, c.field, c.forward.parameters["TargetVpcSubnetId"]) for c in result.changes] == [
        ("create-route", "routes[1]", SUBNET_A),
        ("create-route", "routes[1]", SUBNET_B),
    ]
    assert all(not c.disruptive for c in result.changes)


def test_a_new_route_with_split_tunnel_reaches_users_when_they_reconnect() -> None:
    live = live_endpoint(split_tunnel=True)
    routes = [
        {"destination_cidr": "10.50.0.0/16", "description": "office"},
        {"destination_cidr": "10.60.0.0/16"},
    ]
    result = plan(document(routes=routes, split_tunnel=True), live)
    assert all("reconnect" in c.disruption for c in result.changes)


def test_a_removed_route_is_deleted_through_every_subnet_but_automatic_routes_stay() -> None:
    result = plan(document(routes=[]), live_endpoint())
    assert sorted((c.action, c.forward.parameters["TargetVpcSubnetId"]) for c in result.changes) == [
        ("delete-route", SUBNET_A),
        ("delete-route", SUBNET_B),
    ]
    change = result.changes[0]
    assert change.disruptive and change.undo is not None
    assert change.undo.parameters["Description"] == "office"


def test_a_route_added_out_of_band_is_deleted() -> None:
    live = live_endpoint(
        routes=[*live_endpoint().routes, LiveRoute(destination_cidr="192.168.0.0/24", subnet_id=SUBNET_A)]
    )
    change = only(plan(document(), live))
    assert change.action == "delete-route" and change.summary == f"delete route 192.168.0.0/24 via {SUBNET_A}"


def test_a_route_description_difference_is_a_warning_not_a_change() -> None:
    live = live_endpoint(
        routes=[
            LiveRoute(destination_cidr="10.50.0.0/16", subnet_id=SUBNET_A, description="old"),
            LiveRoute(destination_cidr="10.50.0.0/16", subnet_id=SUBNET_B, description="office"),
        ]
    )
    result = plan(document(), live)
    assert result.no_changes
    assert [f.field for f in result.findings] == ["routes[0].description"]


# ------------------------------------------------------------------------------------------ rules
def test_a_new_rule_for_a_group() -> None:
    rules = [
        {"target_network_cidr": "10.0.0.0/16", "access_group_id": GROUP},
        {"target_network_cidr": "10.50.0.0/16", "access_group_id": OTHER_GROUP, "description": "ops"},
    ]
    change = only(plan(document(authorization_rules=rules), live_endpoint()))
    assert (change.group, change.action, change.field) == (
        "authorization-rules",
        "authorize-rule",
        "authorization_rules[1]",
    )
    assert change.forward.parameters == {
        "TargetNetworkCidr": "10.50.0.0/16",
        "AccessGroupId": OTHER_GROUP,
        "Description": "ops",
    }
    assert change.undo is not None
    assert change.undo.parameters == {"TargetNetworkCidr": "10.50.0.0/16", "AccessGroupId": OTHER_GROUP}
    assert not change.disruptive


def test_rules_compare_by_cidr_and_grantee() -> None:
    rules = [{"target_network_cidr": "10.0.0.0/16", "authorize_all_groups": True}]
    result = plan(document(authorization_rules=rules), live_endpoint())
    by_action = {c.action: c for c in result.changes}
    assert set(by_action) == {"authorize-rule", "revoke-rule"}
    assert by_action["authorize-rule"].forward.parameters == {
        "TargetNetworkCidr": "10.0.0.0/16",
        "AuthorizeAllGroups": True,
    }
    revoke = by_action["revoke-rule"]
    assert revoke.forward.parameters == {"TargetNetworkCidr": "10.0.0.0/16", "AccessGroupId": GROUP}
    assert revoke.disruptive and GROUP in revoke.disruption
    assert [c.action for c in result.in_execution_order()] == ["authorize-rule", "revoke-rule"]


def test_a_revoked_all_groups_rule_is_undone_with_authorize_all() -> None:
    live = live_endpoint(
        authorization_rules=[
            LiveRule(target_network_cidr="10.0.0.0/16", access_group_id=GROUP),
            LiveRule(target_network_cidr="0.0.0.0/0", access_group_id=None, description="internet"),
        ]
    )
    change = only(plan(document(), live))
    assert change.forward.parameters == {"TargetNetworkCidr": "0.0.0.0/0", "RevokeAllGroups": True}
    assert change.undo is not None and change.undo.parameters == {
        "TargetNetworkCidr": "0.0.0.0/0",
        "AuthorizeAllGroups": True,
        "Description": "internet",
    }


# ------------------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"client_cidr_block": "172.20.0.0/22"}, "client_cidr_block"),
        ({"transport_protocol": "tcp"}, "transport_protocol"),
        (
            {
                "authentication": [
                    {
                        "type": "mutual-tls",
                        "client_root_certificate_chain_arn": CERT,
                    }
                ],
                "authorization_rules": [{"target_network_cidr": "10.0.0.0/16", "authorize_all_groups": True}],
            },
            "authentication",
        ),
        ({"vpc_id": "vpc-00000002", "security_group_ids": []}, "vpc_id"),
    ],
)
def test_changes_aws_cannot_make_in_place_are_refused_with_what_to_do(
    overrides: dict[str, Any], field: str
) -> None:
    result = plan(document(**overrides), live_endpoint())
    assert field in [r.field for r in result.refusals]
    refusal = next(r for r in result.refusals if r.field == field)
    assert "cvpn apply --replace" in refusal.instead and refusal.reason
    assert not result.can_apply_in_place and not result.no_changes


# ------------------------------------------------------------------------------------------ together
def test_everything_at_once_in_phase_order() -> None:
    crl = make_crl_pem([7])
    desired = document(
        schema_version="2",
        authentication=AD_AND_TLS,
        certificate_revocation_list=crl,
        description="changed",
        vpn_port=1194,
        tags={"team": "sec"},
        server_certificate_arn=OTHER_CERT,
        security_group_ids=["sg-00000002"],
        subnet_ids=[SUBNET_A, SUBNET_C],
        authorization_rules=[{"target_network_cidr": "10.60.0.0/16", "access_group_id": OTHER_GROUP}],
        routes=[{"destination_cidr": "10.60.0.0/16"}],
    )
    live = live_endpoint(authentication=AD_AND_TLS, certificate_revocation_list=make_crl_pem([1]))
    result = plan(desired, live, findings=[PlanFinding(severity="warning", field="routes[0]", message="m")])
    actions = [c.action for c in result.in_execution_order()]
    assert actions == sorted(actions, key=PHASE_ORDER.index)
    assert set(actions) == set(PHASE_ORDER)
    # routes through the subnet being removed go with it: only the route through the kept subnet is deleted
    deleted = [
        c.forward.parameters["TargetVpcSubnetId"] for c in result.changes if c.action == "delete-route"
    ]
    assert deleted == [SUBNET_A]
    created = sorted(
        c.forward.parameters["TargetVpcSubnetId"] for c in result.changes if c.action == "create-route"
    )
    assert created == [SUBNET_A, SUBNET_C]
    assert result.findings[0].message == "m"
    assert all(c.undo is not None for c in result.changes)
    assert not result.refusals


# ------------------------------------------------------------------------------------------ version 2
def test_a_version_1_document_says_nothing_of_the_newest_options() -> None:
    live = live_endpoint(
        client_route_enforcement=True,
        disconnect_on_session_timeout=False,
        connection_log_authorization_context=True,
    )
    assert plan(document(), live).no_changes


@pytest.mark.parametrize(
    ("overrides", "live_overrides", "field", "forward"),
    [
        (
            {"client_route_enforcement": True},
            {},
            "client_route_enforcement",
            {"ClientRouteEnforcementOptions": {"Enforced": True}},
        ),
        (
            {"disconnect_on_session_timeout": False},
            {"disconnect_on_session_timeout": True},
            "disconnect_on_session_timeout",
            {"DisconnectOnSessionTimeout": False},
        ),
        (
            {
                "connection_log": {
                    "enabled": True,
                    "log_group_name": "/cvpn/NET-1",
                    "include_authorization_policy_context": True,
                }
            },
            {},
            "connection_log",
            {
                "ConnectionLogOptions": {
                    "Enabled": True,
                    "CloudwatchLogGroup": "/cvpn/NET-1",
                    "IncludeAuthorizationPolicyContext": True,
                }
            },
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_version_2_option_alone(
    overrides: dict[str, Any], live_overrides: dict[str, Any], field: str, forward: dict[str, Any]
) -> None:
    change = only(plan(document(schema_version="2", **overrides), live_endpoint(**live_overrides)))
    assert (change.action, change.field, change.forward.parameters) == ("modify-endpoint", field, forward)
    assert not change.disruptive and change.undo is not None


def test_a_revocation_list_is_imported_and_the_old_one_restored_on_undo() -> None:
    old, new = make_crl_pem([1]), make_crl_pem([1, 2])
    live = live_endpoint(authentication=AD_AND_TLS, certificate_revocation_list=old)
    change = only(
        plan(document(schema_version="2", authentication=AD_AND_TLS, certificate_revocation_list=new), live)
    )
    assert (change.group, change.action) == ("certificate", "import-revocation-list")
    # The document keeps one LF-ended PEM, as the request model normalises it.
    assert change.forward.parameters == {"CertificateRevocationList": new.strip() + "\n"}
    assert change.undo is not None and change.undo.parameters == {"CertificateRevocationList": old}


def test_the_same_revocation_list_spelled_differently_is_no_change() -> None:
    pem = make_crl_pem([5])
    live = live_endpoint(
        authentication=AD_AND_TLS, certificate_revocation_list=pem.replace("\n", "\r\n") + "\n"
    )
    desired = document(schema_version="2", authentication=AD_AND_TLS, certificate_revocation_list=pem)
    assert plan(desired, live).no_changes


def test_no_revocation_list_in_the_document_leaves_the_imported_one() -> None:
    live = live_endpoint(authentication=AD_AND_TLS, certificate_revocation_list=make_crl_pem([1]))
    assert plan(document(schema_version="2", authentication=AD_AND_TLS), live).no_changes


@pytest.mark.parametrize("field", ["endpoint_ip_address_type", "traffic_ip_address_type"])
def test_ip_address_types_cannot_change_in_place(field: str) -> None:
    result = plan(document(schema_version="2"), live_endpoint(**{field: "dual-stack"}))
    refusal = only_refusal(result)
    assert refusal.field == field and "dual-stack" in refusal.reason and "--replace" in refusal.instead


def test_a_document_of_another_endpoint_is_refused() -> None:
    result = plan(
        document(schema_version="2", endpoint_id="cvpn-endpoint-0000000000000000a"), live_endpoint()
    )
    assert only_refusal(result).field == "endpoint_id"


def test_ipv6_routes_and_rules_on_a_dual_stack_endpoint() -> None:
    desired = document(
        schema_version="2",
        endpoint_ip_address_type="dual-stack",
        traffic_ip_address_type="dual-stack",
        routes=[
            {"destination_cidr": "10.50.0.0/16", "description": "office"},
            {"destination_cidr": "2001:db8::/56"},
        ],
        authorization_rules=[
            {"target_network_cidr": "10.0.0.0/16", "access_group_id": GROUP},
            {"target_network_cidr": "2001:db8::/56", "access_group_id": GROUP},
        ],
    )
    live = live_endpoint(endpoint_ip_address_type="dual-stack", traffic_ip_address_type="dual-stack")
    result = plan(desired, live)
    assert sorted((c.action, c.summary) for c in result.changes) == [
        ("authorize-rule", f"authorize group {GROUP} to 2001:db8::/56"),
        ("create-route", f"add route 2001:db8::/56 via {SUBNET_A}"),
        ("create-route", f"add route 2001:db8::/56 via {SUBNET_B}"),
    ]


def only_refusal(result: Plan) -> Any:
    assert len(result.refusals) == 1 and not result.changes, (result.refusals, result.changes)
    return result.refusals[0]


# ------------------------------------------------------------------------------------------ adopt
def test_the_document_of_a_live_endpoint_plans_no_change() -> None:
    live = live_endpoint(
        login_banner="hello",
        split_tunnel=True,
        session_timeout_hours=12,
        authentication=AD_AND_TLS,
        certificate_revocation_list=make_crl_pem([3]),
        client_route_enforcement=True,
        disconnect_on_session_timeout=False,
        routes=[
            *live_endpoint().routes,
            LiveRoute(destination_cidr="2001:db8::/56", subnet_id=SUBNET_A),
            LiveRoute(destination_cidr="2001:db8::/56", subnet_id=SUBNET_B),
        ],
        endpoint_ip_address_type="dual-stack",
        traffic_ip_address_type="dual-stack",
    )
    desired = desired_state_from_live(live, "NET-9", "bob@example.com")
    assert desired.request_id == "NET-9" and desired.tags == {"team": "net"}
    assert desired.schema_version == "2" and desired.endpoint_id == live.endpoint_id
    assert plan(desired, live).no_changes


def test_adopting_an_endpoint_without_a_rule_names_what_is_missing() -> None:
    with pytest.raises(CannotAdopt, match="authorization_rules"):
        desired_state_from_live(live_endpoint(authorization_rules=[]), "NET-9", "bob")


def test_adoption_notes_name_a_route_through_some_subnets_only() -> None:
    live = live_endpoint(routes=[LiveRoute(destination_cidr="10.70.0.0/16", subnet_id=SUBNET_A)])
    notes = adoption_notes(live)
    assert any("10.70.0.0/16" in note and SUBNET_B in note for note in notes)
    assert [c.summary for c in plan(desired_state_from_live(live, "NET-9", "bob"), live).changes] == [
        f"add route 10.70.0.0/16 via {SUBNET_B}"
    ]
