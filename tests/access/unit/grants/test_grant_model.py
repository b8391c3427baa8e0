"""The grant model and its transitions: validation names the field, durations stay within the
profile's longest, states move only the allowed ways and every move is in the history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cvpn_shared.access.grants import logic
from cvpn_shared.access.grants.models import Approver, Grant, GrantInvalid, Person, parse_grant
from cvpn_shared.access.profiles import NetworkProfile, ProfileInvalid, parse_profile
from tests.access.unit.grants.conftest import (
    ADMIN,
    ALICE,
    CAROL,
    ENGINEERING,
    FINANCE,
    ISSUER,
    NOW,
    profile_document,
)

ENDPOINT = "cvpn-endpoint-0123456789abcdef0"


def _pending(profile: NetworkProfile, **changes: Any) -> Grant:
    arguments: dict[str, Any] = {
        "person": ALICE,
        "profile": profile,
        "endpoint_id": ENDPOINT,
        "access_groups": [ENGINEERING],
        "hours": 4,
        "reason": "deploy the release",
        "by": ADMIN,
        "now": NOW,
    }
    arguments.update(changes)
    return logic.request(**arguments)


def _fields(error: GrantInvalid | ProfileInvalid) -> dict[str, str]:
    return {item["field"]: item["message"] for item in error.errors}


# ------------------------------------------------------------------------------------------ profiles
def test_a_profile_without_a_shared_endpoint_stays_legacy() -> None:
    document = profile_document(endpoint_request_id=None)
    document.pop("max_grant_hours"), document.pop("default_grant_hours")
    profile = parse_profile("engineering", document)
    assert profile.access == "legacy" and not profile.grants_access
    assert (profile.max_grant_hours, profile.default_grant_hours) == (168, 8)


def test_a_profile_naming_its_endpoint_grants_access_by_default(profile: NetworkProfile) -> None:
    assert profile.access == "grants" and profile.grants_access
    assert profile.endpoint_request_id == "NET-100"
    legacy = parse_profile("engineering", profile_document(access="legacy"))
    assert legacy.access == "legacy"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            {"endpoint_request_id": None, "access": "grants"},
            "endpoint_request_id",
            "required when access is grants",
        ),
        ({"default_grant_hours": 48}, "default_grant_hours", "longer than max_grant_hours"),
        ({"max_grant_hours": 0}, "max_grant_hours", "greater than 0"),
        ({"max_grant_hours": 9000}, "max_grant_hours", "less than or equal to 8760"),
        ({"access": "sometimes"}, "access", "'grants' or 'legacy'"),
        ({"endpoint_request_id": "bad id!"}, "endpoint_request_id", "should match pattern"),
        ({"approver_group_claim": "has space"}, "approver_group_claim", "should match pattern"),
    ],
)
def test_bad_grant_settings_of_a_profile_name_the_field(
    changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ProfileInvalid) as raised:
        parse_profile("engineering", profile_document(**changes))
    assert words in _fields(raised.value)[field]


# ------------------------------------------------------------------------------------------ request
def test_a_request_is_pending_with_the_profile_default_duration(profile: NetworkProfile) -> None:
    grant = _pending(profile, hours=None, access_groups=[])
    assert grant.state == "pending" and grant.hours == 8
    assert grant.access_groups == [ENGINEERING, FINANCE]  # none asked: all the profile offers
    assert grant.starts_at is None and grant.ends_at is None
    assert grant.endpoint_request_id == "NET-100"
    [step] = grant.history
    assert (step.action, step.from_state, step.to_state, step.by, step.at) == (
        "requested",
        None,
        "pending",
        ADMIN,
        NOW,
    )


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"hours": 25}, "hours", "longer than profile engineering's longest grant (24 h)"),
        ({"hours": 0}, "hours", "above 0"),
        ({"hours": -1}, "hours", "above 0"),
        ({"access_groups": ["S-1-5-21-1-2-3-4"]}, "access_groups[0]", "not offered by profile engineering"),
        ({"access_groups": [ENGINEERING, ENGINEERING]}, "access_groups", "listed more than once"),
        ({"reason": ""}, "reason", "at least 1 character"),
        ({"reason": "x" * 1001}, "reason", "at most 1000 characters"),
        ({"endpoint_id": "vpn-1"}, "endpoint_id", "should match pattern"),
    ],
)
def test_a_bad_request_names_the_field(
    profile: NetworkProfile, changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(GrantInvalid) as raised:
        _pending(profile, **changes)
    assert words in _fields(raised.value)[field]


@pytest.mark.parametrize(
    ("person", "field"),
    [
        ({"issuer": "ftp://login.example.com", "sub": "s", "vpn_user": "a"}, "issuer"),
        ({"issuer": "login.example.com", "sub": "s", "vpn_user": "a"}, "issuer"),
        ({"issuer": ISSUER + "#x", "sub": "s", "vpn_user": "a"}, "issuer"),
        ({"issuer": ISSUER, "sub": "", "vpn_user": "a"}, "sub"),
        ({"issuer": ISSUER, "sub": "s", "vpn_user": "two words"}, "vpn_user"),
        ({"issuer": ISSUER, "sub": "s\n", "vpn_user": "a\x00"}, "vpn_user"),
    ],
)
def test_a_person_is_an_issuer_url_a_sub_and_one_vpn_user_name(person: dict[str, str], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Person.model_validate(person)


def test_a_legacy_profile_gives_no_grants() -> None:
    legacy = parse_profile("engineering", profile_document(endpoint_request_id=None))
    with pytest.raises(GrantInvalid) as raised:
        _pending(legacy)
    assert "legacy profile" in _fields(raised.value)["profile"]


# --------------------------------------------------------------------------------------- transitions
def test_approval_starts_the_grant_now_for_its_hours(profile: NetworkProfile) -> None:
    later = NOW + timedelta(minutes=30)
    grant = logic.activate(_pending(profile), approver=CAROL, by=ADMIN, now=later)
    assert grant.state == "active" and grant.version == 2
    assert (grant.starts_at, grant.ends_at) == (later, later + timedelta(hours=4))
    assert grant.approver == CAROL and grant.approved_by == "Carol Approver"
    assert [step.action for step in grant.history] == ["requested", "activated"]
    assert grant.history[-1].ends_at == grant.ends_at


def test_nobody_approves_their_own_grant(profile: NetworkProfile) -> None:
    self_approver = Approver(issuer=ALICE.issuer, sub=ALICE.sub, name="Alice")
    with pytest.raises(GrantInvalid, match="approver: nobody approves their own grant"):
        logic.activate(_pending(profile), approver=self_approver, by=ADMIN, now=NOW)
    # the same sub at another issuer is another person
    other = Approver(issuer="https://other.example.com", sub=ALICE.sub, name="Namesake")
    assert logic.activate(_pending(profile), approver=other, by=ADMIN, now=NOW).state == "active"


def test_break_glass_is_active_at_once_and_recorded_as_such(profile: NetworkProfile) -> None:
    asked = logic.request(
        person=ALICE,
        profile=profile,
        endpoint_id=ENDPOINT,
        access_groups=[FINANCE],
        hours=2,
        reason="incident 42",
        by=ADMIN,
        now=NOW,
    )
    grant = logic.break_glass(asked, by=ADMIN, now=NOW)
    assert grant.state == "active" and grant.break_glass and grant.granted_by == ADMIN
    assert grant.approver is None and grant.approved_by == "break-glass by user/admin"
    assert grant.ends_at == NOW + timedelta(hours=2)
    assert [(step.action, step.reason) for step in grant.history] == [("break-glass", "incident 42")]


def test_a_break_glass_grant_must_say_who_gave_it(profile: NetworkProfile) -> None:
    asked = logic.request(
        person=ALICE,
        profile=profile,
        endpoint_id=ENDPOINT,
        access_groups=[],
        hours=2,
        reason="r",
        by=ADMIN,
        now=NOW,
    )
    grant = logic.break_glass(asked, by=ADMIN, now=NOW)
    document = grant.model_dump()
    document["granted_by"] = None
    with pytest.raises(GrantInvalid) as raised:
        parse_grant(document)
    assert "records who gave it" in _fields(raised.value)["granted_by"]


def test_extend_moves_the_end_later_within_the_longest_grant(profile: NetworkProfile) -> None:
    active = logic.activate(_pending(profile), approver=CAROL, by=ADMIN, now=NOW)
    later = NOW + timedelta(hours=3)
    extended = logic.extend(active, hours=10, profile=profile, by=ADMIN, reason="more work", now=later)
    assert extended.ends_at == later + timedelta(hours=10) and extended.state == "active"
    assert extended.starts_at == NOW
    with pytest.raises(GrantInvalid, match="hours: 25 is longer"):
        logic.extend(active, hours=25, profile=profile, by=ADMIN, reason="r", now=later)
    with pytest.raises(GrantInvalid, match="nothing to extend"):
        logic.extend(active, hours=0.5, profile=profile, by=ADMIN, reason="r", now=later)
    with pytest.raises(logic.GrantConflict, match="not active"):
        logic.extend(active, hours=1, profile=profile, by=ADMIN, reason="r", now=NOW + timedelta(hours=5))


def test_expiry_happens_once_and_only_at_the_end(profile: NetworkProfile) -> None:
    active = logic.activate(_pending(profile), approver=CAROL, by=ADMIN, now=NOW)
    assert logic.expire(active, now=NOW + timedelta(hours=3, minutes=59)) is None
    expired = logic.expire(active, now=NOW + timedelta(hours=4))
    assert expired is not None and expired.state == "expired"
    assert expired.history[-1].by.kind == "system"
    assert logic.expire(expired, now=NOW + timedelta(hours=5)) is None
    extended = logic.extend(
        active, hours=8, profile=profile, by=ADMIN, reason="r", now=NOW + timedelta(hours=1)
    )
    assert logic.expire(extended, now=NOW + timedelta(hours=4)) is None  # the old end: nothing to do


def test_revoke_ends_a_pending_or_active_grant_at_once_and_is_final(profile: NetworkProfile) -> None:
    pending = _pending(profile)
    refused = logic.revoke(pending, by=ADMIN, reason="not needed", now=NOW)
    assert refused.state == "revoked" and refused.ends_at is None
    active = logic.activate(_pending(profile), approver=CAROL, by=ADMIN, now=NOW)
    revoked = logic.revoke(active, by=ADMIN, reason="left the team", now=NOW + timedelta(hours=1))
    assert revoked.state == "revoked" and revoked.ends_at == NOW + timedelta(hours=1)
    assert [step.action for step in revoked.history] == ["requested", "activated", "revoked"]
    assert revoked.history[-1].reason == "left the team"
    instant = logic.revoke(active, by=ADMIN, reason="mistake", now=NOW)
    assert (
        instant.ends_at is not None and instant.starts_at is not None and instant.ends_at > instant.starts_at
    )
    for final in (revoked, logic.expire(active, now=NOW + timedelta(hours=4))):
        assert final is not None
        with pytest.raises(logic.GrantConflict, match="already"):
            logic.revoke(final, by=ADMIN, reason="again", now=NOW + timedelta(hours=6))
        with pytest.raises(logic.GrantConflict):
            logic.activate(final, approver=CAROL, by=ADMIN, now=NOW)


def test_a_stored_grant_round_trips_through_json(profile: NetworkProfile) -> None:
    grant = logic.activate(_pending(profile), approver=CAROL, by=ADMIN, now=NOW)
    assert parse_grant(grant.model_dump(mode="json")) == grant
