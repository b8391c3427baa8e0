"""Network profiles: administrators' documents are validated field by field; SSM holds one per profile."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from cvpn_shared.access.dal.profile_parameters import ParameterStoreProfiles
from cvpn_shared.access.profiles import ProfileInvalid, parse_profile

from .conftest import GROUP_ENGINEERING


def test_a_valid_document_becomes_a_profile_named_after_its_parameter(
    profile_document: dict[str, Any],
) -> None:
    profile = parse_profile("engineering", profile_document)
    assert profile.name == "engineering"
    assert profile.access_group(GROUP_ENGINEERING) is not None
    assert profile.access_group("S-1-5-21-1-2-3-4") is None
    assert str(profile.access_groups[0].target_network_cidr) == "0.0.0.0/0"


def test_the_public_view_shows_groups_but_no_network_ids(profile_document: dict[str, Any]) -> None:
    view = parse_profile("engineering", profile_document).public_view()
    assert view["display_name"] == "Engineering VPC (eu)"
    assert [group["name"] for group in view["access_groups"]] == ["Engineering", "Finance"]
    assert view["access"] == "legacy"
    grants = parse_profile(
        "engineering", {**profile_document, "endpoint_request_id": "NET-1", "max_grant_hours": 12}
    ).public_view()
    assert (grants["access"], grants["default_grant_hours"], grants["max_grant_hours"]) == ("grants", 8, 12)
    text = json.dumps(view)
    assert "subnet-" not in text and "vpc-" not in text and "arn:" not in text


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"subnet_ids": ["subnet-nothex"]}, "subnet_ids[0]", "should match pattern"),
        ({"access_groups": []}, "access_groups", "at least 1"),
        (
            {"access_groups": [{"id": "engineers", "name": "Engineers"}]},
            "access_groups[0].id",
            "not an Active Directory group SID",
        ),
        ({"vpc_id": "vpc-1"}, "vpc_id", "should match pattern"),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_document_names_the_field_and_the_reason(
    profile_document: dict[str, Any], change: dict[str, Any], field: str, reason: str
) -> None:
    profile_document.update(change)
    with pytest.raises(ProfileInvalid) as raised:
        parse_profile("engineering", profile_document)
    messages = {error["field"]: error["message"] for error in raised.value.errors}
    assert field in messages, messages
    assert reason in messages[field]


def test_mutual_tls_alone_cannot_offer_access_groups(profile_document: dict[str, Any]) -> None:
    profile_document["authentication"] = [
        {
            "type": "mutual-tls",
            "client_root_certificate_chain_arn": profile_document["server_certificate_arn"],
        }
    ]
    with pytest.raises(ProfileInvalid, match="mutual TLS alone has no groups"):
        parse_profile("engineering", profile_document)


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ProfileInvalid, match="must be a JSON object"):
        parse_profile("engineering", ["not", "an", "object"])


def test_parameter_store_lists_valid_profiles_and_leaves_broken_ones_out(
    aws: None, profile_document: dict[str, Any]
) -> None:
    """Given 3 parameters under the path (one broken) and 1 outside it, When listed, Then the 2 valid ones."""
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/stack/profiles/engineering", Type="String", Value=json.dumps(profile_document))
    ssm.put_parameter(
        Name="/stack/profiles/finance",
        Type="String",
        Value=json.dumps({**profile_document, "display_name": "Finance"}),
    )
    ssm.put_parameter(Name="/stack/profiles/broken", Type="String", Value="{not json")
    ssm.put_parameter(Name="/other/profiles/stray", Type="String", Value=json.dumps(profile_document))
    catalog = ParameterStoreProfiles(ssm, "/stack/profiles/")
    assert [profile.name for profile in catalog.list_profiles()] == ["engineering", "finance"]
    found = catalog.get_profile("finance")
    assert found is not None and found.display_name == "Finance"
    assert catalog.get_profile("missing") is None
    with pytest.raises(ProfileInvalid, match="must be a JSON object"):
        catalog.get_profile("broken")
