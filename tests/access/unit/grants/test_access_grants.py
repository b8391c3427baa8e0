"""Grants kept in the grants table (moto, with the template's key and indexes): the connect-time item
follows the latest end among a user's active grants on an endpoint through activate, extend, expire
and revoke; schedules are set before access starts and removed when it ends; sessions are cut only
when no other grant lets the user in; offboarding ends every grant of a person everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvpn_shared.access.grants import logic
from cvpn_shared.access.grants.dal import DynamoDbGrants, connect_key
from cvpn_shared.access.grants.logic import AccessGrants, ConnectEntry, connect_entry_after
from cvpn_shared.access.grants.models import Grant, GrantAsk, GrantInvalid, Person
from cvpn_shared.access.profiles import NetworkProfile, parse_profile
from tests.access.unit.grants.conftest import (
    ADMIN,
    ALICE,
    BOB,
    CAROL,
    ENGINEERING,
    ISSUER,
    NOW,
    TABLE,
    profile_document,
)

ENDPOINTS = {"NET-100": "cvpn-endpoint-0000000000000000a", "NET-200": "cvpn-endpoint-0000000000000000b"}


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Schedules:
    """Records what the expiry schedules would be (EventBridge Scheduler in the stack)."""

    at: dict[str, datetime] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def set(self, grant_id: str, at: datetime) -> None:
        self.calls.append(("set", grant_id))
        self.at[grant_id] = at

    def remove(self, grant_id: str) -> None:
        self.calls.append(("remove", grant_id))
        self.at.pop(grant_id, None)


@dataclass
class Sessions:
    """Live sessions per (endpoint, user); terminate cuts them and says how many."""

    live: dict[tuple[str, str], int] = field(default_factory=dict)

    def terminate(self, endpoint_id: str, vpn_user: str) -> int:
        return self.live.pop((endpoint_id, vpn_user), 0)


class Profiles:
    def __init__(self, *profiles: NetworkProfile) -> None:
        self._profiles = {profile.name: profile for profile in profiles}

    def list_profiles(self) -> list[NetworkProfile]:
        return list(self._profiles.values())

    def get_profile(self, name: str) -> NetworkProfile | None:
        return self._profiles.get(name)


class Endpoints:
    def endpoint_of(self, request_id: str) -> str | None:
        return ENDPOINTS.get(request_id)


@dataclass
class World:
    grants: AccessGrants
    store: DynamoDbGrants
    clock: Clock
    schedules: Schedules
    sessions: Sessions
    dynamodb: Any

    def connect_item(self, endpoint_id: str, user: str) -> dict[str, Any] | None:
        """The connect-time item as the client-connect handler reads it: by its fixed key."""
        answer = self.dynamodb.batch_get_item(
            RequestItems={TABLE: {"Keys": [{"pk": {"S": connect_key(endpoint_id, user)}}]}}
        )
        items = answer["Responses"][TABLE]
        return items[0] if items else None

    def active_until(self, endpoint_id: str, user: str) -> int:
        item = self.connect_item(endpoint_id, user)
        return int(item["active_until"]["N"]) if item else 0


@pytest.fixture
def world(grants_table: Any) -> World:
    clock, schedules, sessions = Clock(), Schedules(), Sessions()
    store = DynamoDbGrants(grants_table, TABLE)
    profiles = Profiles(
        parse_profile("engineering", profile_document()),
        parse_profile("finance", profile_document(endpoint_request_id="NET-200")),
        parse_profile("old", profile_document(endpoint_request_id=None)),
        parse_profile("orphan", profile_document(endpoint_request_id="NET-999")),
    )
    grants = AccessGrants(
        store=store,
        schedules=schedules,
        sessions=sessions,
        profiles=profiles,
        endpoints=Endpoints(),
        clock=clock,
    )
    return World(grants, store, clock, schedules, sessions, grants_table)


def _break_glass(
    world: World, person: Person = ALICE, *, hours: float = 4, profile: str = "engineering"
) -> Grant:
    return world.grants.grant_break_glass(
        GrantAsk(person=person, profile=profile, access_groups=[ENGINEERING], hours=hours, reason="incident"),
        by=ADMIN,
    )


def _epoch(moment: datetime | None) -> int:
    assert moment is not None
    return int(moment.timestamp())


def test_a_break_glass_grant_is_stored_scheduled_and_counts_at_connect(world: World) -> None:
    grant = _break_glass(world)
    assert world.store.get(grant.grant_id) == grant
    assert world.schedules.at == {grant.grant_id: NOW + timedelta(hours=4)}
    endpoint = ENDPOINTS["NET-100"]
    # Client VPN user names compare without case: the item is keyed by the lower-cased name
    assert world.connect_item(endpoint, "ALICE") == world.connect_item(endpoint, "alice")
    item = world.connect_item(endpoint, "alice")
    assert item is not None and item["pk"]["S"] == f"connect#{endpoint}#alice"
    assert int(item["active_until"]["N"]) == _epoch(grant.ends_at)
    assert world.connect_item(ENDPOINTS["NET-200"], "alice") is None


def test_an_endpoint_enforces_grants_from_its_first_active_grant_or_when_told(world: World) -> None:
    """A pending grant gates nothing; the first active one (approved or break-glass) writes the
    endpoint's access-policy item before it counts, and later ones keep the first record. An
    administrator can begin it beforehand, and end it."""
    eng, fin = ENDPOINTS["NET-100"], ENDPOINTS["NET-200"]
    pending = world.grants.request(
        GrantAsk(person=ALICE, profile="engineering", hours=2, reason="debugging"), by=ADMIN
    )
    assert world.store.enforcement(eng) is None
    world.clock.now = NOW + timedelta(minutes=5)
    world.grants.activate(pending.grant_id, approver=CAROL, by=ADMIN)
    first = {
        "access": "grants",
        "profile": "engineering",
        "enforced_at": "2026-03-02T09:05:00Z",
        "enforced_by": ADMIN.id,
    }
    assert world.store.enforcement(eng) == first
    world.clock.now = NOW + timedelta(minutes=10)
    _break_glass(world, BOB)
    assert world.store.enforcement(eng) == first

    assert world.grants.enforce("finance", by=ADMIN) == (fin, True)
    assert world.grants.enforce("finance", by=ADMIN) == (fin, False)
    assert world.store.enforcement(fin) is not None
    assert world.store.relax(fin) and world.store.enforcement(fin) is None and not world.store.relax(fin)
    with pytest.raises(GrantInvalid, match="legacy profile"):
        world.grants.enforce("old", by=ADMIN)
    with pytest.raises(GrantInvalid, match="names no live endpoint"):
        world.grants.enforce("orphan", by=ADMIN)


def test_the_connect_item_holds_the_latest_end_of_several_active_grants(world: World) -> None:
    endpoint = ENDPOINTS["NET-100"]
    short, long = _break_glass(world, hours=2), _break_glass(world, hours=6)
    assert world.active_until(endpoint, "alice") == _epoch(long.ends_at)
    world.sessions.live[(endpoint, "Alice")] = 2
    outcome = world.grants.revoke(long.grant_id, by=ADMIN, reason="done early")
    # the short grant still lets Alice in: her sessions stay, the item now ends with the short grant
    assert outcome.sessions_terminated == 0 and outcome.still_active_until == _epoch(short.ends_at)
    assert world.active_until(endpoint, "alice") == _epoch(short.ends_at)
    assert world.sessions.live == {(endpoint, "Alice"): 2}
    world.clock.now = NOW + timedelta(hours=2)
    expired = world.grants.expire(short.grant_id)
    assert expired is not None and expired.grant.state == "expired" and expired.sessions_terminated == 2
    assert world.connect_item(endpoint, "alice") is None  # the last active grant ended: the item goes
    assert world.sessions.live == {}


def test_extend_moves_the_connect_item_and_the_schedule_and_expiry_of_the_old_end_does_nothing(
    world: World,
) -> None:
    grant = _break_glass(world, hours=4)
    world.clock.now = NOW + timedelta(hours=3)
    extended = world.grants.extend(grant.grant_id, hours=8, by=ADMIN, reason="more")
    assert world.schedules.at[grant.grant_id] == NOW + timedelta(hours=11)
    assert world.active_until(ENDPOINTS["NET-100"], "alice") == _epoch(extended.ends_at)
    world.clock.now = NOW + timedelta(hours=4)  # a schedule of the old end, late: nothing to expire
    assert world.grants.expire(grant.grant_id) is None
    assert world.store.get(grant.grant_id) == extended
    # the schedule's time counts when the function's clock is behind it
    assert world.grants.expire(grant.grant_id, not_before=NOW + timedelta(hours=11)) is not None
    assert world.store.get(grant.grant_id).state == "expired"  # type: ignore[union-attr]
    assert world.grants.expire(grant.grant_id, not_before=NOW + timedelta(hours=12)) is None  # twice: once


def test_the_schedule_is_set_before_the_grant_counts_and_removed_when_it_ends(world: World) -> None:
    grant = _break_glass(world)
    world.grants.revoke(grant.grant_id, by=ADMIN, reason="r")
    assert world.schedules.calls == [("set", grant.grant_id), ("remove", grant.grant_id)]
    assert world.schedules.at == {}


def test_a_write_from_a_stale_copy_is_refused(world: World) -> None:
    grant = _break_glass(world)
    world.grants.revoke(grant.grant_id, by=ADMIN, reason="r")
    stale = logic.revoke(grant, by=ADMIN, reason="again", now=NOW)
    with pytest.raises(logic.GrantConflict, match="changed meanwhile"):
        world.store.write(grant, stale)
    with pytest.raises(logic.GrantConflict, match="already revoked"):
        world.grants.revoke(grant.grant_id, by=ADMIN, reason="again")
    with pytest.raises(logic.GrantNotFound):
        world.grants.revoke("g-" + "0" * 32, by=ADMIN, reason="r")


def test_pending_grants_wait_for_approval_and_do_not_count_at_connect(world: World) -> None:
    pending = world.grants.request(
        GrantAsk(person=BOB, profile="engineering", hours=None, reason="on call"), by=ADMIN
    )
    assert world.connect_item(ENDPOINTS["NET-100"], "bob") is None and world.schedules.at == {}
    world.clock.now = NOW + timedelta(minutes=10)
    active = world.grants.activate(pending.grant_id, approver=CAROL, by=ADMIN)
    assert active.starts_at == world.clock.now and active.hours == 8
    assert world.schedules.at == {pending.grant_id: world.clock.now + timedelta(hours=8)}
    assert world.active_until(ENDPOINTS["NET-100"], "bob") == _epoch(active.ends_at)


@pytest.mark.parametrize(
    ("profile", "words"),
    [
        ("nope", "no network profile named 'nope'"),
        ("old", "legacy profile"),
        ("orphan", "names no live endpoint"),
    ],
)
def test_a_grant_needs_a_grants_profile_with_a_live_endpoint(world: World, profile: str, words: str) -> None:
    with pytest.raises(GrantInvalid) as raised:
        _break_glass(world, profile=profile)
    assert words in raised.value.errors[0]["message"] and raised.value.errors[0]["field"] == "profile"
    assert world.schedules.calls == []


def test_offboarding_ends_every_grant_of_the_person_on_every_endpoint(world: World) -> None:
    on_engineering = _break_glass(world)
    on_finance = _break_glass(world, profile="finance")
    # the same person under another spelling of their user name, and a pending request
    other_name = _break_glass(world, Person(issuer=ISSUER, sub=ALICE.sub, vpn_user="alice.smith"))
    pending = world.grants.request(
        GrantAsk(person=ALICE, profile="finance", hours=1, reason="later"), by=ADMIN
    )
    bobs = _break_glass(world, BOB)
    world.sessions.live = {(ENDPOINTS["NET-100"], "Alice"): 1, (ENDPOINTS["NET-200"], "Alice"): 3}
    outcomes = world.grants.offboard("ALICE", by=ADMIN, reason="left the company")
    assert {outcome.grant.grant_id for outcome in outcomes} == {
        on_engineering.grant_id,
        on_finance.grant_id,
        other_name.grant_id,
        pending.grant_id,
    }
    assert all(outcome.grant.state == "revoked" for outcome in outcomes)
    assert sum(outcome.sessions_terminated for outcome in outcomes) == 4
    assert world.sessions.live == {}
    for endpoint in ENDPOINTS.values():
        assert world.connect_item(endpoint, "alice") is None
    assert world.connect_item(ENDPOINTS["NET-100"], "alice.smith") is None
    assert world.store.get(bobs.grant_id) == bobs and world.active_until(ENDPOINTS["NET-100"], "bob") > 0
    assert world.grants.offboard("alice", by=ADMIN, reason="again") == []  # nothing left to end


def test_the_listing_filters_by_endpoint_user_and_activity(world: World) -> None:
    first = _break_glass(world, hours=1)
    world.clock.now = NOW + timedelta(minutes=1)
    second = _break_glass(world, BOB, profile="finance")
    world.clock.now = NOW + timedelta(minutes=90)  # Alice's grant is past its end (not yet expired)
    everything = world.grants.listing()
    assert [grant.grant_id for grant in everything] == [second.grant_id, first.grant_id]  # newest first
    assert [g.grant_id for g in world.grants.listing(endpoint_id=ENDPOINTS["NET-100"])] == [first.grant_id]
    assert [g.grant_id for g in world.grants.listing(vpn_user="BOB")] == [second.grant_id]
    assert [g.grant_id for g in world.grants.listing(active_only=True)] == [second.grant_id]
    assert world.grants.listing(vpn_user="bob", endpoint_id=ENDPOINTS["NET-100"]) == []


# -------------------------------------------------------------------------- the connect-time item, fuzzed
_ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["activate", "extend", "expire", "revoke"]), st.integers(0, 3), st.integers(1, 48)
    ),
    max_size=20,
)


@settings(max_examples=1000, deadline=None, database=None)
@given(_ACTIONS)
def test_the_connect_item_is_always_the_latest_end_of_the_active_grants(
    actions: list[tuple[str, int, int]],
) -> None:
    """Whatever happens to four grants of one user on one endpoint, in any order, the connect-time
    item folded from the writes says: until the latest end among those active, none when none is."""
    profile = parse_profile("engineering", profile_document(max_grant_hours=48))
    now = NOW
    grants: dict[int, Grant] = {}
    entry = ConnectEntry("cvpn-endpoint-0000000000000000a", "alice", {})
    for action, index, hours in actions:
        now += timedelta(minutes=17)
        grant = grants.get(index)
        changed: Grant | None = None
        if action == "activate" and grant is None:
            asked = logic.request(
                person=ALICE, profile=profile, endpoint_id=entry.endpoint_id, access_groups=[],
                hours=hours, reason="r", by=ADMIN, now=now,
            )  # fmt: skip
            changed = logic.break_glass(asked, by=ADMIN, now=now)
        elif grant is not None and action == "extend" and grant.is_active_at(now):
            try:
                changed = logic.extend(grant, hours=hours, profile=profile, by=ADMIN, reason="r", now=now)
            except GrantInvalid:
                changed = None  # not later than its end: refused, nothing written
        elif grant is not None and action == "expire":
            changed = logic.expire(grant, now=now + timedelta(hours=hours))
        elif grant is not None and action == "revoke" and grant.state in ("pending", "active"):
            changed = logic.revoke(grant, by=ADMIN, reason="r", now=now)
        if changed is not None:
            grants[index] = changed
            entry = connect_entry_after(entry, changed)
        ends = [_epoch(g.ends_at) for g in grants.values() if g.state == "active"]
        assert entry.active_until == max(ends, default=0)
        assert set(entry.grants) == {g.grant_id for g in grants.values() if g.state == "active"}
