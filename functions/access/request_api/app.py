"""The request form's API (behind the HTTP API's JWT authorizer).

GET /profiles             the network profiles a person can pick, with their access groups
POST /requests            a form submission: 202 with the request id, 422 naming each bad field
                          (on a grants profile: a pending grant on its shared endpoint, through approval)
GET /requests/{id}        the request's status, its steps (or a grant's phases) and the config link
POST /grants/{id}/extend  the owner of an active grant asks to extend it: 202, through approval
GET /me/grants            the signed-in person's grants (issuer + sub), newest first, with the cloud's now
GET /grants/{id}/configuration   a short-lived link to the client configuration of their active grant
"""

import json
import uuid
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.access_requests import RequestOrigin, start_extension_request
from cvpn_shared.access.form import (
    CidrPoolExhausted,
    FormInvalid,
    RequesterUnknown,
    TooManyPending,
    request_status,
    requester_from_claims,
    submit_form,
)
from cvpn_shared.access.grants.logic import GrantConflict, GrantNotFound
from cvpn_shared.access.grants.models import GrantInvalid
from cvpn_shared.access.grants.personal import ConfigurationMissing
from cvpn_shared.access.identity import Person, PersonUnknown, person_from_claims
from cvpn_shared.access.settings import get_settings
from cvpn_shared.access.wiring import (
    access_grants,
    access_request_services,
    client_cidr_allocations,
    client_cidr_pool,
    configuration_store,
    form_services,
    form_submissions,
    personal_grants,
    step_functions_executions,
)
from cvpn_shared.core.observability import logger, metrics

app = APIGatewayHttpResolver()


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body),
        headers={"Cache-Control": "no-store"},
    )


def _claims() -> dict[str, Any]:
    return dict(app.current_event.request_context.authorizer.jwt_claim or {})


def _requester() -> str:
    return requester_from_claims(_claims())


def _person() -> Person:
    """Who signed in: issuer + sub, the only identity a request is matched on."""
    return person_from_claims(_claims())


def _new_request_id() -> str:
    return f"REQ-{uuid.uuid4().hex[:12].upper()}"


@app.get("/profiles")
def list_profiles() -> Response:
    _person()
    profiles = form_services().profiles.list_profiles()
    return _json(200, {"profiles": [profile.public_view() for profile in profiles]})


@app.post("/requests")
def submit_request() -> Response:
    accepted = submit_form(
        app.current_event.decoded_body,
        requester=_requester(),
        person=_person(),
        services=form_services(),
        pool=client_cidr_pool(),
        new_request_id=_new_request_id,
        claims=_claims(),
        access=access_request_services,
    )
    metrics.add_metric(name="FormRequestSubmitted", unit="Count", value=1)
    logger.info("form request started", extra={"request_id": accepted.request_id})
    return _json(202, accepted.as_response())


@app.get("/requests/<request_id>")
def get_request_status(request_id: str) -> Response:
    ttl = get_settings().config_url_ttl_seconds
    status = request_status(
        request_id,
        person=_person(),
        submissions=form_submissions(),
        executions=step_functions_executions(),
        allocations=client_cidr_allocations(),
        presign=lambda key, filename: configuration_store().presigned_url(key, ttl, filename),
        grant_of=lambda grant_id: access_grants().store.get(grant_id),
    )
    if status is None:
        return _json(404, {"message": f"no request {request_id} of yours"})
    return _json(200, status)


@app.get("/me/grants")
def my_grants() -> Response:
    person = _person()
    return _json(200, personal_grants().mine(person.issuer, person.subject))


@app.get("/grants/<grant_id>/configuration")
def grant_configuration(grant_id: str) -> Response:
    person = _person()
    link = personal_grants().configuration(person.issuer, person.subject, grant_id)
    if link is None:
        return _json(404, {"message": f"no active grant {grant_id} of yours"})
    metrics.add_metric(name="GrantConfigurationLinked", unit="Count", value=1)
    return _json(200, link)


@app.post("/grants/<grant_id>/extend")
def extend_grant(grant_id: str) -> Response:
    person = _person()
    body = _extension_body(app.current_event.decoded_body)
    origin = RequestOrigin(
        source="request-form",
        request_id=_new_request_id(),
        requester_name=person.name,
        requester_email=person.email,
    )
    owner = access_grants().store.get(grant_id)
    if owner is None or not person.same_as(owner.person.issuer, owner.person.sub):
        return _json(404, {"message": f"no grant {grant_id} of yours"})
    accepted = start_extension_request(
        owner.person, grant_id, body["hours"], body["reason"], origin, services=access_request_services()
    )
    metrics.add_metric(name="GrantExtensionRequested", unit="Count", value=1)
    logger.info("extension requested", extra={"request_id": accepted.request_id, "grant_id": grant_id})
    return _json(202, {**accepted.as_response()})


def _extension_body(body: str | None) -> dict[str, Any]:
    """``{"hours": number > 0, "reason": text}``; FormInvalid naming each bad field."""
    try:
        raw = json.loads(body or "")
    except ValueError:
        raise FormInvalid([{"field": "body", "message": "must be a JSON object {hours, reason}"}]) from None
    if not isinstance(raw, dict):
        raise FormInvalid([{"field": "body", "message": "must be a JSON object {hours, reason}"}])
    errors = []
    hours = raw.get("hours")
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not hours > 0 or hours != hours:
        errors.append({"field": "hours", "message": f"must be a number of hours above 0, got {hours!r}"})
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        errors.append({"field": "reason", "message": "required: why the grant should last longer"})
    unknown = sorted(set(raw) - {"hours", "reason"})
    errors += [{"field": name, "message": "is not a field of an extension"} for name in unknown]
    if errors:
        raise FormInvalid(errors)
    return {"hours": float(hours), "reason": str(reason).strip()}  # type: ignore[arg-type]


@app.exception_handler(GrantInvalid)
def grant_invalid(error: GrantInvalid) -> Response:
    return _json(422, {"message": "the request has errors", "errors": error.errors})


@app.exception_handler(GrantNotFound)
def grant_not_found(error: GrantNotFound) -> Response:
    return _json(404, {"message": str(error)})


@app.exception_handler(ConfigurationMissing)
def configuration_missing(error: ConfigurationMissing) -> Response:
    logger.error("client configuration missing", extra={"reason": str(error)})
    return _json(409, {"message": str(error)})


@app.exception_handler(GrantConflict)
def grant_conflict(error: GrantConflict) -> Response:
    return _json(409, {"message": str(error)})


@app.exception_handler(FormInvalid)
def form_invalid(error: FormInvalid) -> Response:
    return _json(422, {"message": "the request form has errors", "errors": error.errors})


@app.exception_handler(RequesterUnknown)
def requester_unknown(error: RequesterUnknown) -> Response:
    return _json(403, {"message": str(error)})


@app.exception_handler(PersonUnknown)
def person_unknown(error: PersonUnknown) -> Response:
    return _json(403, {"message": str(error)})


@app.exception_handler(TooManyPending)
def too_many_pending(error: TooManyPending) -> Response:
    return _json(429, {"message": str(error)})


@app.exception_handler(CidrPoolExhausted)
def pool_exhausted(error: CidrPoolExhausted) -> Response:
    logger.error("client CIDR pool exhausted", extra={"reason": str(error)})
    return _json(503, {"message": "no client address block is free; an administrator must widen the pool"})


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
