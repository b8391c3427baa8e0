"""A person is an issuer + sub; claims as API Gateway passes them; the approver group of a request;
at most N requests in flight per person."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cvpn_shared.access.approval import ApproverRule, RecordedRequests
from cvpn_shared.access.form import PendingLimit, TooManyPending
from cvpn_shared.access.identity import Person, PersonUnknown, claim_values, person_from_claims
from cvpn_shared.access.profiles import NetworkProfile, ProfileInvalid, parse_profile

from .test_form import Submissions

ISSUER = "https://issuer.example"
ADA = Person(ISSUER, "sub-ada", "Ada", "ada@example.com")
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_a_person_is_their_issuer_and_sub_named_for_reading() -> None:
    person = person_from_claims(
        {"iss": ISSUER, "sub": "s-1", "email": "ada@example.com", "email_verified": "true"}
    )
    assert (person.issuer, person.subject, person.name, person.email_verified) == (
        ISSUER,
        "s-1",
        "ada@example.com",
        True,
    )
    assert person_from_claims({"iss": ISSUER, "sub": "s-1", "name": "Ada"}).name == "Ada"
    assert not person_from_claims({"iss": ISSUER, "sub": "s-1", "email_verified": False}).email_verified
    for claims, missing in (({"sub": "s-1"}, "iss"), ({"iss": ISSUER, "email": "a@b.c"}, "sub")):
        with pytest.raises(PersonUnknown, match=f"its {missing} claim is missing"):
            person_from_claims(claims)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["a", "vpn approvers"], ["a", "vpn approvers"]),
        ("[staff vpn-approvers]", ["staff", "vpn-approvers"]),  # API Gateway's rendering of an array
        ("vpn-approvers", ["vpn-approvers"]),
        ("a, b", ["a", "b"]),
        ("[]", []),
    ],
)
def test_a_group_claim_in_any_shape_gives_its_values(value: Any, expected: list[str]) -> None:
    assert claim_values({"groups": value}, "groups") == expected


def test_a_missing_claim_is_none_not_empty() -> None:
    assert claim_values({"sub": "x"}, "groups") is None


class Profiles:
    def __init__(self, **profiles: NetworkProfile | Exception | None) -> None:
        self.profiles = profiles

    def get_profile(self, name: str) -> NetworkProfile | None:
        found = self.profiles.get(name)
        if isinstance(found, Exception):
            raise found
        return found


def _rules(**profiles: NetworkProfile | Exception | None) -> RecordedRequests:
    return RecordedRequests(Submissions(), Profiles(**profiles), "groups", "stack-approvers")


def test_a_profiles_approver_group_wins_over_the_stacks(profile_document: dict[str, Any]) -> None:
    raw = json.loads(json.dumps(profile_document))
    raw.update(approver_group="eng-leads", approver_group_claim="cognito:groups")
    rules = _rules(
        engineering=parse_profile("engineering", raw), plain=parse_profile("plain", profile_document)
    )
    expected = ApproverRule("cognito:groups", "eng-leads", "profile 'engineering'")
    assert rules.approver_rule("engineering") == expected
    stack = rules.approver_rule("plain")
    assert (stack.claim, stack.group) == ("groups", "stack-approvers")
    assert rules.approver_rule(None).group == "stack-approvers"  # a ticket's request
    assert rules.approver_rule("gone").group == "stack-approvers"


def test_an_invalid_profile_lets_nobody_decide() -> None:
    rules = _rules(broken=ProfileInvalid("broken", [{"field": "vpc_id", "message": "missing"}]))
    rule = rules.approver_rule("broken")
    assert rule.group is None and "invalid" in rule.configured_in


class People:
    def __init__(self) -> None:
        self.items: dict[str, tuple[list[dict[str, Any]], int]] = {}
        self.conflicts = 0  # writes to refuse, as if another submission wrote first

    def read(self, person_key: str) -> tuple[list[dict[str, Any]], int]:
        return self.items.get(person_key, ([], 0))

    def write(self, person_key: str, requests: list[dict[str, Any]], *, version: int) -> bool:
        if self.conflicts or self.read(person_key)[1] != version:
            self.conflicts = max(0, self.conflicts - 1)
            return False
        self.items[person_key] = (list(requests), version + 1)
        return True


class Statuses:
    def __init__(self) -> None:
        self.status: dict[str, str] = {}

    def describe(self, execution_arn: str) -> dict[str, Any]:
        return {"status": self.status.get(execution_arn, "RUNNING")}

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return []


def _limit(limit: int = 3) -> tuple[PendingLimit, People, Submissions, Statuses]:
    people, submissions, statuses = People(), Submissions(), Statuses()
    return PendingLimit(people, submissions, statuses, limit), people, submissions, statuses


def _started(submissions: Submissions, request_id: str) -> None:
    submissions.put({"request_id": request_id, "execution_arn": f"arn-{request_id}"})


def test_the_request_past_the_limit_is_refused_naming_the_limit() -> None:
    limit, _, submissions, statuses = _limit(3)
    for number in range(3):
        limit.reserve(ADA, f"REQ-{number}", NOW)
        _started(submissions, f"REQ-{number}")
    with pytest.raises(
        TooManyPending, match=r"3 requests pending \(REQ-0, REQ-1, REQ-2\); the limit is 3"
    ) as raised:
        limit.reserve(ADA, "REQ-3", NOW)
    assert (raised.value.pending, raised.value.limit) == (("REQ-0", "REQ-1", "REQ-2"), 3)
    # Another person is not held back by Ada's requests.
    limit.reserve(Person(ISSUER, "sub-grace", "Grace"), "REQ-G", NOW)
    # A request that ended (approved and set up, rejected, expired) frees its place.
    statuses.status["arn-REQ-1"] = "SUCCEEDED"
    limit.reserve(ADA, "REQ-3", NOW)


def test_a_request_still_starting_counts_for_a_while() -> None:
    limit, people, _, _ = _limit(1)
    limit.reserve(ADA, "REQ-0", NOW)  # listed, its submission not recorded yet
    with pytest.raises(TooManyPending):
        limit.reserve(ADA, "REQ-1", NOW + timedelta(seconds=60))
    limit.reserve(ADA, "REQ-1", NOW + timedelta(minutes=10))  # it never started
    assert [entry["request_id"] for entry in people.items[f"{ISSUER} sub-ada"][0]] == ["REQ-1"]


def test_a_concurrent_change_is_read_again_not_overwritten() -> None:
    limit, people, _, _ = _limit(3)
    people.conflicts = 2
    limit.reserve(ADA, "REQ-0", NOW)
    assert people.items[f"{ISSUER} sub-ada"][1] == 1
    people.conflicts = 10
    with pytest.raises(TooManyPending, match="try again") as raised:
        limit.reserve(ADA, "REQ-1", NOW)
    assert (raised.value.pending, raised.value.limit) == ((), None)  # nobody to name: arrived at once
