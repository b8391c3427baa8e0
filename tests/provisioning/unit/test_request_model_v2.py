"""Schema version 2: the newest endpoint options, AWS's IP address type rules, version 1 unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from cvpn_shared.provisioning.models.request import ProvisionRequest
from tests.fixtures import REPO_ROOT
from tests.fixtures.crl import make_crl_pem

EVENTS = REPO_ROOT / "events" / "requests"
ENDPOINT_ID = "cvpn-endpoint-0123456789abcdef0"


def v1() -> dict[str, Any]:
    return json.loads((EVENTS / "seed-active-directory.json").read_text())


def v2(**changes: Any) -> dict[str, Any]:
    return v1() | {"schema_version": "2"} | changes


def mutual_tls_v2(**changes: Any) -> dict[str, Any]:
    return json.loads((EVENTS / "mutual-tls.json").read_text()) | {"schema_version": "2"} | changes


def errors_for(payload: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        ProvisionRequest.model_validate(payload)
    out = {}
    for error in caught.value.errors():
        path = ""
        for part in error["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        out[path] = error["msg"].removeprefix("Value error, ")
    return out


def test_version_two_defaults_mean_what_aws_defaults_mean() -> None:
    request = ProvisionRequest.model_validate(v2())
    assert request.schema_version == "2"
    assert request.endpoint_id is None
    assert request.disconnect_on_session_timeout is True
    assert request.client_route_enforcement is False
    assert (request.endpoint_ip_address_type, request.traffic_ip_address_type) == ("ipv4", "ipv4")
    assert request.connection_log.include_authorization_policy_context is False


def test_version_two_takes_every_new_option() -> None:
    request = ProvisionRequest.model_validate(
        mutual_tls_v2(
            endpoint_id=ENDPOINT_ID,
            client_route_enforcement=True,
            disconnect_on_session_timeout=False,
            endpoint_ip_address_type="dual-stack",
            traffic_ip_address_type="dual-stack",
            certificate_revocation_list=make_crl_pem(),
            routes=[{"destination_cidr": "2001:db8:1::/48"}, {"destination_cidr": "10.9.0.0/16"}],
            dns_servers=["10.0.0.2", "fd00::53"],
        )
    )
    assert request.endpoint_id == ENDPOINT_ID
    assert request.carries_ipv4 and request.carries_ipv6
    assert [str(route.destination_cidr) for route in request.routes] == ["2001:db8:1::/48", "10.9.0.0/16"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("endpoint_id", ENDPOINT_ID),
        ("client_route_enforcement", True),
        ("disconnect_on_session_timeout", False),
        ("endpoint_ip_address_type", "dual-stack"),
        ("traffic_ip_address_type", "ipv6"),
        ("certificate_revocation_list", "-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----"),
    ],
)
def test_version_one_refuses_version_two_fields_by_name(field: str, value: Any) -> None:
    errors = errors_for(v1() | {field: value})
    assert errors == {field: 'only in schema_version "2" documents; set schema_version to "2"'}


def test_version_one_refuses_nested_version_two_field() -> None:
    payload = v1()
    payload["connection_log"]["include_authorization_policy_context"] = True
    assert "schema_version" in errors_for(payload)["connection_log.include_authorization_policy_context"]


def test_a_stored_version_one_document_round_trips_as_version_one() -> None:
    dumped = ProvisionRequest.model_validate(v1()).model_dump(mode="json")
    again = ProvisionRequest.model_validate(dumped)
    assert again.schema_version == "1"
    assert again.model_dump(mode="json") == dumped


def test_version_one_still_refuses_ipv6_as_before() -> None:
    payload = v1()
    payload["routes"][1]["destination_cidr"] = "2001:db8::/48"
    assert errors_for(payload) == {
        "routes[1].destination_cidr": "'2001:db8::/48' is IPv6; Client VPN takes IPv4 CIDRs here"
    }
    payload = v1()
    del payload["client_cidr_block"]
    assert errors_for(payload) == {"client_cidr_block": "Field required"}


@pytest.mark.parametrize("endpoint_type", ["ipv4", "ipv6", "dual-stack"])
@pytest.mark.parametrize("traffic_type", ["ipv4", "ipv6", "dual-stack"])
def test_every_combination_of_address_types_exists(endpoint_type: str, traffic_type: str) -> None:
    changes: dict[str, Any] = {
        "endpoint_ip_address_type": endpoint_type,
        "traffic_ip_address_type": traffic_type,
    }
    if traffic_type == "ipv6":
        payload = v2(**changes)
        del payload["client_cidr_block"]
        payload["authorization_rules"][0]["target_network_cidr"] = "::/0"
        payload["routes"] = [{"destination_cidr": "::/0"}]
    else:
        payload = v2(**changes)
    assert ProvisionRequest.model_validate(payload).traffic_ip_address_type == traffic_type


def test_ipv6_traffic_forbids_the_client_cidr_and_ipv4_cidrs() -> None:
    errors = errors_for(v2(traffic_ip_address_type="ipv6", dns_servers=["10.0.0.2"]))
    assert "must be left out when traffic_ip_address_type is ipv6" in errors["client_cidr_block"]
    assert (
        "is IPv4 but traffic_ip_address_type is ipv6" in errors["authorization_rules[0].target_network_cidr"]
    )
    assert "is IPv4" in errors["routes[0].destination_cidr"]
    assert "is IPv4" in errors["routes[1].destination_cidr"]
    assert "traffic_ip_address_type is ipv6" in errors["dns_servers[0]"]


@pytest.mark.parametrize("traffic_type", ["ipv4", "dual-stack"])
def test_ipv4_traffic_requires_the_client_cidr(traffic_type: str) -> None:
    payload = v2(traffic_ip_address_type=traffic_type)
    del payload["client_cidr_block"]
    assert (
        f"required when traffic_ip_address_type is {traffic_type}" in errors_for(payload)["client_cidr_block"]
    )


def test_ipv6_cidrs_need_ipv6_traffic() -> None:
    payload = v2()
    payload["routes"].append({"destination_cidr": "2001:db8::/48"})
    payload["authorization_rules"].append({"target_network_cidr": "::/0", "authorize_all_groups": True})
    errors = errors_for(payload)
    assert "is IPv6 but traffic_ip_address_type is ipv4" in errors["routes[2].destination_cidr"]
    assert "ipv6 or dual-stack" in errors["authorization_rules[1].target_network_cidr"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.0/16", "PEM certificate revocation list"),
        ("-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----", "PEM certificate revocation list"),
        ("-----BEGIN X509 CRL-----\nMAA\n-----END X509 CRL-----", "not valid base64"),
        ("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----", "not a DER-encoded CRL"),
        ("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----", "PEM certificate revocation list"),
    ],
)
def test_a_bad_revocation_list_is_named_with_its_reason(value: str, expected: str) -> None:
    assert (
        expected
        in errors_for(mutual_tls_v2(certificate_revocation_list=value))["certificate_revocation_list"]
    )


def test_a_revocation_list_needs_mutual_tls() -> None:
    errors = errors_for(v2(certificate_revocation_list=make_crl_pem()))
    assert "needs mutual-tls authentication" in errors["certificate_revocation_list"]


def test_a_real_revocation_list_is_accepted_with_crlf_line_ends() -> None:
    pem = make_crl_pem().replace("\n", "\r\n")
    assert ProvisionRequest.model_validate(mutual_tls_v2(certificate_revocation_list=pem))


@pytest.mark.parametrize(
    "value", ["cvpn-endpoint-123", "vpn-0123456789abcdef0", "cvpn-endpoint-0123456789ABCDEF0"]
)
def test_endpoint_reference_is_checked(value: str) -> None:
    assert "endpoint_id" in errors_for(v2(endpoint_id=value))


def test_unknown_address_type_is_named() -> None:
    assert "endpoint_ip_address_type" in errors_for(v2(endpoint_ip_address_type="ipv5"))
