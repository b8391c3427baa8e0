"""What a signed-in person reads of their own grants: GET /me/grants and GET /grants/{id}/configuration.

Grants are written through the grants store (moto, the template's table) the way the product writes
them; the views are read back through the request API's handler. A person is issuer + sub only: a
token whose e-mail names someone else reads nothing of theirs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from cvpn_shared.access.grants import logic
from cvpn_shared.access.grants.dal import DynamoDbGrants, ServiceClock
from cvpn_shared.access.grants.models import Actor, Grant, GrantInvalid, Person, parse_grant
from cvpn_shared.access.grants.personal import ConfigurationMissing, PersonalGrants, grant_view
from cvpn_shared.access.profiles import parse_profile
from cvpn_shared.provisioning.dal.configurations import ConfigurationStore, configuration_key
from tests.access.unit.grants.conftest import (
    ALICE,
    BOB,
    CAROL,
    ENGINEERING,
    ISSUER,
    NOW,
    TABLE,
    profile_document,
)
from tests.fixtures.handlers import LambdaContext, load_handler_module

ENDPOINT = "cvpn-endpoint-0000000000000000a"
BUCKET = "client-configs"
TTL = 900
ALICE_ACTOR = Actor(kind="oidc", id=ALICE.key, name="Alice")
CAROL_ACTOR = Actor(kind="oidc", id=CAROL.key, name=CAROL.name)
ADMIN = Actor(kind="aws", id="arn:aws:iam::123456789012:user/admin", name="user/admin")
PROFILE = parse_profile("engineering", profile_document())


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    store: DynamoDbGrants
    personal: PersonalGrants
    clock: Clock
    s3: Any

    def pending(self, person: Person = ALICE, *, at: datetime = NOW, hours: float = 4) -> Grant:
        grant = logic.request(
            person=person,
            profile=PROFILE,
            endpoint_id=ENDPOINT,
            access_groups=[ENGINEERING],
            hours=hours,
            reason="on call for the build farm",
            by=Actor(kind="oidc", id=person.key, name=person.vpn_user),
            now=at,
        )
        self.store.write(None, grant)
        return grant

    def approved(self, grant: Grant, *, at: datetime) -> Grant:
        active = logic.activate(grant, approver=CAROL, by=CAROL_ACTOR, now=at)
        self.store.write(grant, active)
        return active

    def replace(self, grant: Grant, **changes: Any) -> Grant:
        """A change the approval flow makes (an extension asked, refused), written as it would be."""
        document = grant.model_dump()
        transition = changes.pop("transition")
        document.update(changes)
        document["history"] = [*document["history"], transition]
        document["version"] = grant.version + 1
        changed = parse_grant(document)
        self.store.write(grant, changed)
        return changed


def _waiting_for(profile: str) -> str:
    return f"a member of vpn-approvers ({profile})"


@pytest.fixture
def world(grants_table: Any) -> Iterator[World]:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    clock = Clock()
    store = DynamoDbGrants(grants_table, TABLE)
    personal = PersonalGrants(
        store=store,
        configurations=ConfigurationStore(s3, BUCKET),
        waiting_for=_waiting_for,
        clock=clock,
        link_ttl_seconds=TTL,
        configuration_key=configuration_key,
    )
    yield World(store, personal, clock, s3)


def _export(world: World) -> str:
    key = configuration_key("NET-100", ENDPOINT)
    world.s3.put_object(Bucket=BUCKET, Key=key, Body=b"client\nremote vpn.example 443\n")
    return key


def _phases(view: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(phase["phase"], phase["text"], phase["at"]) for phase in view["phases"]]


# --------------------------------------------------------------------------------------- the views
def test_a_persons_grants_come_newest_first_with_countdown_and_phases(world: World) -> None:
    older = world.pending(at=NOW)
    active = world.approved(older, at=NOW + timedelta(minutes=10))
    waiting = world.pending(at=NOW + timedelta(minutes=20), hours=2)
    world.pending(BOB, at=NOW + timedelta(minutes=30))
    world.clock.now = NOW + timedelta(hours=1)

    answer = world.personal.mine(ISSUER, ALICE.sub)

    assert answer["now"] == "2026-03-02T10:00:00Z"
    assert [view["grant_id"] for view in answer["grants"]] == [waiting.grant_id, active.grant_id]
    pending_view, active_view = answer["grants"]
    assert pending_view["state"] == "pending"
    assert pending_view["seconds_left"] is None and pending_view["ends_at"] is None
    assert pending_view["configuration_url"] is None and pending_view["can_extend"] is False
    assert _phases(pending_view) == [
        ("submitted", "Submitted: 2 hours of access asked", "2026-03-02T09:20:00Z"),
        (
            "waiting",
            "Waiting for approval by a member of vpn-approvers (engineering)",
            "2026-03-02T09:20:00Z",
        ),
    ]
    assert active_view["state"] == "active"
    assert active_view["ends_at"] == "2026-03-02T13:10:00Z"
    assert active_view["seconds_left"] == 3 * 3600 + 600
    assert active_view["approved_by"] == "Carol Approver"
    assert active_view["configuration_url"] == f"/grants/{active.grant_id}/configuration"
    assert active_view["can_extend"] is True and active_view["pending_extension"] is None
    assert _phases(active_view) == [
        ("submitted", "Submitted: 4 hours of access asked", "2026-03-02T09:00:00Z"),
        ("approved", "Approved by Carol Approver", "2026-03-02T09:10:00Z"),
        ("active", "Active until 2026-03-02 13:10 UTC", "2026-03-02T09:10:00Z"),
    ]
    assert set(active_view) == {
        "grant_id", "profile", "endpoint_id", "access_groups", "state", "hours", "reason", "created_at",
        "starts_at", "ends_at", "seconds_left", "approved_by", "break_glass", "request_id",
        "pending_extension", "can_extend", "configuration_url", "phases",
    }  # fmt: skip


def test_someone_with_no_grants_gets_an_empty_list(world: World) -> None:
    world.pending()
    assert world.personal.mine(ISSUER, "00u-nobody")["grants"] == []
    assert world.personal.mine("https://other-issuer.example", ALICE.sub)["grants"] == []


def test_now_is_the_grants_tables_time_when_it_is_ahead_of_the_functions(world: World) -> None:
    world.approved(world.pending(), at=NOW)
    world.clock.now = NOW + timedelta(hours=1)
    # The table dates its answers by a clock months ahead of the function's (moto: the machine's own;
    # the local cloud: its emulated clock): now is the table's, read after the grants.
    clock = ServiceClock(world.clock)
    clock.watch(world.store._dynamodb)
    personal = replace(world.personal, clock=clock)
    before = datetime.now(UTC).replace(microsecond=0)

    answer = personal.mine(ISSUER, ALICE.sub)

    (view,) = answer["grants"]
    assert datetime.fromisoformat(answer["now"]) >= before > NOW + timedelta(hours=4)
    assert view["state"] == "expired" and view["seconds_left"] == 0
    assert view["configuration_url"] is None and view["can_extend"] is False
    assert view["phases"][-1] == {
        "phase": "expired",
        "text": "Expired: access ended at 2026-03-02 13:00 UTC",
        "at": "2026-03-02T13:00:00Z",
    }


def test_an_extension_waiting_then_extended_then_refused(world: World) -> None:
    active = world.approved(world.pending(), at=NOW)
    asked_at = NOW + timedelta(hours=3)
    extension = {
        "hours": 6,
        "reason": "the migration runs late",
        "requested_at": asked_at,
        "request_id": "REQ-EXT1",
    }
    asking = world.replace(
        active,
        pending_extension=extension,
        transition={
            "action": "extension-requested", "from_state": "active", "to_state": "active", "at": asked_at,
            "by": ALICE_ACTOR, "reason": "the migration runs late",
        },
    )  # fmt: skip
    view = grant_view(asking, now=asked_at, waiting_for="a member of vpn-approvers")
    assert view["can_extend"] is False and view["configuration_url"] is not None
    assert view["pending_extension"] == {
        "hours": 6.0,
        "reason": "the migration runs late",
        "requested_at": "2026-03-02T12:00:00Z",
        "request_id": "REQ-EXT1",
    }
    assert view["phases"][-1] == {
        "phase": "extension-waiting",
        "text": "Extension by 6 hours asked; waiting for approval by a member of vpn-approvers",
        "at": "2026-03-02T12:00:00Z",
    }

    extended_at = asked_at + timedelta(minutes=5)
    extended = world.replace(
        asking,
        pending_extension=None,
        ends_at=extended_at + timedelta(hours=6),
        transition={
            "action": "extended", "from_state": "active", "to_state": "active", "at": extended_at,
            "by": CAROL_ACTOR, "ends_at": extended_at + timedelta(hours=6),
        },
    )  # fmt: skip
    view = grant_view(extended, now=extended_at, waiting_for="a member of vpn-approvers")
    assert view["can_extend"] is True and view["pending_extension"] is None
    assert view["seconds_left"] == 6 * 3600
    assert [phase["text"] for phase in view["phases"][-2:]] == [
        "Extension asked: the migration runs late",
        "Extended until 2026-03-02 18:05 UTC by Carol Approver",
    ]

    refused = world.replace(
        world.replace(
            extended,
            pending_extension={**extension, "request_id": "REQ-EXT2"},
            transition={
                "action": "extension-requested", "from_state": "active", "to_state": "active",
                "at": extended_at, "by": ALICE_ACTOR, "reason": "more",
            },
        ),
        pending_extension=None,
        transition={
            "action": "extension-refused", "from_state": "active", "to_state": "active", "at": extended_at,
            "by": CAROL_ACTOR, "reason": "not needed",
        },
    )  # fmt: skip
    view = grant_view(refused, now=extended_at, waiting_for="a member of vpn-approvers")
    assert view["phases"][-1]["phase"] == "refused"
    assert view["phases"][-1]["text"] == "Extension refused by Carol Approver: not needed"
    assert view["can_extend"] is True


def test_refused_revoked_expired_and_break_glass_read_in_plain_words(world: World) -> None:
    refused = logic.revoke(world.pending(), by=CAROL_ACTOR, reason="use the jump host", now=NOW)
    assert _phases(grant_view(refused, now=NOW, waiting_for="x"))[-1] == (
        "refused",
        "Refused by Carol Approver: use the jump host",
        "2026-03-02T09:00:00Z",
    )
    active = world.approved(world.pending(), at=NOW)
    revoked = logic.revoke(active, by=ADMIN, reason="offboarding", now=NOW + timedelta(hours=1))
    view = grant_view(revoked, now=NOW + timedelta(hours=1), waiting_for="x")
    assert (view["state"], view["seconds_left"], view["configuration_url"]) == ("revoked", 0, None)
    assert view["phases"][-1]["text"] == "Revoked by user/admin: offboarding"
    expired = logic.expire(active, now=NOW + timedelta(hours=4))
    assert expired is not None
    view = grant_view(expired, now=NOW + timedelta(hours=5), waiting_for="x")
    assert view["phases"][-1]["text"] == "Expired: access ended at 2026-03-02 13:00 UTC"
    asked = logic.request(
        person=ALICE, profile=PROFILE, endpoint_id=ENDPOINT, access_groups=[], hours=1,
        reason="incident", by=ADMIN, now=NOW,
    )  # fmt: skip
    glass = logic.break_glass(asked, by=ADMIN, now=NOW)
    view = grant_view(glass, now=NOW, waiting_for="x")
    assert view["break_glass"] is True and view["approved_by"] == "break-glass by user/admin"
    assert [phase["text"] for phase in view["phases"]] == [
        "Granted at once (break-glass) by user/admin",
        "Active until 2026-03-02 10:00 UTC",
    ]


# ------------------------------------------------------------------------------- the configuration
def test_the_owner_of_an_active_grant_gets_a_short_lived_link(world: World) -> None:
    key = _export(world)
    active = world.approved(world.pending(), at=NOW)
    world.clock.now = NOW + timedelta(minutes=1)

    link = world.personal.configuration(ISSUER, ALICE.sub, active.grant_id)

    assert link is not None
    assert link["filename"] == "engineering.ovpn"
    assert link["expires_at"] == "2026-03-02T09:16:00Z"
    url = urlsplit(link["url"])
    assert url.path == f"/{BUCKET}/{key}" or url.path == f"/{key}"
    query = parse_qs(url.query)
    # Signature Version 4 carries the lifetime, version 2 the moment it ends (moto's default client)
    assert query.get("X-Amz-Expires") == [str(TTL)] or "Expires" in query
    assert query["response-content-disposition"] == ['attachment; filename="engineering.ovpn"']


def test_no_link_for_a_pending_ended_or_someone_elses_grant(world: World) -> None:
    _export(world)
    pending = world.pending()
    bobs = world.approved(world.pending(BOB), at=NOW)
    alices = world.approved(world.pending(), at=NOW)
    assert world.personal.configuration(ISSUER, ALICE.sub, pending.grant_id) is None
    assert world.personal.configuration(ISSUER, ALICE.sub, bobs.grant_id) is None
    assert world.personal.configuration(ISSUER, ALICE.sub, "g-" + "0" * 32) is None
    world.clock.now = NOW + timedelta(hours=4)
    assert world.personal.configuration(ISSUER, ALICE.sub, alices.grant_id) is None


def test_a_malformed_grant_id_names_the_field(world: World) -> None:
    with pytest.raises(GrantInvalid) as raised:
        world.personal.configuration(ISSUER, ALICE.sub, "../etc")
    assert raised.value.errors[0]["field"] == "grant_id"


def test_an_endpoint_whose_export_failed_says_so(world: World) -> None:
    active = world.approved(world.pending(), at=NOW)
    with pytest.raises(ConfigurationMissing, match=f"configuration of endpoint {ENDPOINT} is not stored"):
        world.personal.configuration(ISSUER, ALICE.sub, active.grant_id)


# ------------------------------------------------------------------------------------ the handlers
def _event(path: str, claims: dict[str, str]) -> dict[str, Any]:
    route = "GET /me/grants" if path == "/me/grants" else "GET /grants/{grant_id}/configuration"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example",
            "domainPrefix": "api",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.1",
                "userAgent": "t",
            },
            "requestId": "r1",
            "routeKey": route,
            "stage": "$default",
            "time": "02/Mar/2026:09:00:00 +0000",
            "timeEpoch": 0,
            "authorizer": {"jwt": {"claims": claims, "scopes": None}},
        },
        "isBase64Encoded": False,
    }
    if path.startswith("/grants/"):
        event["pathParameters"] = {"grant_id": path.split("/")[2]}
    return event


ALICE_CLAIMS = {"iss": ISSUER, "sub": ALICE.sub, "email": "alice@example.com", "email_verified": "true"}
# Mallory's issuer lets her set any e-mail, even Alice's, verified: she is still not Alice.
MALLORY_CLAIMS = {"iss": ISSUER, "sub": "00u-mallory", "email": "alice@example.com", "email_verified": "true"}


@pytest.fixture
def api(world: World, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    module = load_handler_module("access/request_api")
    monkeypatch.setattr(module, "personal_grants", lambda: world.personal)
    return module


def _call(module: ModuleType, path: str, claims: dict[str, str]) -> tuple[int, dict[str, Any]]:
    answer = module.lambda_handler(_event(path, claims), LambdaContext("request-api"))
    assert answer["headers"]["Cache-Control"] == "no-store"
    return answer["statusCode"], json.loads(answer["body"])


def test_the_api_lists_my_grants_and_links_my_configuration(api: ModuleType, world: World) -> None:
    _export(world)
    active = world.approved(world.pending(), at=NOW)
    status, body = _call(api, "/me/grants", ALICE_CLAIMS)
    assert status == 200
    assert [view["grant_id"] for view in body["grants"]] == [active.grant_id]
    status, body = _call(api, f"/grants/{active.grant_id}/configuration", ALICE_CLAIMS)
    assert status == 200 and body["filename"] == "engineering.ovpn" and body["url"].startswith("http")


def test_a_token_whose_email_names_another_person_reads_nothing_of_theirs(
    api: ModuleType, world: World
) -> None:
    _export(world)
    active = world.approved(world.pending(), at=NOW)
    status, body = _call(api, "/me/grants", MALLORY_CLAIMS)
    assert (status, body["grants"]) == (200, [])
    status, body = _call(api, f"/grants/{active.grant_id}/configuration", MALLORY_CLAIMS)
    assert status == 404
    assert body == {"message": f"no active grant {active.grant_id} of yours"}


def test_the_api_answers_bad_ids_missing_exports_and_tokens_without_sub(
    api: ModuleType, world: World
) -> None:
    status, body = _call(api, "/grants/nope/configuration", ALICE_CLAIMS)
    assert status == 422 and body["errors"][0]["field"] == "grant_id"
    active = world.approved(world.pending(), at=NOW)
    status, body = _call(api, f"/grants/{active.grant_id}/configuration", ALICE_CLAIMS)
    assert status == 409 and "not stored" in body["message"]
    status, body = _call(api, "/me/grants", {"iss": ISSUER, "email": "alice@example.com"})
    assert status == 403 and "sub" in body["message"]
