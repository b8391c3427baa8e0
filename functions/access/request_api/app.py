"""The request form's API (behind the HTTP API's JWT authorizer).

GET /profiles             the network profiles a person can pick, with their access groups
POST /requests            a form submission: 202 with the request id, 422 naming each bad field
GET /requests/{id}        the request's status, its steps so far and, when done, the config link
GET /me/grants            the signed-in person's grants (issuer + sub), newest first, with the cloud's now
GET /grants/{id}/configuration   a short-lived link to the client configuration of their active grant
"""

import json
import uuid
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.form import (
    CidrPoolExhausted,
    FormInvalid,
    RequesterUnknown,
    TooManyPending,
    request_status,
    requester_from_claims,
    submit_form,
)
from cvpn_shared.access.grants.models import GrantInvalid
from cvpn_shared.access.grants.personal import ConfigurationMissing
from cvpn_shared.access.identity import Person, PersonUnknown, person_from_claims
from cvpn_shared.access.settings import get_settings
from cvpn_shared.access.wiring import (
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


@app.exception_handler(GrantInvalid)
def grant_invalid(error: GrantInvalid) -> Response:
    return _json(422, {"message": str(error), "errors": error.errors})


@app.exception_handler(ConfigurationMissing)
def configuration_missing(error: ConfigurationMissing) -> Response:
    logger.error("client configuration missing", extra={"reason": str(error)})
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
