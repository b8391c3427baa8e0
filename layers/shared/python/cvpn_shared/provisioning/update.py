"""Updating a live endpoint in place: one change of a plan at a time, and the way back.

The update state machine calls these, one Lambda task each: ``validate_update`` (the document, the
pre-flight rules, the endpoint the request manages, the revision number), ``plan_changes`` (the
plan from the live endpoint), ``apply_change`` (one ``Change.forward``), ``check_settled`` (the
wait loop after a change), ``undo_changes`` (each applied ``Change.undo`` in reverse order) and the
``record_*`` steps that keep the revision history and the desired state.

Every call is idempotent, so a retried task is harmless: the calls that take a ``ClientToken`` get
one derived from the request, the revision, the change's position and the direction; an answer that
says the state already holds (a duplicate on add, not-found on remove) counts as done.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from cvpn_shared.core.notifications import Notifier
from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi
from cvpn_shared.provisioning.dal.requests_table import RequestRecords
from cvpn_shared.provisioning.dal.revisions import IN_PROGRESS, RevisionRecords
from cvpn_shared.provisioning.errors import (
    AssociationFailed,
    ClientVpnApiError,
    PreflightFailed,
    ProvisioningError,
    RuleOrRouteFailed,
)
from cvpn_shared.provisioning.live_state import live_connection_count, read_live_endpoint
from cvpn_shared.provisioning.models.plan import ApiCall, Change, Plan, PlanFinding
from cvpn_shared.provisioning.models.request import ProvisionRequest
from cvpn_shared.provisioning.models.workflow_state import PollState, ReadinessReport
from cvpn_shared.provisioning.outcome import fail_state_error, monitored_log_group
from cvpn_shared.provisioning.planning import plan_update
from cvpn_shared.provisioning.preflight import Inventory, run_preflight
from cvpn_shared.provisioning.steps import next_poll
from cvpn_shared.provisioning.tags import MANAGED_BY_TAG, REQUEST_ID_TAG
from cvpn_shared.provisioning.validation import parse_request

__all__ = [
    "FIRST_WAIT_SECONDS",
    "EndpointNotManaged",
    "LastAssociation",
    "RevisionConflict",
    "apply_change",
    "change_token",
    "check_settled",
    "complete_undo",
    "plan_live_endpoint",
    "plan_outputs",
    "record_no_changes",
    "record_refusal",
    "record_update_failure",
    "record_update_start",
    "record_update_success",
    "undo_changes",
    "validate_update",
]

# Request statuses whose endpoint is gone or going: an update has nothing to change.
_NOT_UPDATABLE = {"DECOMMISSIONED", "DECOMMISSION_FAILED", "ROLLED_BACK", "FAILED"}

# How long to wait before the first look after a change, per action (0: no wait). Sized to what AWS
# takes: an association about 4 minutes, a route 90 s to 3 min, a rule seconds.
FIRST_WAIT_SECONDS: dict[str, int] = {
    "associate-subnet": 240,
    "create-route": 30,
    "authorize-rule": 10,
}
SETTLE_POLL_SECONDS = 10
SETTLE_TIMEOUT_SECONDS = 1800

# Answers that mean the call's effect already holds: retried adds and removes of what is gone.
_ALREADY_DONE: dict[str, set[str]] = {
    "AssociateClientVpnTargetNetwork": {
        "InvalidClientVpnDuplicateAssociationException",
        "ClientVpnEndpointAssociationExists",
    },
    "AuthorizeClientVpnIngress": {"InvalidClientVpnDuplicateAuthorizationRule"},
    "CreateClientVpnRoute": {"InvalidClientVpnDuplicateRoute"},
    "RevokeClientVpnIngress": {"InvalidClientVpnEndpointAuthorizationRuleNotFound"},
    "DeleteClientVpnRoute": {"InvalidClientVpnRouteNotFound"},
    "DisassociateClientVpnTargetNetwork": {
        "InvalidClientVpnAssociationIdNotFound",
        "InvalidClientVpnAssociationId.NotFound",
    },
}
_TAKES_CLIENT_TOKEN = {
    "AssociateClientVpnTargetNetwork",
    "AuthorizeClientVpnIngress",
    "CreateClientVpnRoute",
}
_TAG_OPERATIONS = {"CreateTags", "DeleteTags"}  # name the endpoint in Resources, not ClientVpnEndpointId
_GONE_ASSOCIATION = ("disassociating", "disassociated")


class EndpointNotManaged(ProvisioningError):
    """The document names no endpoint the product manages: nothing to update."""


class RevisionConflict(ProvisioningError):
    """Another apply changed the desired state since this one was planned."""


class LastAssociation(ProvisioningError):
    """A change would remove the endpoint's last association (its users would lose every path)."""


class UpdateRefused(ProvisioningError):
    """The plan has changes that cannot be made in place, or errors."""


# ---------------------------------------------------------------------------------------- validate
def validate_update(
    raw: dict[str, Any],
    inventory: Inventory,
    records: RequestRecords,
    revisions: RevisionRecords,
    *,
    applied_by: str,
    revision: int | None = None,
    execution_id: str = "",
    client_connect_available: bool = False,
    users_notice: str = "",
    new_configuration_needed: bool | None = None,
) -> dict[str, Any]:
    """The document (model and pre-flight rules), the endpoint its request manages, and the revision
    this apply makes: one more than the newest recorded (``revision`` when given must be that one,
    or this execution's own when the task is retried)."""
    request = parse_request(raw)
    item = records.get(request.request_id)
    if not item or not item.get("endpoint_id"):
        raise EndpointNotManaged(
            f"request_id: {request.request_id} has no endpoint the product manages; provision it "
            "(cvpn provision) or adopt an existing one (cvpn adopt)"
        )
    status = str(item.get("status", ""))
    if status in _NOT_UPDATABLE:
        raise EndpointNotManaged(
            f"request_id: {request.request_id} is {status}: its endpoint {item['endpoint_id']} is not "
            "live; provision a new endpoint instead"
        )
    endpoint_id = str(item["endpoint_id"])
    if request.endpoint_id and request.endpoint_id != endpoint_id:
        raise EndpointNotManaged(
            f"endpoint_id: {request.endpoint_id} is not the endpoint of {request.request_id} "
            f"({endpoint_id}); a document changes the endpoint its request manages"
        )
    report = run_preflight(request, inventory, client_connect_available=client_connect_available)
    if not report.ok:
        raise PreflightFailed(report.problems)
    if report.existing_endpoint_id != endpoint_id:
        raise EndpointNotManaged(
            f"request_id: endpoint {endpoint_id} of {request.request_id} does not exist or is not tagged "
            f"{REQUEST_ID_TAG}={request.request_id}"
        )
    current = int(item.get("revision") or 1)
    latest = revisions.latest(request.request_id)
    if latest and latest.get("execution_id") == execution_id and execution_id:
        expected = int(latest["revision"])  # a retry of this execution's own validation
    else:
        expected = max(current, int(latest["revision"]) if latest else 0) + 1
    if revision is not None and revision != expected:
        raise RevisionConflict(
            f"revision: this apply was made for revision {revision} but the next is {expected}: "
            "another apply ran since; run `cvpn plan` and `cvpn apply` again"
        )
    validated: dict[str, Any] = {
        "request": request.model_dump(mode="json"),
        "endpoint_id": endpoint_id,
        "revision": expected,
        "previous_revision": current,
        "previous_document": item.get("request") or {},
        "applied_by": applied_by,
        "warnings": list(report.warnings),
    }
    if users_notice:
        validated["users_notice"] = users_notice
    if new_configuration_needed is not None:
        validated["new_configuration_needed"] = new_configuration_needed
    return validated


# ---------------------------------------------------------------------------------------- plan
def plan_outputs(plan: Plan) -> dict[str, Any]:
    """What the state machine needs of a plan: the changes in execution order and the choices."""
    ordered = plan.in_execution_order()
    return {
        "plan": plan.model_dump(mode="json"),
        "changes": [change.model_dump(mode="json") for change in ordered],
        "count": len(ordered),
        "no_changes": not ordered and not plan.refusals,
        "can_apply": plan.can_apply_in_place,
        "new_configuration_needed": any(change.new_configuration_needed for change in ordered),
        "summary": [change.summary for change in ordered],
    }


# ---------------------------------------------------------------------------------------- apply
def change_token(request_id: str, revision: int, index: int, direction: str) -> str:
    """The ClientToken of one call: the same change of the same revision retries the same call."""
    digest = hashlib.sha256(f"{request_id}|update|{revision}|{index}|{direction}".encode()).hexdigest()
    return f"update-{digest[:40]}"


def _perform(
    api: ClientVpnApi,
    endpoint_id: str,
    call: ApiCall,
    *,
    token: str,
    earlier_result: dict[str, Any] | None = None,
) -> dict[str, Any]:
    parameters = dict(call.parameters)
    operation = call.operation
    if operation == "DisassociateClientVpnTargetNetwork" and not parameters.get("AssociationId"):
        # Undoing an association made in this run: its id is in the forward call's answer, else
        # found by subnet (nothing to undo when the subnet has no live association).
        subnet_id = parameters.pop("SubnetId", None)
        association_id = (earlier_result or {}).get("AssociationId")
        if not association_id and subnet_id:
            association_id = next(
                (
                    n["AssociationId"]
                    for n in api.target_networks(endpoint_id)
                    if n["TargetNetworkId"] == subnet_id and n["Status"]["Code"] not in _GONE_ASSOCIATION
                ),
                None,
            )
        if not association_id:
            return {"skipped": f"no live association of {subnet_id or 'the subnet'}"}
        parameters["AssociationId"] = association_id
    if operation == "DisassociateClientVpnTargetNetwork":
        parameters.pop("SubnetId", None)
        _refuse_last_association(api, endpoint_id, parameters["AssociationId"])
    if operation in _TAG_OPERATIONS:
        parameters["Resources"] = [endpoint_id]
    else:
        parameters["ClientVpnEndpointId"] = endpoint_id
    if operation in _TAKES_CLIENT_TOKEN:
        parameters["ClientToken"] = token
    try:
        return api.perform(operation, parameters)
    except ClientVpnApiError as error:
        if error.code in _ALREADY_DONE.get(operation, set()):
            return {"already": error.code}
        raise


def _refuse_last_association(api: ClientVpnApi, endpoint_id: str, association_id: str) -> None:
    live = [
        n["AssociationId"]
        for n in api.target_networks(endpoint_id)
        if n["Status"]["Code"] not in _GONE_ASSOCIATION and n["Status"]["Code"] != "association-failed"
    ]
    if association_id in live and len(live) == 1:
        raise LastAssociation(
            f"DisassociateClientVpnTargetNetwork: {association_id} is the last association of "
            f"{endpoint_id}; keep at least one subnet in subnet_ids"
        )


def apply_change(
    api: ClientVpnApi,
    *,
    request_id: str,
    endpoint_id: str,
    revision: int,
    changes: list[Change],
    progress: dict[str, Any],
) -> dict[str, Any]:
    """Make the change at ``progress["index"]``; the progress after it (the next index, the change
    added to ``applied`` with the call's answer, and whether and how long to wait before going on)."""
    index = int(progress.get("index", 0))
    applied = list(progress.get("applied", []))
    change = changes[index]
    answer = _perform(
        api, endpoint_id, change.forward, token=change_token(request_id, revision, index, "forward")
    )
    applied.append({"index": index, "summary": change.summary, "answer": _small(answer)})
    first_wait = FIRST_WAIT_SECONDS.get(change.action, 0)
    return {
        "index": index + 1,
        "applied": applied,
        "wait": first_wait > 0,
        "poll": PollState(
            what="changes",
            next_wait_seconds=first_wait,
            poll_seconds=SETTLE_POLL_SECONDS,
            timeout_seconds=SETTLE_TIMEOUT_SECONDS,
        ).model_dump(),
    }


def _small(answer: dict[str, Any]) -> dict[str, Any]:
    """What the workflow keeps of an answer: the ids and statuses an undo needs."""
    kept: dict[str, Any] = {k: answer[k] for k in ("AssociationId", "already", "skipped") if k in answer}
    if isinstance(answer.get("Status"), dict):
        kept["Status"] = answer["Status"].get("Code", "")
    return kept


def undo_changes(
    api: ClientVpnApi,
    *,
    request_id: str,
    endpoint_id: str,
    revision: int,
    changes: list[Change],
    progress: dict[str, Any],
    in_flight: bool,
) -> dict[str, Any]:
    """Undo what this run changed, newest first: each applied change, and the one that failed while
    it was being made when ``in_flight`` (its call may have taken effect; undoing a change that did
    not happen finds nothing to undo). A change without an undo is reported, not guessed."""
    answers = {int(item["index"]): item.get("answer", {}) for item in progress.get("applied", [])}
    indexes = sorted(answers)
    failed_index = int(progress.get("index", 0))
    if in_flight and failed_index < len(changes) and failed_index not in answers:
        indexes.append(failed_index)
    undone: list[str] = []
    not_undone: list[str] = []
    then: list[dict[str, Any]] = []
    for index in sorted(indexes, reverse=True):
        change = changes[index]
        if change.undo is None:
            not_undone.append(change.summary)
            continue
        _perform(
            api,
            endpoint_id,
            change.undo,
            token=change_token(request_id, revision, index, "undo"),
            earlier_result=answers.get(index),
        )
        undone.append(change.summary)
        then.extend(
            {"index": index, "position": position, "call": call.model_dump(mode="json")}
            for position, call in enumerate(change.undo_then)
        )
    return {"undone": undone, "not_undone": not_undone, "then": then}


def complete_undo(
    api: ClientVpnApi,
    *,
    request_id: str,
    endpoint_id: str,
    revision: int,
    undo: dict[str, Any],
) -> dict[str, Any]:
    """Make the calls that complete the undo once it settled (``undo["then"]``: the routes AWS
    deleted with a removed association, which it accepts only once the subnet is associated again).
    The answer is ``undo`` with nothing left to do."""
    for item in undo.get("then", []):
        call = ApiCall.model_validate(item["call"])
        direction = f"undo-then-{int(item['position'])}"
        _perform(
            api, endpoint_id, call, token=change_token(request_id, revision, int(item["index"]), direction)
        )
    return {**undo, "then": []}


# ---------------------------------------------------------------------------------------- wait
def check_settled(api: ClientVpnApi, endpoint_id: str, poll: PollState, *, strict: bool) -> ReadinessReport:
    """Is nothing on the endpoint still changing (associations, rules, routes) and is it available?

    ``strict`` (after a change): an association that failed or a rule or route that failed raises.
    Otherwise (after an undo) only what is still changing is waited for.
    """
    networks = api.target_networks(endpoint_id)
    rules = api.authorization_rules(endpoint_id)
    routes = api.routes(endpoint_id)
    if strict:
        failed = [n for n in networks if n["Status"]["Code"] == "association-failed"]
        if failed:
            details = ", ".join(
                f"{n['TargetNetworkId']}: {n['Status'].get('Message', 'association-failed')}" for n in failed
            )
            raise AssociationFailed(f"association failed for {details}")
        broken = [f"rule {r['DestinationCidr']}" for r in rules if r["Status"]["Code"] == "failed"] + [
            f"route {r['DestinationCidr']} via {r['TargetSubnet']}"
            for r in routes
            if r["Status"]["Code"] == "failed"
        ]
        if broken:
            raise RuleOrRouteFailed("failed: " + ", ".join(broken))
    pending = (
        [
            f"association {n['TargetNetworkId']} {n['Status']['Code']}"
            for n in networks
            if n["Status"]["Code"] in ("associating", "disassociating")
        ]
        + [
            f"rule {r['DestinationCidr']} {r['Status']['Code']}"
            for r in rules
            if r["Status"]["Code"] in ("authorizing", "revoking")
        ]
        + [
            f"route {r['DestinationCidr']} via {r['TargetSubnet']} {r['Status']['Code']}"
            for r in routes
            if r["Status"]["Code"] in ("creating", "deleting")
        ]
    )
    endpoint_status = api.describe_endpoint(endpoint_id)["Status"]["Code"]
    has_association = any(n["Status"]["Code"] == "associated" for n in networks)
    if has_association and endpoint_status != "available":
        pending.append(f"endpoint {endpoint_status}")
    ready = not pending
    return ReadinessReport(ready=ready, pending=pending, poll=next_poll(poll, ready=ready))


# ---------------------------------------------------------------------------------------- record
def _now(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).isoformat()


def _start_revision(
    revisions: RevisionRecords,
    validated: dict[str, Any],
    plan: dict[str, Any],
    execution_id: str,
    moment: str,
    outcome: dict[str, Any],
) -> dict[str, Any]:
    """Write the revision the execution applies with its ``outcome`` (finished now unless it is in
    progress); the item written."""
    item = _revision_item(validated, plan, execution_id, moment)
    item["status"] = outcome["status"]
    item["outcome"] = outcome
    if outcome["status"] != IN_PROGRESS:
        item["finished_at"] = moment
    revisions.start(item)
    return item


def _desired_state(
    request: ProvisionRequest, document: dict[str, Any], revision: int, moment: str
) -> dict[str, Any]:
    """The request item's fields that make ``document`` (``request`` as stored) its desired state."""
    return {
        "request": document,
        "revision": revision,
        "updated_at": moment,
        "monitored_log_group": monitored_log_group(request),
    }


def _revision_item(
    validated: dict[str, Any], plan: dict[str, Any], execution_id: str, moment: str
) -> dict[str, Any]:
    request = validated["request"]
    return {
        "request_id": request["request_id"],
        "revision": int(validated["revision"]),
        "endpoint_id": validated["endpoint_id"],
        "document": request,
        "previous_document": validated.get("previous_document") or {},
        "previous_revision": int(validated.get("previous_revision") or 1),
        "applied_by": validated.get("applied_by") or "unknown",
        "applied_at": moment,
        "plan": plan,
        "execution_id": execution_id,
    }


def record_update_start(
    revisions: RevisionRecords,
    validated: dict[str, Any],
    plan: dict[str, Any],
    *,
    execution_id: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The revision, IN_PROGRESS, with the desired state it replaces: the way back if all fails."""
    moment = _now(now)
    item = _start_revision(revisions, validated, plan, execution_id, moment, {"status": IN_PROGRESS})
    return {"revision": item["revision"], "status": IN_PROGRESS, "recorded_at": moment}


def record_update_success(
    revisions: RevisionRecords,
    records: RequestRecords,
    notifier: Notifier,
    validated: dict[str, Any],
    plan_summary: list[str],
    *,
    configuration: dict[str, Any] | None,
    execution_id: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Close the revision SUCCEEDED, make its document the desired state, and notify."""
    moment = _now(now)
    request = ProvisionRequest.model_validate(validated["request"])
    revision = int(validated["revision"])
    revisions.finish(
        request.request_id,
        revision,
        {"status": "SUCCEEDED", "outcome": {"status": "SUCCEEDED", "error": None}, "finished_at": moment},
    )
    records.update_outcome(
        request.request_id,
        {
            "status": "SUCCEEDED",
            "endpoint_id": validated["endpoint_id"],
            "update_execution_id": execution_id,
            **_desired_state(request, request.model_dump(mode="json"), revision, moment),
        },
    )
    stored = (configuration or {}).get("client_configuration")
    message: dict[str, Any] = {
        "request_id": request.request_id,
        "status": "UPDATED",
        "endpoint_id": validated["endpoint_id"],
        "revision": revision,
        "applied_by": validated.get("applied_by"),
        "changes": plan_summary,
    }
    if validated.get("users_notice"):
        message["users"] = str(validated["users_notice"])
    keeps_configuration = validated.get("new_configuration_needed") is False
    if stored:
        message["client_configuration"] = stored
        message["download"] = (
            f"users keep their configuration; new users get this one: cvpn status {request.request_id} "
            "gives a fresh link"
            if keeps_configuration
            else f"every user needs the new configuration: cvpn status {request.request_id} gives a "
            "fresh link"
        )
    export_error = (configuration or {}).get("export_error")
    if export_error:
        # The endpoint is in the new state and settled when the export runs: undoing it because a
        # read failed would make users reconnect twice. The revision succeeds and says what to do.
        message["configuration_not_exported"] = _cause_message(str(export_error.get("Cause", "")))[:1000]
        message["download"] = (
            "every user needs the new configuration, which could not be exported: export it with "
            "`aws ec2 export-client-vpn-client-configuration --client-vpn-endpoint-id "
            f"{validated['endpoint_id']}`"
        )
    message_id = notifier.publish(
        f"Client VPN endpoint of {request.request_id} updated to revision {revision}",
        message,
        {"status": "UPDATED", "request_id": request.request_id},
    )
    return {
        "status": "SUCCEEDED",
        "revision": revision,
        "endpoint_id": validated["endpoint_id"],
        "changes": plan_summary,
        "client_configuration": stored,
        "configuration_not_exported": message.get("configuration_not_exported"),
        "notification_id": message_id,
        "recorded_at": moment,
    }


def record_update_failure(
    revisions: RevisionRecords,
    records: RequestRecords,
    notifier: Notifier,
    validated: dict[str, Any],
    *,
    error: str,
    cause: str,
    undo: dict[str, Any] | None,
    rolled_back: bool,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Close the revision FAILED with what failed and what was undone; the desired state stays the
    previous one. The answer carries the error the execution fails with.

    A failure of RecordSuccess itself comes here after the endpoint was restored: that step may have
    written the new document as the desired state before it failed, so a restored endpoint gets its
    previous desired state written back (the endpoint and the record agree: FAILED means nothing
    changed)."""
    moment = _now(now)
    request_id = validated["request"]["request_id"]
    revision = int(validated["revision"])
    previous = validated.get("previous_document") or {}
    if rolled_back and previous:
        previous_revision = int(validated.get("previous_revision") or 1)
        records.update_outcome(
            request_id,
            _desired_state(ProvisionRequest.model_validate(previous), previous, previous_revision, moment),
        )
    message = _cause_message(cause)
    outcome = {
        "status": "FAILED",
        "error": {"name": error, "message": message[:4000]},
        "rolled_back": rolled_back,
        "undone": (undo or {}).get("undone", []),
        "not_undone": (undo or {}).get("not_undone", []),
    }
    revisions.finish(request_id, revision, {"status": "FAILED", "outcome": outcome, "finished_at": moment})
    notifier.publish(
        f"Update of {request_id} to revision {revision} failed",
        {"request_id": request_id, "revision": revision, "status": "UPDATE_FAILED", **outcome},
        {"status": "UPDATE_FAILED", "request_id": request_id},
    )
    restored = "restored the previous state" if rolled_back else "could NOT restore the previous state"
    return fail_state_error(
        "UpdateFailed" if error.startswith("States.") else error,
        f"revision {revision} of {request_id} failed ({error}: {message}); {restored}"
        + (f"; not undone: {', '.join(outcome['not_undone'])}" if outcome["not_undone"] else ""),
    )


def record_refusal(
    revisions: RevisionRecords,
    validated: dict[str, Any],
    plan: dict[str, Any],
    *,
    execution_id: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Keep the refused apply in the history; the answer carries the error the execution fails with."""
    moment = _now(now)
    reasons = [
        f"{item['field']}: {item['reason']}; instead: {item['instead']}" for item in plan.get("refusals", [])
    ] + [
        f"{item['field']}: {item['message']}"
        for item in plan.get("findings", [])
        if item["severity"] == "error"
    ]
    _start_revision(
        revisions,
        validated,
        plan,
        execution_id,
        moment,
        {"status": "REFUSED", "error": {"name": "UpdateRefused", "message": "; ".join(reasons)}},
    )
    advice = " (changes that cannot be made in place: `cvpn apply --replace` provisions a new endpoint)"
    return fail_state_error(
        "UpdateRefused",
        "; ".join(reasons) + (advice if plan.get("refusals") else ""),
    )


def record_no_changes(
    revisions: RevisionRecords,
    records: RequestRecords,
    validated: dict[str, Any],
    plan: dict[str, Any],
    *,
    execution_id: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The live endpoint already is what the document asks. When the document is the recorded desired
    state, nothing is written: applying it again changes nothing, history included. When the document
    differs only in what needs no call (a description of a rule the API keeps elsewhere, a requester),
    it becomes the desired state as a revision with no changes, so drift compares with it."""
    request = validated["request"]
    if _same_document(request, validated.get("previous_document") or {}):
        return {"status": "NO_CHANGES", "revision": int(validated["previous_revision"]), "recorded": False}
    moment = _now(now)
    _start_revision(revisions, validated, plan, execution_id, moment, {"status": "SUCCEEDED", "error": None})
    records.update_outcome(
        request["request_id"],
        {"request": request, "revision": int(validated["revision"]), "updated_at": moment},
    )
    return {"status": "NO_CHANGES", "revision": int(validated["revision"]), "recorded": True}


def _same_document(one: dict[str, Any], other: dict[str, Any]) -> bool:
    return json.dumps(one, sort_keys=True) == json.dumps(other, sort_keys=True)


def _cause_message(cause: str) -> str:
    """A Lambda error's message out of the Catch's cause (JSON with errorMessage), else the cause."""
    try:
        payload = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(payload, dict) and payload.get("errorMessage"):
        return str(payload["errorMessage"])
    return cause


def plan_live_endpoint(
    api: ClientVpnApi,
    request: ProvisionRequest,
    endpoint_id: str,
    *,
    revision: int,
    client_connect_function_arn: str = "",
    warnings: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Read the live endpoint (Describe calls only) and plan the changes to ``request``; the
    pre-flight's warnings (checks across rules and routes) go with the plan (its errors already
    stopped the update)."""
    live = read_live_endpoint(api, endpoint_id)
    if live.managed_request_id != request.request_id:
        raise EndpointNotManaged(
            f"request_id: endpoint {endpoint_id} is not tagged {MANAGED_BY_TAG} and "
            f"{REQUEST_ID_TAG}={request.request_id}; adopt it first (cvpn adopt)"
        )
    plan = plan_update(
        request,
        live,
        revision=revision,
        live_connections=live_connection_count(api, endpoint_id),
        findings=[
            PlanFinding(severity="warning", field=item["field"], message=item["message"])
            for item in warnings or []
        ],
        client_connect_function_arn=client_connect_function_arn,
    )
    return plan_outputs(plan)
