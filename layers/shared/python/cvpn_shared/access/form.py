"""The request form's logic: a person's submission becomes a full request, and its status is followed.

A submission names a network profile, the access groups wanted and a justification. The requester is
who the API's JWT authorizer says signed in, never a field of the form: recorded by issuer + ``sub``
(``cvpn_shared.access.identity``), with a name to read (``requester_from_claims``). A person has at
most a set number of requests in flight (``PendingLimit``).
``submit_form`` builds the ``ProvisionRequest`` from the profile, holds a client CIDR from the pool,
and starts the intake state machine with approval required. ``request_status`` follows the request
through its executions (the intake execution and any execution it started) to the download link of
the client configuration; it follows requests a ticket webhook started for the person in the same way.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from cvpn_shared.access.access_requests import (
    AccessRequestAccepted,
    AccessRequestServices,
    RequestOrigin,
    grant_request_status,
    start_access_request,
)
from cvpn_shared.access.cidr_pool import (
    AllocationStore,
    CidrPool,
    CidrPoolExhausted,
    allocate_client_cidr,
    networks_in_use,
)
from cvpn_shared.access.grants.models import GrantAsk, GrantInvalid
from cvpn_shared.access.grants.models import Person as GrantPerson
from cvpn_shared.access.identity import Person, PersonUnknown, vpn_user_from_claims
from cvpn_shared.access.profiles import (
    PROFILE_NAME,
    NetworkProfile,
    ProfileCatalog,
    ProfileInvalid,
    named_field_errors,
)
from cvpn_shared.core.field_errors import describe_field_errors
from cvpn_shared.provisioning.models.request import ProvisionRequest

__all__ = [
    "REQUESTER_CLAIMS",
    "CidrPoolExhausted",
    "ExecutionReader",
    "FormAccepted",
    "FormInvalid",
    "FormServices",
    "FormSubmission",
    "NetworkLookup",
    "PendingLimit",
    "RequesterUnknown",
    "StartedExecution",
    "SubmissionStore",
    "TooManyPending",
    "build_request",
    "parse_submission",
    "request_status",
    "requester_from_claims",
    "submit_form",
]

logger = logging.getLogger(__name__)

# Claims that name the person, in order of preference (an ID or access token of Cognito or any OIDC issuer).
REQUESTER_CLAIMS = ("email", "preferred_username", "username", "cognito:username")
SOURCE = "request-form"
_FAILED = {"FAILED", "TIMED_OUT", "ABORTED"}


class FormInvalid(Exception):
    """The submission cannot become a request: ``errors`` lists each field and why (answered 422)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__(describe_field_errors(errors))


class RequesterUnknown(Exception):
    """The token names nobody (no email or username claim): answered 403."""


class TooManyPending(Exception):
    """The person already has as many requests in flight as allowed: answered 429. ``pending`` names
    those requests and ``limit`` the limit; both empty when too many arrived at the same moment."""

    def __init__(self, message: str, *, pending: Sequence[str] = (), limit: int | None = None) -> None:
        super().__init__(message)
        self.pending = tuple(pending)
        self.limit = limit


class FormSubmission(BaseModel):
    """What a person fills in: a profile, the access groups wanted and why."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    profile: Annotated[str, StringConstraints(pattern=PROFILE_NAME.pattern)] = Field(
        description="the name of a network profile (GET /profiles)"
    )
    access_groups: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=255)]],
        Field(min_length=1, max_length=20),
    ]
    justification: Annotated[str, StringConstraints(min_length=10, max_length=500)]
    hours: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="how long the grant lasts (grants profiles; the profile's default when left out)",
    )


@dataclass(frozen=True)
class StartedExecution:
    """What starting a request gave (the fields of the intake's StartResult the form needs)."""

    request_id: str
    execution_arn: str
    status_url_path: str
    duplicate: bool


@dataclass(frozen=True)
class FormAccepted:
    """A submission that became a started request."""

    request_id: str
    status_url_path: str
    client_cidr_block: str
    profile: str

    def as_response(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": "awaiting-approval",
            "status_url": self.status_url_path,
            "client_cidr_block": self.client_cidr_block,
            "profile": self.profile,
        }


class NetworkLookup(Protocol):
    """What the allocation needs to know about the account."""

    def vpc_cidrs(self, vpc_id: str) -> list[str]:
        """The VPC's CIDR blocks (none when the VPC does not exist)."""
        ...

    def client_vpn_endpoints(self) -> list[dict[str, Any]]:
        """Every Client VPN endpoint in the region, as DescribeClientVpnEndpoints returns them."""
        ...


class SubmissionStore(Protocol):
    """Submissions of the form, and requests ticket webhooks started: who asked, which execution follows it.

    A form submission has a profile, access groups and a client CIDR block held in the pool; a webhook's
    (``source`` is the ticket system) has none of them: its client CIDR came from the ticket.
    """

    def put(self, submission: dict[str, Any]) -> None: ...

    def get(self, request_id: str) -> dict[str, Any] | None: ...


class ExecutionReader(Protocol):
    """Reads Step Functions executions (DescribeExecution, GetExecutionHistory)."""

    def describe(self, execution_arn: str) -> dict[str, Any]: ...

    def history(self, execution_arn: str) -> list[dict[str, Any]]: ...


class PersonRequestStore(Protocol):
    """Each person's requests in flight, changed only at the version read (``dal.form_store``)."""

    def read(self, person_key: str) -> tuple[list[dict[str, Any]], int]: ...

    def write(self, person_key: str, requests: list[dict[str, Any]], *, version: int) -> bool: ...


# A listed request whose submission is not recorded yet counts as in flight this long (it is starting).
_STARTING_SECONDS = 300


@dataclass(frozen=True)
class PendingLimit:
    """At most ``limit`` requests in flight per person (issuer + sub): waiting for a decision, or approved
    and still being set up. A request counts until its intake execution ends."""

    store: PersonRequestStore
    submissions: SubmissionStore
    executions: ExecutionReader
    limit: int

    def _in_flight(self, entry: dict[str, Any], now: datetime) -> bool:
        submission = self.submissions.get(str(entry.get("request_id", "")))
        if submission is None:
            return now.timestamp() - float(entry.get("at", 0)) < _STARTING_SECONDS
        status = self.executions.describe(str(submission["execution_arn"])).get("status", "RUNNING")
        return status == "RUNNING"

    def reserve(self, person: Person, request_id: str, now: datetime) -> None:
        """List ``request_id`` among the person's requests in flight, or raise TooManyPending."""
        key = f"{person.issuer} {person.subject}"
        for _ in range(5):  # another submission of the same person changed the list: read it again
            listed, version = self.store.read(key)
            in_flight = [entry for entry in listed if self._in_flight(entry, now)]
            if len(in_flight) >= self.limit:
                ids = ", ".join(str(entry.get("request_id")) for entry in in_flight)
                raise TooManyPending(
                    f"you already have {len(in_flight)} requests pending ({ids}); the limit is "
                    f"{self.limit} per person: wait for a decision before asking again",
                    pending=[str(entry.get("request_id")) for entry in in_flight],
                    limit=self.limit,
                )
            entry = {"request_id": request_id, "at": now.timestamp()}
            if self.store.write(key, [*in_flight, entry], version=version):
                return
        raise TooManyPending("too many requests at once from you: try again in a moment")


@dataclass(frozen=True)
class FormServices:
    """The data access the form's logic works through (tests hand in other implementations)."""

    profiles: ProfileCatalog
    allocations: AllocationStore
    submissions: SubmissionStore
    network: NetworkLookup
    start: Callable[[dict[str, Any]], StartedExecution]
    ended_requests: Callable[[set[str]], set[str]] | None = None  # requests whose blocks may be reclaimed
    pending: PendingLimit | None = None


def requester_from_claims(claims: dict[str, Any]) -> str:
    """The person the token was issued to: the first of REQUESTER_CLAIMS present in ``claims``."""
    for name in REQUESTER_CLAIMS:
        value = str(claims.get(name) or "").strip()
        if value:
            return value
    raise RequesterUnknown(
        f"the token names no person: it carries none of the claims {', '.join(REQUESTER_CLAIMS)}"
    )


def parse_submission(body: str | None) -> FormSubmission:
    """The submission from the request body (JSON); raises FormInvalid naming each field."""
    if not body:
        raise FormInvalid([{"field": "body", "message": "missing: send the form as a JSON object"}])
    try:
        raw = json.loads(body)
    except ValueError as error:
        raise FormInvalid([{"field": "body", "message": f"not valid JSON ({error})"}]) from None
    if not isinstance(raw, dict):
        raise FormInvalid([{"field": "body", "message": "must be a JSON object"}])
    try:
        return FormSubmission.model_validate(raw)
    except ValidationError as error:
        return _raise_with_hints(error)


def _raise_with_hints(error: ValidationError) -> FormSubmission:
    errors = named_field_errors(error)
    for item in errors:
        if item["field"] == "requester":
            item["message"] = "is not a form field: the requester is who signed in"
        elif item["field"] == "profile" and "pattern" in item["message"]:
            item["message"] = "must be the name of a network profile (lower-case letters, digits, hyphens)"
    raise FormInvalid(errors)


def build_request(
    submission: FormSubmission,
    profile: NetworkProfile,
    *,
    request_id: str,
    requester: str,
    client_cidr_block: ipaddress.IPv4Network,
) -> ProvisionRequest:
    """The full request from the profile and the person's choices; raises FormInvalid when it is not valid."""
    problems = []
    for index, group_id in enumerate(submission.access_groups):
        if profile.access_group(group_id) is None:
            offered = ", ".join(group.name for group in profile.access_groups)
            problems.append(
                {
                    "field": f"access_groups[{index}]",
                    "message": f"{group_id!r} is not an access group of profile {profile.name!r} "
                    f"(it offers: {offered})",
                }
            )
    duplicates = sorted({g for g in submission.access_groups if submission.access_groups.count(g) > 1})
    if duplicates:
        problems.append(
            {"field": "access_groups", "message": f"listed more than once: {', '.join(duplicates)}"}
        )
    if problems:
        raise FormInvalid(problems)
    groups = [profile.access_group(group_id) for group_id in submission.access_groups]
    raw = {
        "request_id": request_id,
        "requester": requester,
        "name": f"{profile.name}-{request_id}".lower(),
        "description": submission.justification[:255],
        "vpc_id": profile.vpc_id,
        "subnet_ids": list(profile.subnet_ids),
        "client_cidr_block": str(client_cidr_block),
        "server_certificate_arn": profile.server_certificate_arn,
        "authentication": [
            method.model_dump(mode="json", exclude_none=True) for method in profile.authentication
        ],
        "authorization_rules": [
            {
                "target_network_cidr": str(group.target_network_cidr),
                "access_group_id": group.id,
                "description": group.name,
            }
            for group in groups
            if group is not None
        ],
        "routes": [route.model_dump(mode="json") for route in profile.routes],
        "security_group_ids": list(profile.security_group_ids),
        "dns_servers": [str(server) for server in profile.dns_servers],
        "transport_protocol": profile.transport_protocol,
        "vpn_port": profile.vpn_port,
        "split_tunnel": profile.split_tunnel,
        "session_timeout_hours": profile.session_timeout_hours,
        "login_banner": profile.login_banner,
        "connection_log": profile.connection_log.model_dump(mode="json", exclude_none=True),
        "tags": {**profile.tags, "cvpn-autopilot:profile": profile.name, "cvpn-autopilot:source": SOURCE},
        # An endpoint built for a profile always runs the product's client-connect handler: the
        # blocklist, and the grants once the endpoint enforces them, are checked at every login.
        "client_connect_handler": True,
    }
    try:
        return ProvisionRequest.model_validate(raw)
    except ValidationError as error:
        raise FormInvalid(named_field_errors(error)) from None


def _profile(services: FormServices, name: str) -> NetworkProfile:
    try:
        profile = services.profiles.get_profile(name)
    except ProfileInvalid as error:
        logger.error("network profile %s is invalid: %s", name, error)
        raise FormInvalid(
            [{"field": "profile", "message": f"profile {name!r} is misconfigured; ask an administrator"}]
        ) from None
    if profile is None:
        raise FormInvalid([{"field": "profile", "message": f"no network profile is called {name!r}"}])
    return profile


def _grant_request(
    submission: FormSubmission,
    profile: NetworkProfile,
    *,
    person: Person,
    claims: Mapping[str, Any],
    access: AccessRequestServices,
    request_id: str,
) -> AccessRequestAccepted:
    """A grants profile's submission: a pending grant on its shared endpoint, through approval."""
    try:
        vpn_user = vpn_user_from_claims(claims, profile.vpn_user_claim)
    except PersonUnknown as error:
        raise FormInvalid([{"field": "requester", "message": str(error)}]) from None
    try:
        grant_person = GrantPerson(issuer=person.issuer, sub=person.subject, vpn_user=vpn_user)
    except ValidationError as error:
        raise FormInvalid(
            [
                {
                    "field": "requester",
                    "message": f"the sign-in token cannot hold a grant: {error.errors()[0]['msg']}",
                }
            ]
        ) from None
    origin = RequestOrigin(
        source=SOURCE, request_id=request_id, requester_name=person.name, requester_email=person.email
    )
    try:
        ask = GrantAsk(
            person=grant_person,
            profile=profile.name,
            access_groups=submission.access_groups,
            hours=submission.hours,
            reason=submission.justification,
        )
        return start_access_request(ask, origin, services=access)
    except GrantInvalid as error:
        raise FormInvalid(
            [
                {**item, "field": "justification" if item["field"] == "reason" else item["field"]}
                for item in error.errors
            ]
        ) from None


def submit_form(
    body: str | None,
    *,
    requester: str,
    person: Person,
    services: FormServices,
    pool: CidrPool,
    new_request_id: Callable[[], str],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    claims: Mapping[str, Any] | None = None,
    access: Callable[[], AccessRequestServices] | None = None,
) -> FormAccepted | AccessRequestAccepted:
    """Turn a form submission into a started request waiting for approval.

    On a grants profile (``access: grants``) the request asks for a grant on the profile's shared
    endpoint (``access_requests.start_access_request``; ``claims`` give the VPN user name): nothing
    is provisioned and no client CIDR is held. On a legacy profile it builds an endpoint of its own.

    Raises FormInvalid (nothing held, nothing started), TooManyPending or CidrPoolExhausted. A block
    held for a request that then fails to start is released.
    """
    submission = parse_submission(body)
    profile = _profile(services, submission.profile)
    request_id = new_request_id()
    if profile.grants_access:
        if access is None:
            raise FormInvalid(
                [
                    {
                        "field": "profile",
                        "message": f"{profile.name} grants access, which this API does not offer",
                    }
                ]
            )
        return _grant_request(
            submission, profile, person=person, claims=claims or {}, access=access(), request_id=request_id
        )
    if submission.hours is not None:
        raise FormInvalid(
            [
                {
                    "field": "hours",
                    "message": f"profile {profile.name} builds an endpoint per request: it takes no hours",
                }
            ]
        )
    # Validate everything but the CIDR before holding a block, so a bad request holds nothing.
    build_request(
        submission,
        profile,
        request_id=request_id,
        requester=requester,
        client_cidr_block=next(pool.blocks()),
    )
    if services.pending is not None:
        services.pending.reserve(person, request_id, now())
    in_use = networks_in_use(
        vpc_cidrs=services.network.vpc_cidrs(profile.vpc_id),
        route_cidrs=[str(route.destination_cidr) for route in profile.routes],
        endpoints=services.network.client_vpn_endpoints(),
    )
    block = allocate_client_cidr(
        pool,
        services.allocations,
        in_use=in_use,
        request_id=request_id,
        details={"requester": requester, "profile": profile.name, "allocated_at": now().isoformat()},
        ended_requests=services.ended_requests,
    )
    try:
        request = build_request(
            submission, profile, request_id=request_id, requester=requester, client_cidr_block=block
        )
        started = services.start(request.model_dump(mode="json"))
        services.submissions.put(
            {
                "request_id": request_id,
                "requester": requester,
                **person.as_record("requester"),
                "source": SOURCE,
                "profile": profile.name,
                "access_groups": list(submission.access_groups),
                "justification": submission.justification,
                "client_cidr_block": str(block),
                "execution_arn": started.execution_arn,
                "status_url_path": started.status_url_path,
                "submitted_at": now().isoformat(),
            }
        )
    except BaseException:
        services.allocations.release(block, request_id=request_id)
        raise
    return FormAccepted(
        request_id=request_id,
        status_url_path=f"/requests/{request_id}",
        client_cidr_block=str(block),
        profile=profile.name,
    )


# ------------------------------------------------------------------------------------------- status


def _started_execution(event: dict[str, Any]) -> str | None:
    """The execution a ``states:startExecution`` task started, from its submitted/succeeded event."""
    for key in ("taskSubmittedEventDetails", "taskSucceededEventDetails"):
        details = event.get(key) or {}
        if details.get("resourceType") != "states" or not str(details.get("resource", "")).startswith(
            "startExecution"
        ):
            continue
        try:
            output = json.loads(details.get("output") or "{}")
        except ValueError:
            continue
        arn = output.get("ExecutionArn") if isinstance(output, dict) else None
        if arn:
            return str(arn)
    return None


def _follow(
    execution_arn: str,
    executions: ExecutionReader,
    steps: list[str],
    described: list[dict[str, Any]],
    approvals: list[dict[str, Any]],
) -> None:
    """Append the states ``execution_arn`` entered to ``steps``, with those of each execution it started
    spliced in where it started them; ``described`` collects every DescribeExecution answer, and
    ``approvals`` each approval decision (who approved, when)."""
    described.append(executions.describe(execution_arn))
    seen_children: set[str] = set()
    for event in executions.history(execution_arn):
        name = (event.get("stateEnteredEventDetails") or {}).get("name")
        if name:
            steps.append(str(name))
        decision = _decision([event])
        if decision is not None:
            approvals.append(decision)
        child = _started_execution(event)
        if child and child not in seen_children:
            seen_children.add(child)
            _follow(child, executions, steps, described, approvals)


def _find_result(value: Any) -> dict[str, Any] | None:
    """The provisioning result (the dict carrying ``client_configuration``) anywhere in an output."""
    if isinstance(value, str) and value[:1] == "{":
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, dict):
        if isinstance(value.get("client_configuration"), dict) and value["client_configuration"].get("key"):
            return value
        for item in value.values():
            found = _find_result(item)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _find_result(item)
            if found:
                return found
    return None


def _pool_block(submission: dict[str, Any]) -> ipaddress.IPv4Network | None:
    """The client CIDR block the form held in the pool for this submission (none for a ticket's request)."""
    if submission.get("source", SOURCE) != SOURCE or not submission.get("client_cidr_block"):
        return None
    return ipaddress.IPv4Network(submission["client_cidr_block"])


def owned_by(submission: dict[str, Any], person: Person) -> bool:
    """Whether ``person`` is who asked for this request.

    A request recorded with the requester's ``sub`` belongs to that issuer + ``sub`` only, whatever
    e-mail a token claims. One recorded without (a ticket names its requester by e-mail) belongs to an
    e-mail the issuer says it verified, never to one it does not vouch for.
    """
    if submission.get("requester_sub"):
        return person.same_as(submission.get("requester_issuer"), submission["requester_sub"])
    named = str(submission.get("requester") or "").strip().lower()
    return bool(named) and person.email_verified and named == person.email.lower()


def _decision(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Who approved, from the approval task's output in the intake's history."""
    for event in events:
        details = event.get("taskSucceededEventDetails") or {}
        try:
            output = json.loads(details.get("output") or "{}")
        except ValueError:
            continue
        payload = output.get("Payload", output) if isinstance(output, dict) else None
        if isinstance(payload, dict) and isinstance(payload.get("approved_by"), dict):
            return payload
    return None


def request_status(
    request_id: str,
    *,
    person: Person,
    submissions: SubmissionStore,
    executions: ExecutionReader,
    allocations: AllocationStore,
    presign: Callable[[str, str], str],
    grant_of: Callable[[str], Any] | None = None,
) -> dict[str, Any] | None:
    """Where the request is: status, the steps entered so far and, once available, the download link.

    A grant or extension request (its submission names a grant) is told from its grant, in plain
    words (``grant_of(grant_id)`` reads it).

    None when there is no such request for this requester (someone else's request is not revealed).
    ``presign(key, filename)`` makes a fresh link to the stored configuration. A form request that ended
    in failure gives its client CIDR back to the pool (a ticket's request holds none).
    """
    submission = submissions.get(request_id)
    if submission is None or not owned_by(submission, person):
        return None
    if submission.get("grant_id") and grant_of is not None:
        return grant_request_status(submission, grant_of(str(submission["grant_id"])))
    steps: list[str] = []
    described: list[dict[str, Any]] = []
    approvals: list[dict[str, Any]] = []
    _follow(str(submission["execution_arn"]), executions, steps, described, approvals)
    intake = described[0]
    status = str(intake.get("status", "RUNNING"))
    failed = next((item for item in described if item.get("status") in _FAILED), {})
    error, cause = failed.get("error"), failed.get("cause")
    output: Any = next((item.get("output") for item in described if item.get("output")), None)
    current = steps[-1] if steps else None
    steps = list(dict.fromkeys(steps))  # each step once, in the order first entered (loops repeat states)
    answer: dict[str, Any] = {
        "request_id": request_id,
        "source": submission.get("source", SOURCE),
        "ticket_key": submission.get("ticket_key"),
        "profile": submission.get("profile"),
        "access_groups": submission.get("access_groups", []),
        "client_cidr_block": submission.get("client_cidr_block"),
        "submitted_at": submission.get("submitted_at"),
        "execution_status": status,
        "steps": steps,
        "current_step": current,
    }
    if approvals:
        approved_by = approvals[0]["approved_by"]
        decided_at = approvals[0].get("decided_at")
        answer["approved_by"] = {
            "name": str(approved_by.get("name", "")),
            "at": datetime.fromtimestamp(int(decided_at), UTC).isoformat() if decided_at else None,
        }
    if status == "RUNNING":
        waiting = current is not None and "approv" in current.lower()
        answer["status"] = "awaiting-approval" if waiting else "in-progress"
    elif status in _FAILED:
        outcome = f"{error} {current or ''}".lower()
        answer["status"] = (
            "rejected" if "reject" in outcome else "expired" if "expired" in outcome else "failed"
        )
        answer["error"] = {"error": error, "cause": str(cause or "")[:1000]}
        block = _pool_block(submission)
        if block is not None:
            allocations.release(block, request_id=request_id)
    else:
        result = _find_result(output)
        if result is None:
            answer["status"] = "completed"
        else:
            answer["status"] = "available"
            answer["endpoint_id"] = result.get("endpoint_id")
            answer["dns_name"] = result.get("dns_name")
            answer["config_url"] = presign(str(result["client_configuration"]["key"]), f"{request_id}.ovpn")
    return answer
