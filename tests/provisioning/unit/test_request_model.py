"""The provisioning request model: valid seed requests parse, every bad field is named with its reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cvpn_shared.provisioning.models.request import ProvisionRequest
from tests.fixtures import REPO_ROOT

SEED = REPO_ROOT / "events" / "requests" / "seed-active-directory.json"


def seed() -> dict[str, Any]:
    return json.loads(SEED.read_text())


def errors_for(payload: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        ProvisionRequest.model_validate(payload)
    return {".".join(str(part) for part in error["loc"]): error["msg"] for error in caught.value.errors()}


def test_seed_request_parses_with_defaults() -> None:
    request = ProvisionRequest.model_validate(seed())
    assert str(request.client_cidr_block) == "172.16.0.0/22"
    assert [str(route.destination_cidr) for route in request.routes] == ["0.0.0.0/0", "10.200.0.0/24"]
    assert request.authentication[0].type == "active-directory"
    assert request.uses_user_authentication


@pytest.mark.parametrize("cidr", ["10.0.0.0/11", "10.0.0.0/23", "10.0.0.0/32"])
def test_client_cidr_outside_12_to_22_is_rejected(cidr: str) -> None:
    payload = seed() | {"client_cidr_block": cidr}
    errors = errors_for(payload)
    assert "between /12 and /22" in errors["client_cidr_block"]


def test_cidr_with_host_bits_is_named() -> None:
    errors = errors_for(seed() | {"client_cidr_block": "172.16.1.0/22"})
    assert "not a valid IPv4 CIDR" in errors["client_cidr_block"]


def test_bad_group_sid_for_active_directory() -> None:
    payload = seed()
    payload["authorization_rules"][0]["access_group_id"] = "Engineering"
    errors = errors_for(payload)
    assert any("authorization_rules[0].access_group_id" in msg and "SID" in msg for msg in errors.values())


def test_rule_needs_exactly_one_grantee() -> None:
    payload = seed()
    payload["authorization_rules"][0]["authorize_all_groups"] = True
    errors = errors_for(payload)
    assert any("not both" in msg for msg in errors.values())


def test_two_user_methods_are_rejected_but_mutual_tls_plus_one_is_fine() -> None:
    ad = {"type": "active-directory", "directory_id": "d-0613d679c7"}
    saml = {"type": "saml", "saml_provider_arn": "arn:aws:iam::123456789012:saml-provider/idp"}
    tls = {
        "type": "mutual-tls",
        "client_root_certificate_chain_arn": "arn:aws:acm:us-east-1:123456789012:certificate/"
        "1dbe33e6-812c-4f15-8f1d-94ea1df4618e",
    }
    errors = errors_for(seed() | {"authentication": [ad, saml]})
    assert "mutual-tls plus one user-based" in errors["authentication"]
    assert ProvisionRequest.model_validate(seed() | {"authentication": [tls, ad]}).uses_user_authentication


@pytest.mark.parametrize(
    ("field", "value", "expected_path"),
    [
        ("vpn_port", 8443, "vpn_port"),
        ("transport_protocol", "icmp", "transport_protocol"),
        ("session_timeout_hours", 48, "session_timeout_hours"),
        ("dns_servers", ["10.0.0.2", "10.0.0.3", "10.0.0.4"], "dns_servers"),
        ("security_group_ids", ["sg-0a1b2c3d"] * 2, "security_group_ids"),
        ("subnet_ids", [], "subnet_ids"),
        ("login_banner", "x" * 1401, "login_banner"),
        ("request_id", "../etc", "request_id"),
        ("unexpected", 1, "unexpected"),
    ],
)
def test_each_bad_field_is_named(field: str, value: Any, expected_path: str) -> None:
    errors = errors_for(seed() | {field: value})
    assert expected_path in errors, errors


def test_logging_needs_a_group() -> None:
    errors = errors_for(seed() | {"connection_log": {"enabled": True}})
    assert "log_group_name is required" in errors["connection_log"]


def test_client_token_is_stable_per_request_and_step() -> None:
    request = ProvisionRequest.model_validate(seed())
    assert request.client_token("associate", "subnet-1") == request.client_token("associate", "subnet-1")
    assert request.client_token("associate", "subnet-1") != request.client_token("associate", "subnet-2")
    assert len(request.client_token("create-endpoint")) <= 64


@pytest.mark.parametrize("path", sorted(SEED.parent.glob("*.json")), ids=lambda p: p.name)
def test_every_example_request_is_valid(path: Path) -> None:
    """The examples under events/requests/ are what the README points users to: they must parse."""
    request = ProvisionRequest.model_validate(json.loads(path.read_text()))
    assert request.request_id


@pytest.mark.parametrize("path", sorted((SEED.parents[1] / "profiles").glob("*.json")), ids=lambda p: p.name)
def test_every_example_network_profile_is_valid(path: Path) -> None:
    """The example profiles under events/profiles/ are what the README tells administrators to copy."""
    from cvpn_shared.access.profiles import parse_profile

    profile = parse_profile(path.stem, json.loads(path.read_text()))
    assert profile.access_groups
