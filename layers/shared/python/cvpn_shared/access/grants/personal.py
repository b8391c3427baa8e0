"""What a signed-in person sees of their own grants: the "My access" page's views and configuration links.

A person is their OpenID Connect issuer and ``sub`` (``<issuer>#<sub>``), nothing else: a token whose
e-mail names someone else reads nothing of theirs, and a grant of someone else reads as if it did not
exist (the same answer as an unknown id, so ids of other people's grants cannot be probed).

Time is the cloud's: ``now`` is read after the grants, from a clock that follows the ``Date`` of the
grants table's answers (on the local cloud the services, and the expiry schedules, run on an emulated
clock that may be ahead of the function's), so a countdown ends when the grant does.

Phases tell how a grant got where it is in plain words with their times, from its history: submitted,
waiting for approval by ..., approved by ..., active until ..., an extension asked, extended or
refused, expired or revoked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cvpn_shared.access.grants.models import GRANT_ID, Grant, GrantInvalid, Transition

__all__ = [
    "ConfigurationLinks",
    "ConfigurationMissing",
    "PersonalGrantReader",
    "PersonalGrants",
    "configuration_path",
    "grant_phases",
    "grant_view",
    "person_key",
]


class ConfigurationMissing(Exception):
    """The endpoint of an active grant has no exported client configuration to hand out."""


class PersonalGrantReader(Protocol):
    """The grants table, read (``DynamoDbGrants``)."""

    def get(self, grant_id: str) -> Grant | None: ...

    def of_person(self, person_key: str) -> list[Grant]: ...


class ConfigurationLinks(Protocol):
    """The client-configuration bucket (``ConfigurationStore``)."""

    def exists(self, key: str) -> bool: ...

    def presigned_url(self, key: str, ttl_seconds: int, filename: str) -> str: ...


def person_key(issuer: str, subject: str) -> str:
    """How grants key a person: ``<issuer>#<sub>`` (``Person.key`` of the grant model)."""
    return f"{issuer}#{subject}"


def configuration_path(grant_id: str) -> str:
    return f"/grants/{grant_id}/configuration"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _words(moment: datetime) -> str:
    """A time as people read it in a sentence, in UTC (the page shows local times beside it)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _hours(hours: float) -> str:
    return f"{hours:g} hour" + ("" if hours == 1 else "s")


def _with_reason(text: str, reason: str) -> str:
    return f"{text}: {reason}" if reason else text


def _ended(grant: Grant, now: datetime) -> bool:
    """Active by its record, but its end has come (the expiry schedule has not run yet)."""
    return grant.state == "active" and grant.ends_at is not None and grant.ends_at <= now


def _phase(phase: str, text: str, at: datetime) -> dict[str, str]:
    return {"phase": phase, "text": text, "at": _iso(at)}


def _transition_phases(
    grant: Grant, transition: Transition, waiting_for: str, last: bool
) -> list[dict[str, str]]:
    by, at, reason = transition.by.name, transition.at, transition.reason
    if transition.action == "requested":
        phases = [_phase("submitted", f"Submitted: {_hours(grant.hours)} of access asked", at)]
        if last and grant.state == "pending":
            phases.append(_phase("waiting", f"Waiting for approval by {waiting_for}", at))
        return phases
    if transition.action in ("activated", "break-glass"):
        approved = (
            f"Granted at once (break-glass) by {by}"
            if transition.action == "break-glass"
            else f"Approved by {grant.approver.name if grant.approver else by}"
        )
        until = transition.ends_at or grant.ends_at
        return [
            _phase("approved", approved, at),
            _phase("active", f"Active until {_words(until)}" if until else "Active", at),
        ]
    if transition.action == "extension-requested":
        asked = grant.pending_extension if last else None
        if asked is None:
            return [_phase("extension-waiting", _with_reason("Extension asked", reason), at)]
        text = f"Extension by {_hours(asked.hours)} asked; waiting for approval by {waiting_for}"
        return [_phase("extension-waiting", text, at)]
    if transition.action == "extended":
        new_end = f" until {_words(transition.ends_at)}" if transition.ends_at else ""
        return [_phase("extended", f"Extended{new_end} by {by}", at)]
    if transition.action == "extension-refused":
        return [_phase("refused", _with_reason(f"Extension refused by {by}", reason), at)]
    if transition.action == "expired":
        return [_phase("expired", f"Expired: access ended at {_words(transition.ends_at or at)}", at)]
    if transition.action == "revoked":
        if transition.from_state == "pending":
            refused = "Not approved" if transition.by.kind == "system" else f"Refused by {by}"
            return [_phase("refused", _with_reason(refused, reason), at)]
        return [_phase("revoked", _with_reason(f"Revoked by {by}", reason), at)]
    return []


def grant_phases(grant: Grant, *, waiting_for: str, now: datetime) -> list[dict[str, str]]:
    """The grant's phases in plain words with their times, oldest first.

    ``waiting_for`` names who approves (e.g. "a member of vpn-approvers"); ``now`` adds the expiry of
    a grant whose end came before its schedule ran.
    """
    phases: list[dict[str, str]] = []
    for index, transition in enumerate(grant.history):
        phases += _transition_phases(grant, transition, waiting_for, index == len(grant.history) - 1)
    if _ended(grant, now) and grant.ends_at is not None:
        phases.append(_phase("expired", f"Expired: access ended at {_words(grant.ends_at)}", grant.ends_at))
    return phases


def grant_view(grant: Grant, *, now: datetime, waiting_for: str) -> dict[str, Any]:
    """One grant as the person's page shows it (the API's view; see the module's docstring)."""
    active = grant.is_active_at(now)
    state = "expired" if _ended(grant, now) else grant.state
    seconds_left: int | None = None
    if active and grant.ends_at is not None:
        seconds_left = max(0, int((grant.ends_at - now).total_seconds()))
    elif state in ("expired", "revoked"):
        seconds_left = 0
    extension = grant.pending_extension.model_dump(mode="json") if grant.pending_extension else None
    return {
        "grant_id": grant.grant_id,
        "profile": grant.profile,
        "endpoint_id": grant.endpoint_id,
        "access_groups": list(grant.access_groups),
        "state": state,
        "hours": grant.hours,
        "reason": grant.reason,
        "created_at": _iso(grant.created_at),
        "starts_at": _iso(grant.starts_at) if grant.starts_at else None,
        "ends_at": _iso(grant.ends_at) if grant.ends_at else None,
        "seconds_left": seconds_left,
        "approved_by": grant.approved_by or None,
        "break_glass": grant.break_glass,
        "request_id": grant.request_id,
        "pending_extension": extension,
        "can_extend": active and grant.pending_extension is None,
        "configuration_url": configuration_path(grant.grant_id) if active else None,
        "phases": grant_phases(grant, waiting_for=waiting_for, now=now),
    }


@dataclass(frozen=True)
class PersonalGrants:
    """A signed-in person's grants and the configuration of their active ones.

    ``waiting_for(profile)`` names who approves the profile's requests, in words; ``clock`` is the
    time of the service that holds the grants (``ServiceClock``), read after the grants are.
    """

    store: PersonalGrantReader
    configurations: ConfigurationLinks
    waiting_for: Callable[[str], str]
    clock: Callable[[], datetime]
    link_ttl_seconds: int
    configuration_key: Callable[[str, str], str]
    # On a mutual-TLS profile: the link to the person's own .ovpn with certificate and key (None on
    # any other profile, whose endpoint's exported configuration is the same for everyone).
    personal_configuration: Callable[[Grant, int], dict[str, str] | None] | None = None

    def now(self) -> datetime:
        return self.clock().astimezone(UTC).replace(microsecond=0)

    def mine(self, issuer: str, subject: str) -> dict[str, Any]:
        """``{"now", "grants"}``: the person's grants, newest first, each as ``grant_view``."""
        key = person_key(issuer, subject)
        # the index is keyed on issuer#sub already; checked again on the grant itself
        grants = [grant for grant in self.store.of_person(key) if grant.person.key == key]
        now = self.now()
        approvers: dict[str, str] = {}
        views = []
        for grant in sorted(grants, key=lambda item: (item.created_at, item.grant_id), reverse=True):
            if grant.profile not in approvers:
                approvers[grant.profile] = self.waiting_for(grant.profile)
            views.append(grant_view(grant, now=now, waiting_for=approvers[grant.profile]))
        return {"now": _iso(now), "grants": views}

    def configuration(self, issuer: str, subject: str, grant_id: str) -> dict[str, str] | None:
        """A short-lived link to the client configuration of the person's active grant ``grant_id``;
        None when there is no such grant of theirs (another person's, unknown, not active: the same
        answer). ConfigurationMissing when the endpoint's configuration was never exported."""
        if not GRANT_ID.match(grant_id):
            raise GrantInvalid.one("grant_id", "is not a grant id (g- and 32 hexadecimal digits)")
        grant = self.store.get(grant_id)
        if grant is None or grant.person.key != person_key(issuer, subject):
            return None
        now = self.now()
        if not grant.is_active_at(now):
            return None
        if self.personal_configuration is not None:
            personal = self.personal_configuration(grant, self.link_ttl_seconds)
            if personal is not None:
                return personal
        key = self.configuration_key(grant.endpoint_request_id, grant.endpoint_id)
        if not self.configurations.exists(key):
            raise ConfigurationMissing(
                f"the client configuration of endpoint {grant.endpoint_id} is not stored (its export "
                "failed): ask an administrator to export it again"
            )
        filename = f"{grant.profile}.ovpn"
        return {
            "url": self.configurations.presigned_url(key, self.link_ttl_seconds, filename),
            "expires_at": _iso(now + timedelta(seconds=self.link_ttl_seconds)),
            "filename": filename,
        }
