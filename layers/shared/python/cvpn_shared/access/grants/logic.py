"""How grants change: the transitions (pure functions over ``Grant``) and ``AccessGrants``, which does
them against the table, the expiry schedules and the live sessions.

Transitions, each recorded in the grant's history with who, when and why:

- ``requested`` (-> pending): someone asked; ``activated`` (pending -> active): approved; the grant
  runs from then for its ``hours``.
- ``break-glass`` (-> active): an administrator granted it at once, without an approver.
- ``extended`` (active -> active): the end moves later (never earlier: that is a revocation).
- ``expired`` (active -> expired): its end came; a pending grant whose approval never came is
  revoked instead, by whoever cleans it up.
- ``revoked`` (pending or active -> revoked): ended at once.

Ordering that keeps access bounded when a step fails: the expiry schedule is set *before* a grant
becomes active or longer, so an active grant always has a schedule at or after its end (a schedule
whose grant write then failed finds nothing to expire and does nothing); sessions are cut *after*
the grant stopped counting at connect, so a reconnect cannot slip in between.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from cvpn_shared.access.grants.models import (
    FINAL_STATES,
    Actor,
    Approver,
    ExtensionRequest,
    Grant,
    GrantAsk,
    GrantInvalid,
    Person,
    Transition,
    parse_grant,
    utc,
)
from cvpn_shared.access.profiles import NetworkProfile, ProfileCatalog, ProfileInvalid
from cvpn_shared.core.field_errors import field_errors

__all__ = [
    "EXPIRY_ACTOR",
    "AccessGrants",
    "ConnectEntry",
    "ConnectHandlers",
    "EndpointDirectory",
    "ExpirySchedules",
    "GrantConflict",
    "GrantHook",
    "GrantNotFound",
    "GrantStore",
    "Outcome",
    "Sessions",
    "activate",
    "approve_extension",
    "ask_extension",
    "break_glass",
    "connect_entry_after",
    "expire",
    "extend",
    "new_grant_id",
    "refuse_extension",
    "request",
    "revoke",
]

EXPIRY_ACTOR = Actor(kind="system", id="expiry-schedule", name="expiry schedule")


class GrantNotFound(LookupError):
    """No grant with that id."""


class GrantConflict(Exception):
    """The grant changed (or was created) meanwhile, or the change asked is not allowed in its state."""


def new_grant_id() -> str:
    """``g-`` and 128 random bits in hex: unguessable, and valid as a schedule name."""
    return "g-" + secrets.token_hex(16)


# ------------------------------------------------------------------------------------- transitions
def _checked_hours(hours: float | None, profile: NetworkProfile) -> float:
    chosen = profile.default_grant_hours if hours is None else hours
    if isinstance(chosen, bool) or not isinstance(chosen, int | float) or not chosen > 0:
        raise GrantInvalid.one("hours", f"must be a number of hours above 0, got {hours!r}")
    if chosen > profile.max_grant_hours:
        raise GrantInvalid.one(
            "hours",
            f"{chosen:g} is longer than profile {profile.name}'s longest grant "
            f"({profile.max_grant_hours:g} h)",
        )
    return float(chosen)


def _checked_groups(groups: Sequence[str], profile: NetworkProfile) -> list[str]:
    chosen = list(groups) or [group.id for group in profile.access_groups]
    errors = [
        {"field": f"access_groups[{index}]", "message": f"{group!r} is not offered by profile {profile.name}"}
        for index, group in enumerate(chosen)
        if profile.access_group(group) is None
    ]
    if errors:
        raise GrantInvalid(errors)
    return chosen


def _grants_profile(profile: NetworkProfile) -> str:
    if not profile.grants_access or not profile.endpoint_request_id:
        raise GrantInvalid.one(
            "profile",
            f"{profile.name} is a legacy profile (each request builds an endpoint): set its "
            "endpoint_request_id to the shared endpoint's request to grant access on it",
        )
    return profile.endpoint_request_id


def request(
    *,
    person: Person,
    profile: NetworkProfile,
    endpoint_id: str,
    access_groups: Sequence[str],
    hours: float | None,
    reason: str,
    by: Actor,
    now: datetime,
    grant_id: str | None = None,
    request_id: str | None = None,
) -> Grant:
    """A pending grant: ``person`` asks for ``access_groups`` (all of the profile's when empty) on the
    profile's endpoint for ``hours`` (the profile's default when None), for ``reason``; ``request_id``
    names the access request (form or ticket) that asks."""
    moment = utc(now)
    return parse_grant(
        {
            "grant_id": grant_id or new_grant_id(),
            "request_id": request_id,
            "person": person,
            "profile": profile.name,
            "endpoint_id": endpoint_id,
            "endpoint_request_id": _grants_profile(profile),
            "access_groups": _checked_groups(access_groups, profile),
            "hours": _checked_hours(hours, profile),
            "reason": reason,
            "state": "pending",
            "created_at": moment,
            "history": [
                _transition(
                    action="requested",
                    from_state=None,
                    to_state="pending",
                    at=moment,
                    by=by,
                    reason=reason,
                    request_id=request_id,
                )
            ],
        }
    )


def _transition(**fields: Any) -> Transition:
    """A history entry; a reason too long names the field."""
    try:
        return Transition.model_validate(fields)
    except ValidationError as error:
        raise GrantInvalid(field_errors(error)) from None


def _step(grant: Grant, action: str, to_state: str, *, at: datetime, by: Actor, **details: Any) -> Transition:
    """The history entry of ``grant`` leaving the state it is in for ``to_state``."""
    return _transition(action=action, from_state=grant.state, to_state=to_state, at=at, by=by, **details)


def _changed(grant: Grant, transition: Transition, **fields: Any) -> Grant:
    document = grant.model_dump()
    document.update(fields)
    document["state"] = transition.to_state
    document["history"] = [*document["history"], transition.model_dump()]
    document["version"] = grant.version + 1
    return parse_grant(document)


def _check_approver(grant: Grant, approver: Approver) -> None:
    if approver.key == grant.person.key:
        raise GrantInvalid.one("approver", "nobody approves their own grant")


def _check_active(grant: Grant, now: datetime) -> None:
    if grant.state != "active" or grant.ends_at is None or grant.ends_at <= now:
        raise GrantConflict(f"grant {grant.grant_id} is not active: only an active grant can be extended")


def _extension_hours(grant: Grant, hours: float, profile: NetworkProfile, moment: datetime) -> float:
    """``hours`` checked against the profile, and long enough that an active grant ending that long
    after ``moment`` ends later than it does."""
    assert grant.ends_at is not None
    chosen = _checked_hours(hours, profile)
    if utc(moment + timedelta(hours=chosen)) <= grant.ends_at:
        raise GrantInvalid.one(
            "hours",
            f"{chosen:g} h from now ends before the grant's end ({grant.ends_at.isoformat()}): "
            "nothing to extend",
        )
    return chosen


def activate(grant: Grant, *, approver: Approver, by: Actor, now: datetime) -> Grant:
    """pending -> active: from now for the grant's hours, approved by ``approver``."""
    if grant.state != "pending":
        raise GrantConflict(f"grant {grant.grant_id} is {grant.state}: only a pending grant can be approved")
    _check_approver(grant, approver)
    moment = utc(now)
    ends = utc(moment + timedelta(hours=grant.hours))
    transition = _step(
        grant, "activated", "active", at=moment, by=by, ends_at=ends, request_id=grant.request_id
    )
    return _changed(grant, transition, starts_at=moment, ends_at=ends, approver=approver)


def ask_extension(
    grant: Grant,
    *,
    hours: float,
    reason: str,
    request_id: str,
    profile: NetworkProfile,
    by: Actor,
    now: datetime,
) -> Grant:
    """The owner of an active grant asks for it to end ``hours`` after the approval; it keeps its end
    until then (``pending_extension``; one at a time)."""
    _check_active(grant, now)
    if grant.pending_extension is not None:
        raise GrantConflict(
            f"grant {grant.grant_id} already waits for an extension "
            f"(request {grant.pending_extension.request_id}): wait for its decision"
        )
    moment = utc(now)
    chosen = _extension_hours(grant, hours, profile, moment)
    transition = _step(
        grant,
        "extension-requested",
        "active",
        at=moment,
        by=by,
        reason=reason,
        ends_at=grant.ends_at,
        request_id=request_id,
    )
    try:
        wanted = ExtensionRequest(hours=chosen, reason=reason, requested_at=moment, request_id=request_id)
    except ValidationError as error:
        raise GrantInvalid(field_errors(error)) from None
    return _changed(grant, transition, pending_extension=wanted)


def approve_extension(
    grant: Grant, *, request_id: str, approver: Approver, by: Actor, now: datetime
) -> Grant:
    """The extension ``request_id`` is approved: the grant ends its hours after ``now``."""
    wanted = grant.pending_extension
    if grant.state != "active" or wanted is None or wanted.request_id != request_id:
        raise GrantConflict(
            f"grant {grant.grant_id} waits for no extension {request_id} (it is {grant.state})"
        )
    if grant.ends_at is None or grant.ends_at <= now:
        raise GrantConflict(f"grant {grant.grant_id} ended before its extension was approved")
    _check_approver(grant, approver)
    moment = utc(now)
    ends = max(utc(moment + timedelta(hours=wanted.hours)), grant.ends_at)
    transition = _step(
        grant,
        "extended",
        "active",
        at=moment,
        by=by,
        reason=wanted.reason,
        ends_at=ends,
        request_id=request_id,
    )
    return _changed(grant, transition, ends_at=ends, pending_extension=None)


def refuse_extension(grant: Grant, *, request_id: str, by: Actor, reason: str, now: datetime) -> Grant | None:
    """The extension ``request_id`` was refused (or nobody decided): the grant keeps its end. None when
    the grant no longer waits for it (it ended, or the refusal was recorded already)."""
    wanted = grant.pending_extension
    if grant.state != "active" or wanted is None or wanted.request_id != request_id:
        return None
    transition = _step(
        grant,
        "extension-refused",
        "active",
        at=utc(now),
        by=by,
        reason=reason,
        ends_at=grant.ends_at,
        request_id=request_id,
    )
    return _changed(grant, transition, pending_extension=None)


def break_glass(pending: Grant, *, by: Actor, now: datetime) -> Grant:
    """The grant ``request`` just made (not stored), active at once: given by ``by`` without approval,
    recorded as break-glass."""
    if pending.state != "pending":
        raise GrantConflict(f"grant {pending.grant_id} is {pending.state}: break-glass takes a new request")
    moment = utc(now)
    ends = utc(moment + timedelta(hours=pending.hours))
    transition = _transition(
        action="break-glass",
        from_state=None,
        to_state="active",
        at=moment,
        by=by,
        reason=pending.reason,
        ends_at=ends,
    )
    document = pending.model_dump()
    document.update(
        state="active", starts_at=moment, ends_at=ends, break_glass=True, granted_by=by, history=[transition]
    )
    return parse_grant(document)


def extend(
    grant: Grant, *, hours: float, profile: NetworkProfile, by: Actor, reason: str, now: datetime
) -> Grant:
    """active -> active, ending ``hours`` from now (at most the profile's longest grant, and later than
    the end it has)."""
    _check_active(grant, now)
    moment = utc(now)
    ends = utc(moment + timedelta(hours=_extension_hours(grant, hours, profile, moment)))
    transition = _step(grant, "extended", "active", at=moment, by=by, reason=reason, ends_at=ends)
    return _changed(grant, transition, ends_at=ends)


def expire(grant: Grant, *, now: datetime) -> Grant | None:
    """active -> expired when its end has come; None when there is nothing to expire (already ended,
    revoked, or extended past ``now``), so an expiry that fires twice or late changes nothing."""
    if grant.state != "active" or grant.ends_at is None or grant.ends_at > now:
        return None
    transition = _step(grant, "expired", "expired", at=utc(now), by=EXPIRY_ACTOR, ends_at=grant.ends_at)
    return _changed(grant, transition, pending_extension=None)


def revoke(grant: Grant, *, by: Actor, reason: str, now: datetime) -> Grant:
    """pending or active -> revoked, at once (an active grant ends now)."""
    if grant.state in FINAL_STATES:
        raise GrantConflict(f"grant {grant.grant_id} is already {grant.state}")
    moment = utc(now)
    ends = min(grant.ends_at, moment) if grant.ends_at else None
    starts = grant.starts_at
    if starts is not None and ends is not None and ends <= starts:
        ends = starts + timedelta(seconds=1)  # revoked in its first second: an end must follow the start
    transition = _step(grant, "revoked", "revoked", at=moment, by=by, reason=reason, ends_at=ends)
    return _changed(grant, transition, ends_at=ends, pending_extension=None)


# ----------------------------------------------------------------------------- the connect-time item
@dataclass(frozen=True)
class ConnectEntry:
    """The connect-time item of one (endpoint, VPN user name): the end of each active grant there.

    ``active_until`` is the latest of them: what the client-connect handler compares with now.
    """

    endpoint_id: str
    vpn_user_key: str
    grants: dict[str, int]  # grant id -> end, POSIX seconds
    version: int = 0  # 0: no item stored yet

    @property
    def active_until(self) -> int:
        return max(self.grants.values(), default=0)


def connect_entry_after(entry: ConnectEntry, grant: Grant) -> ConnectEntry:
    """``entry`` once ``grant`` is written: an active grant counts until its end, any other not at all."""
    grants = dict(entry.grants)
    if grant.state == "active" and grant.ends_at is not None:
        grants[grant.grant_id] = int(grant.ends_at.timestamp())
    else:
        grants.pop(grant.grant_id, None)
    return ConnectEntry(entry.endpoint_id, entry.vpn_user_key, grants, entry.version)


# ------------------------------------------------------------------------------------------- ports
class GrantStore(Protocol):
    """Where grants and the connect-time items are kept (the DynamoDB table)."""

    def get(self, grant_id: str) -> Grant | None: ...

    def write(self, previous: Grant | None, grant: Grant) -> ConnectEntry:
        """Create ``grant`` (``previous`` None) or replace ``previous`` with it, and its connect-time
        item with it, atomically; GrantConflict when the stored grant is not ``previous``. Returns the
        connect-time item as written."""
        ...

    def of_person(self, person_key: str) -> list[Grant]: ...

    def of_vpn_user(self, vpn_user_key: str) -> list[Grant]: ...

    def on_endpoint(self, endpoint_id: str) -> list[Grant]: ...

    def every(self) -> list[Grant]: ...

    def enforce(self, endpoint_id: str, *, profile: str, by: str, at: datetime) -> bool:
        """Begin refusing users without an active grant at connect on ``endpoint_id`` (the
        endpoint-policy item); False when it already did."""
        ...

    def relax(self, endpoint_id: str) -> bool:
        """Stop refusing users without a grant on ``endpoint_id``; False when it did not."""
        ...

    def enforcement(self, endpoint_id: str) -> dict[str, str] | None:
        """The endpoint-policy item's fields, None when the endpoint does not enforce grants."""
        ...


class ExpirySchedules(Protocol):
    """One-time schedules that expire grants (EventBridge Scheduler)."""

    def set(self, grant_id: str, at: datetime) -> None:
        """Create or move the schedule of ``grant_id`` to fire at ``at``."""
        ...

    def remove(self, grant_id: str) -> None:
        """Delete the schedule of ``grant_id``; one already gone is fine."""
        ...


class Sessions(Protocol):
    """The live VPN sessions of an endpoint."""

    def terminate(self, endpoint_id: str, vpn_user: str) -> int:
        """Cut every live session of ``vpn_user``; how many were cut."""
        ...


class EndpointDirectory(Protocol):
    """Which endpoint a request provisioned."""

    def endpoint_of(self, request_id: str) -> str | None:
        """The live endpoint the request ``request_id`` provisioned, None when it has none."""
        ...


class ConnectHandlers(Protocol):
    """The client-connect handler of endpoints: what refuses users without a grant at connect."""

    def ensure(self, endpoint_id: str) -> bool:
        """Turn the product's client-connect handler on for ``endpoint_id`` unless it is; True when it
        was turned on now."""
        ...


class GrantHook(Protocol):
    """What else happens when a grant becomes active, is extended or ends (a ticket's comments and
    day-before reminder; the personal client certificate of a mutual-TLS endpoint). Called in order
    after the grant is stored, so a hook never changes it; one that raises fails the call and skips
    the hooks after it (the ticket's swallows its errors, and comes first)."""

    def activated(self, grant: Grant, now: datetime) -> None:
        """``grant`` became active (approved, or break-glass)."""
        ...

    def extended(self, grant: Grant, now: datetime) -> None:
        """``grant`` ends later than it did."""
        ...

    def ended(self, grant: Grant, now: datetime) -> None:
        """``grant``, which was active, expired or was revoked."""
        ...


@dataclass(frozen=True)
class Outcome:
    """A grant after a change, and the sessions cut because of it."""

    grant: Grant
    sessions_terminated: int = 0
    still_active_until: int = 0  # another active grant of the person on the endpoint, till then


class AccessGrants:
    """Grants done against their store, the expiry schedules and the endpoint's sessions."""

    def __init__(
        self,
        *,
        store: GrantStore,
        schedules: ExpirySchedules,
        sessions: Sessions,
        profiles: ProfileCatalog,
        endpoints: EndpointDirectory,
        clock: Callable[[], datetime],
        connect_handlers: ConnectHandlers | None = None,
        hooks: Sequence[GrantHook] = (),
    ) -> None:
        self.store = store
        self._connect_handlers = connect_handlers
        self._hooks = tuple(hooks)
        self._schedules = schedules
        self._sessions = sessions
        self._profiles = profiles
        self._endpoints = endpoints
        self._clock = clock

    def now(self) -> datetime:
        """The time grants change at (the services' time, as the clock given says it)."""
        return self._clock()

    def profile(self, name: str) -> NetworkProfile:
        try:
            profile = self._profiles.get_profile(name)
        except ProfileInvalid as error:
            raise GrantInvalid.one("profile", str(error)) from None
        if profile is None:
            raise GrantInvalid.one("profile", f"no network profile named {name!r}")
        return profile

    def endpoint_of(self, profile: NetworkProfile) -> str:
        """The live endpoint a profile names (a legacy one too, when it names one); GrantInvalid
        naming the profile otherwise."""
        request_id = profile.endpoint_request_id
        endpoint_id = self._endpoints.endpoint_of(request_id) if request_id else None
        if not endpoint_id:
            raise GrantInvalid.one(
                "profile",
                f"{profile.name} names no live shared endpoint (endpoint_request_id "
                f"{request_id or 'not set'})",
            )
        return endpoint_id

    def _endpoint(self, profile: NetworkProfile) -> str:
        request_id = _grants_profile(profile)
        endpoint_id = self._endpoints.endpoint_of(request_id)
        if not endpoint_id:
            raise GrantInvalid.one(
                "profile",
                f"{profile.name}'s endpoint_request_id {request_id} names no live endpoint "
                "(provision it first)",
            )
        return endpoint_id

    def _enforce(self, grant: Grant, by: Actor) -> None:
        """An endpoint enforces grants at connect from its first active grant on (a grant that did
        not gate anything would mislead its reviewers); written before the grant counts. The
        endpoint's client-connect handler, which does the refusing, is turned on if it is not (an
        endpoint an administrator provisioned without it would otherwise admit anyone)."""
        if self._connect_handlers is not None:
            self._connect_handlers.ensure(grant.endpoint_id)
        self.store.enforce(grant.endpoint_id, profile=grant.profile, by=by.id, at=self._clock())

    def enforce(self, profile_name: str, *, by: Actor) -> tuple[str, bool]:
        """Begin enforcing grants at connect on the endpoint of a grants profile: its endpoint id, and
        False when it already did."""
        profile = self.profile(profile_name)
        endpoint_id = self._endpoint(profile)
        return endpoint_id, self.store.enforce(endpoint_id, profile=profile.name, by=by.id, at=self._clock())

    def get(self, grant_id: str) -> Grant:
        grant = self.store.get(grant_id)
        if grant is None:
            raise GrantNotFound(f"no grant {grant_id}")
        return grant

    def grant_break_glass(self, ask: GrantAsk, *, by: Actor) -> Grant:
        """An active grant now, without approval, recorded as break-glass by ``by``."""
        now = self._clock()
        grant = break_glass(self._asked(ask, by=by, now=now), by=by, now=now)
        self._enforce(grant, by)
        self._schedule_and_write(None, grant)
        self._activated(grant)
        return grant

    def new_request(self, ask: GrantAsk, *, by: Actor, request_id: str | None = None) -> Grant:
        """The pending grant ``by`` asks (in the access request ``request_id``), checked against its
        profile, not stored yet."""
        return self._asked(ask, by=by, now=self._clock(), request_id=request_id)

    def _asked(self, ask: GrantAsk, *, by: Actor, now: datetime, request_id: str | None = None) -> Grant:
        profile = self.profile(ask.profile)
        return request(
            person=ask.person,
            profile=profile,
            endpoint_id=self._endpoint(profile),
            access_groups=ask.access_groups,
            hours=ask.hours,
            reason=ask.reason,
            by=by,
            now=now,
            request_id=request_id,
        )

    def _schedule_and_write(self, current: Grant | None, grant: Grant) -> None:
        """Store ``grant``, active, replacing ``current``: its expiry is scheduled first, so an active
        grant always has a schedule at or after its end."""
        assert grant.ends_at is not None
        self._schedules.set(grant.grant_id, grant.ends_at)
        self.store.write(current, grant)

    def request(self, ask: GrantAsk, *, by: Actor, request_id: str | None = None) -> Grant:
        """A pending grant, waiting for approval (stored)."""
        grant = self.new_request(ask, by=by, request_id=request_id)
        self.store.write(None, grant)
        return grant

    def activate(self, grant_id: str, *, approver: Approver, by: Actor) -> Grant:
        """Approve a pending grant: it runs from now, and its expiry is scheduled."""
        current = self.get(grant_id)
        grant = activate(current, approver=approver, by=by, now=self._clock())
        self._enforce(grant, by)
        self._schedule_and_write(current, grant)
        self._activated(grant)
        return grant

    def refuse_request(self, grant_id: str, *, by: Actor, reason: str) -> Grant | None:
        """A pending grant nobody approved (refused, or its approval expired) is revoked with
        ``reason``; None when it is not pending (decided or ended already)."""
        current = self.store.get(grant_id)
        if current is None or current.state != "pending":
            return None
        grant = revoke(current, by=by, reason=reason, now=self._clock())
        self.store.write(current, grant)
        return grant

    def ask_extension(self, grant_id: str, *, hours: float, reason: str, request_id: str, by: Actor) -> Grant:
        """Record that the grant's owner asks for an extension, waiting for approval."""
        current = self.get(grant_id)
        grant = ask_extension(
            current,
            hours=hours,
            reason=reason,
            request_id=request_id,
            profile=self.profile(current.profile),
            by=by,
            now=self._clock(),
        )
        self.store.write(current, grant)
        return grant

    def approve_extension(self, grant_id: str, *, request_id: str, approver: Approver, by: Actor) -> Grant:
        """The extension is approved: the grant (and its expiry schedule) ends its hours from now."""
        current = self.get(grant_id)
        grant = approve_extension(current, request_id=request_id, approver=approver, by=by, now=self._clock())
        self._schedule_and_write(current, grant)
        self._extended(grant)
        return grant

    def refuse_extension(self, grant_id: str, *, request_id: str, by: Actor, reason: str) -> Grant | None:
        """The extension was refused or expired: the grant keeps its end; None when nothing waited."""
        current = self.store.get(grant_id)
        if current is None:
            return None
        grant = refuse_extension(current, request_id=request_id, by=by, reason=reason, now=self._clock())
        if grant is not None:
            self.store.write(current, grant)
        return grant

    def extend(self, grant_id: str, *, hours: float, by: Actor, reason: str) -> Grant:
        """Move an active grant's end (and its expiry schedule) to ``hours`` from now."""
        current = self.get(grant_id)
        grant = extend(
            current,
            hours=hours,
            profile=self.profile(current.profile),
            by=by,
            reason=reason,
            now=self._clock(),
        )
        self._schedule_and_write(current, grant)
        self._extended(grant)
        return grant

    def revoke(self, grant_id: str, *, by: Actor, reason: str) -> Outcome:
        """End a grant at once: it stops counting at connect, the person's sessions on the endpoint
        are cut (unless another active grant still lets them in), its schedule goes."""
        current = self.get(grant_id)
        moment = self._clock()
        grant = revoke(current, by=by, reason=reason, now=moment)
        return self._ended(current, grant, moment)

    def expire(self, grant_id: str, *, not_before: datetime | None = None) -> Outcome | None:
        """What the expiry schedule runs: expire the grant if its end has come (None otherwise: it was
        revoked, extended, or expired already). ``not_before``: the time the schedule was due, which
        counts as now when the function's clock is behind it."""
        current = self.store.get(grant_id)
        if current is None:
            return None
        moment = self._clock()
        if not_before is not None and not_before > moment:
            moment = not_before
        grant = expire(current, now=moment)
        if grant is None:
            return None
        return self._ended(current, grant, moment)

    def _activated(self, grant: Grant) -> None:
        now = self._clock()
        for hook in self._hooks:
            hook.activated(grant, now)

    def _extended(self, grant: Grant) -> None:
        now = self._clock()
        for hook in self._hooks:
            hook.extended(grant, now)

    def _ended(self, current: Grant, grant: Grant, moment: datetime) -> Outcome:
        entry = self.store.write(current, grant)
        now = int(moment.timestamp())
        cut = 0
        if current.state == "active" and entry.active_until <= now:
            cut = self._sessions.terminate(grant.endpoint_id, grant.person.vpn_user)
        self._schedules.remove(grant.grant_id)
        if current.state == "active":  # a request refused before it was ever active ends nothing
            for hook in self._hooks:
                hook.ended(grant, moment)
        return Outcome(grant, cut, entry.active_until if entry.active_until > now else 0)

    def offboard(self, vpn_user: str, *, by: Actor, reason: str) -> list[Outcome]:
        """Revoke every pending or active grant of the person known to the VPN as ``vpn_user``, and of
        every identity that held a grant under that name, on every endpoint."""
        seen = self.store.of_vpn_user(vpn_user.lower())
        people = {grant.person.key for grant in seen}
        grants = {grant.grant_id: grant for grant in seen}
        for key in sorted(people):
            grants.update({grant.grant_id: grant for grant in self.store.of_person(key)})
        outcomes = []
        for grant in sorted(grants.values(), key=lambda item: item.created_at):
            if grant.state in FINAL_STATES:
                continue
            outcomes.append(self.revoke(grant.grant_id, by=by, reason=reason))
        return outcomes

    def listing(
        self, *, endpoint_id: str | None = None, vpn_user: str | None = None, active_only: bool = False
    ) -> list[Grant]:
        """Grants, newest first: on ``endpoint_id``, of ``vpn_user``, and only active ones (at now)."""
        if vpn_user:
            found: Iterable[Grant] = self.store.of_vpn_user(vpn_user.lower())
            if endpoint_id:
                found = [grant for grant in found if grant.endpoint_id == endpoint_id]
        elif endpoint_id:
            found = self.store.on_endpoint(endpoint_id)
        else:
            found = self.store.every()
        now = self._clock()
        return sorted(
            (grant for grant in found if not active_only or grant.is_active_at(now)),
            key=lambda grant: (grant.created_at, grant.grant_id),
            reverse=True,
        )
