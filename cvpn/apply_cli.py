"""`cvpn apply` and `cvpn history`: change a managed endpoint to a document, and what was applied when.

`cvpn apply REQUEST.json` plans first (Describe calls only): a change that cannot be made in place is
refused here with the reason, before anything starts. Otherwise it starts the update state machine,
named after the request, the revision and the document, so running the same apply again follows the
same execution instead of starting a second one. `--replace` provisions a new endpoint beside the old
one and decommissions the old one only once the new one is available.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from cvpn.common import DEFAULT_STACK_NAME, CliError, add_aws_options, aws_client

__all__ = [
    "REVISIONS_OUTPUT",
    "UPDATE_OUTPUT",
    "apply_execution_name",
    "history_rows",
    "register",
    "replacement_request_id",
]

UPDATE_OUTPUT = "UpdateEndpointStateMachineArn"
REVISIONS_OUTPUT = "EndpointRevisionsTableName"
_IN_PROGRESS = "IN_PROGRESS"


def apply_execution_name(request_id: str, revision: int, document: dict[str, Any]) -> str:
    """The update execution's name: the request, the revision and the document's digest.

    The same apply run twice gets the same name (Step Functions then returns the first execution),
    a different document for the same revision another name (the workflow refuses the second when the
    revision is taken). Names allow ``[A-Za-z0-9_-]``, 80 characters at most.
    """
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:10]
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", request_id)[:56]
    return f"apply-{cleaned}-r{revision}-{digest}"


def replacement_request_id(request_id: str, revision: int) -> str:
    """The request id of the endpoint that replaces ``request_id``'s at ``revision``."""
    return f"{request_id[:118]}.r{revision}"


# ---------------------------------------------------------------------------------------- stack
class _Stack:
    def __init__(self, args: argparse.Namespace) -> None:
        from cvpn.provision import StackNotFound, stack_outputs

        try:
            self.outputs = stack_outputs(aws_client(args, "cloudformation"), args.stack_name)
        except StackNotFound as error:
            raise CliError(f"--stack-name {args.stack_name}: {error}") from error
        for output in (UPDATE_OUTPUT, REVISIONS_OUTPUT, "RequestsTableName"):
            if output not in self.outputs:
                raise CliError(
                    f"--stack-name {args.stack_name}: the stack has no output {output}; deploy this "
                    "version of the product"
                )
        self.args = args
        self.dynamodb = aws_client(args, "dynamodb")

    def records(self) -> Any:
        from cvpn_shared.provisioning.dal.requests_table import RequestRecords

        return RequestRecords(self.dynamodb, self.outputs["RequestsTableName"])

    def revisions(self) -> Any:
        from cvpn_shared.provisioning.dal.revisions import RevisionRecords

        return RevisionRecords(self.dynamodb, self.outputs[REVISIONS_OUTPUT])

    def clientvpn(self) -> Any:
        from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi

        return ClientVpnApi(aws_client(self.args, "ec2"))


def _read_document(path_text: str) -> dict[str, Any]:
    path = Path(path_text)
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise CliError(f"REQUEST: cannot read {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise CliError(f"REQUEST: {path} is not JSON (line {error.lineno}: {error.msg})") from error
    except UnicodeDecodeError as error:
        raise CliError(f"REQUEST: {path} is not UTF-8 text ({error.reason})") from error
    if not isinstance(document, dict) or not isinstance(document.get("request_id"), str):
        raise CliError(f"REQUEST: {path} must be a JSON object with a request_id (text)")
    return document


def _parse(document: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from cvpn_shared.core.field_errors import describe_field_errors, field_errors
    from cvpn_shared.provisioning.models.request import ProvisionRequest

    try:
        return ProvisionRequest.model_validate(document)
    except ValidationError as error:
        raise CliError(f"REQUEST: {describe_field_errors(field_errors(error))}") from None


def _flags(args: argparse.Namespace) -> str:
    flags = []
    if args.local:
        flags.append(" --local")
    elif args.endpoint_url:
        flags.append(f" --endpoint-url {args.endpoint_url}")
    if args.stack_name and args.stack_name != DEFAULT_STACK_NAME:
        flags.append(f" --stack-name {args.stack_name}")
    return "".join(flags)


def _next_revision(stack: _Stack, request_id: str, item: dict[str, Any], document: dict[str, Any]) -> int:
    """One more than the newest revision, or the newest when it is this same document still running
    (the apply is being run again)."""
    current = int(item.get("revision") or 1)
    latest = stack.revisions().latest(request_id)
    if latest and latest.get("status") == _IN_PROGRESS and latest.get("document") == document:
        return int(latest["revision"])
    return max(current, int(latest["revision"]) if latest else 0) + 1


# ---------------------------------------------------------------------------------------- apply
def cmd_apply(args: argparse.Namespace) -> int:
    from cvpn_shared.provisioning.live_state import live_connection_count, read_live_endpoint
    from cvpn_shared.provisioning.planning import plan_update

    raw = _read_document(args.request)
    desired = _parse(raw)
    stack = _Stack(args)
    request_id = desired.request_id
    item = stack.records().get(request_id)
    if (
        not item
        or not item.get("endpoint_id")
        or item.get("status") in ("DECOMMISSIONED", "ROLLED_BACK", "FAILED")
    ):
        raise CliError(
            f"REQUEST: {request_id} has no live endpoint the product manages; provision it "
            f"(cvpn provision {args.request}) or adopt one (cvpn adopt ENDPOINT_ID --request-id {request_id})"
        )
    endpoint_id = str(item["endpoint_id"])
    document = desired.model_dump(mode="json")
    revision = _next_revision(stack, request_id, item, document)
    api = stack.clientvpn()
    live = read_live_endpoint(api, endpoint_id)
    plan = plan_update(
        desired,
        live,
        revision=revision,
        live_connections=live_connection_count(api, endpoint_id),
        findings=_findings(args, desired),
    )
    errors = [finding for finding in plan.findings if finding.severity == "error"]
    if errors:
        for finding in errors:
            print(f"error: {finding.field}: {finding.message}", file=sys.stderr)
        raise CliError(f"REQUEST: the plan for {request_id} has errors; fix the document")
    for finding in plan.findings:
        if finding.severity == "warning":
            print(f"warning: {finding.field}: {finding.message}", file=sys.stderr)
    if args.replace:
        if not plan.refusals:
            raise CliError(
                "--replace: every change of this document can be made in place; run `cvpn apply` "
                "without --replace to keep the endpoint, its DNS name and its users' configuration"
            )
        return _replace(args, stack, raw, desired, item, revision, plan)
    if plan.refusals:
        print(f"{request_id}: these changes cannot be made in place on {endpoint_id}:", file=sys.stderr)
        for refusal in plan.refusals:
            print(f"  {refusal.field}: {refusal.reason}\n    instead: {refusal.instead}", file=sys.stderr)
        raise CliError(
            f"REQUEST: refused in place; `cvpn apply {args.request} --replace{_flags(args)}` provisions a "
            "new endpoint beside this one (new DNS name and configuration) and then decommissions this one"
        )
    return _start_update(args, stack, request_id, document, revision, plan)


def _findings(args: argparse.Namespace, desired: Any) -> list[Any]:
    """The checks across the document's rules and routes, as the update's pre-flight runs them."""
    from cvpn_shared.provisioning.consistency import check_rules_and_routes
    from cvpn_shared.provisioning.dal.inventory import AwsInventory

    inventory = AwsInventory(lambda service: aws_client(args, service))
    return check_rules_and_routes(desired, inventory.network_facts(desired.vpc_id, list(desired.subnet_ids)))


def _start_update(
    args: argparse.Namespace,
    stack: _Stack,
    request_id: str,
    document: dict[str, Any],
    revision: int,
    plan: Any,
) -> int:
    from cvpn.provision import follow_execution

    sfn = aws_client(args, "stepfunctions")
    machine = stack.outputs[UPDATE_OUTPUT]
    name = apply_execution_name(request_id, revision, document)
    payload = {"request": document, "applied_by": _caller(args), "revision": revision}
    arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    try:
        sfn.describe_execution(executionArn=arn)
        print(f"following {arn}: this apply of revision {revision} was already started")
    except sfn.exceptions.ExecutionDoesNotExist:
        try:
            sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(payload, sort_keys=True))
            print(f"started {arn} (revision {revision}, {len(plan.changes)} changes planned)")
        except sfn.exceptions.ExecutionAlreadyExists:  # started meanwhile by another run of this apply
            print(f"following {arn}: this apply of revision {revision} was already started")
    if not args.wait:
        print(
            f"follow it with: cvpn status {arn}{_flags(args)}; "
            f"history: cvpn history {request_id}{_flags(args)}"
        )
        return 0
    progress = follow_execution(
        sfn, arn, on_step=lambda step: print(f"  -> {step}", flush=True), poll_seconds=args.poll
    )
    return _report(args, progress)


def _report(args: argparse.Namespace, progress: Any) -> int:
    output = progress.output if isinstance(progress.output, dict) else {}
    if progress.status != "SUCCEEDED":
        print(f"apply {progress.status}: {progress.error}: {_message(progress.cause)}", file=sys.stderr)
        return 1
    if output.get("status") == "NO_CHANGES":
        print(f"no changes: {output.get('endpoint_id')} already is what the document describes")
        return 0
    print(f"revision {output.get('revision')} applied to {output.get('endpoint_id')}:")
    for line in output.get("changes", []):
        print(f"  {line}")
    result = output.get("result") or {}
    if result.get("client_configuration"):
        _print_link(args, result)
    export_error = result.get("export_error")
    if isinstance(export_error, dict):
        # The revision stands (undoing a settled change for a failed read would make users reconnect
        # twice), but nobody has the configuration they now need: say so where the operator looks.
        print(
            "the new client configuration could not be exported "
            f"({export_error.get('Error', 'error')}: {_message(export_error.get('Cause'))}); every user "
            "needs it: aws ec2 export-client-vpn-client-configuration --client-vpn-endpoint-id "
            f"{output.get('endpoint_id')}",
            file=sys.stderr,
        )
    return 0


def _message(cause: str | None) -> str:
    try:
        payload = json.loads(cause or "")
    except ValueError:
        return cause or ""
    return str(payload.get("errorMessage", cause)) if isinstance(payload, dict) else str(cause)


def _print_link(args: argparse.Namespace, output: Any) -> None:
    from botocore.config import Config

    from cvpn.provision import CONFIGURATION_LINK_SECONDS, configuration_link

    link = configuration_link(aws_client(args, "s3", config=Config(signature_version="s3v4")), output)
    if link is not None:
        print(
            f"every user needs the new client configuration ({link[1]}), link valid "
            f"{CONFIGURATION_LINK_SECONDS // 60} minutes:\n{link[0]}"
        )


def _caller(args: argparse.Namespace) -> str:
    """Who applies: the caller's identity as STS names it."""
    try:
        return str(aws_client(args, "sts").get_caller_identity()["Arn"])
    except Exception:  # an identity the endpoint cannot tell still applies; the history says so
        return "unknown"


# ---------------------------------------------------------------------------------------- replace
def _replace(
    args: argparse.Namespace,
    stack: _Stack,
    raw: dict[str, Any],
    desired: Any,
    item: dict[str, Any],
    revision: int,
    plan: Any,
) -> int:
    """Provision the document as a new request beside the old endpoint; once it is available,
    decommission the old one. The old endpoint stays whatever happens to the new one."""
    from cvpn.provision import (
        DECOMMISSION_OUTPUT,
        PROVISION_OUTPUT,
        execution_name,
        follow_execution,
        start_provisioning,
    )

    old_id, old_endpoint = desired.request_id, str(item["endpoint_id"])
    new_id = replacement_request_id(old_id, revision)
    document = {**raw, "request_id": new_id}
    document.pop("endpoint_id", None)
    print(
        f"{old_id}: replacing {old_endpoint} "
        f"({'; '.join(r.field for r in plan.refusals)} cannot change in place)"
    )
    print(f"  1. provisioning {new_id} beside it")
    sfn = aws_client(args, "stepfunctions")
    step = lambda name: print(f"     -> {name}", flush=True)  # noqa: E731
    provision = start_provisioning(
        sfn, stack.outputs[PROVISION_OUTPUT], document, name=execution_name(new_id, "cli-replace")
    )
    created = follow_execution(sfn, provision, on_step=step, poll_seconds=args.poll)
    if created.status != "SUCCEEDED":
        print(
            f"the new endpoint failed ({created.error}: {_message(created.cause)}); {old_endpoint} is kept",
            file=sys.stderr,
        )
        return 1
    result = (created.output or {}).get("result") or {}
    if result.get("status") != "available":
        print(
            f"the new endpoint is {result.get('status')}, not available; {old_endpoint} is kept",
            file=sys.stderr,
        )
        return 1
    print(
        f"  2. {result['endpoint_id']} is available ({result.get('dns_name')}); "
        f"decommissioning {old_endpoint}"
    )
    decommission = sfn.start_execution(
        stateMachineArn=stack.outputs[DECOMMISSION_OUTPUT],
        name=execution_name(old_id, f"replaced-r{revision}"),
        input=json.dumps({"request_id": old_id}),
    )["executionArn"]
    gone = follow_execution(sfn, decommission, on_step=step, poll_seconds=args.poll)
    if gone.status != "SUCCEEDED":
        print(
            f"decommissioning {old_endpoint} failed ({gone.error}: {_message(gone.cause)}); retry it with "
            f"`cvpn decommission --request-id {old_id} --wait{_flags(args)}`",
            file=sys.stderr,
        )
    print(f"replaced: {old_id} ({old_endpoint}) -> {new_id} ({result['endpoint_id']})")
    print(f"from now on apply documents with request_id {new_id}")
    _print_link(args, result)
    return 0 if gone.status == "SUCCEEDED" else 1


# ---------------------------------------------------------------------------------------- history
def history_rows(item: dict[str, Any] | None, revisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per revision, newest first; revision 1 (the provisioning) from the request's record
    when the history has no row of its own for it."""
    rows = [
        {
            "revision": int(entry["revision"]),
            "applied_at": entry.get("applied_at", ""),
            "applied_by": entry.get("applied_by", ""),
            "outcome": entry.get("status", ""),
            "error": ((entry.get("outcome") or {}).get("error") or {}).get("message", ""),
            "changes": [change.get("summary", "") for change in (entry.get("plan") or {}).get("changes", [])],
            "refusals": [r.get("field", "") for r in (entry.get("plan") or {}).get("refusals", [])],
            "execution_id": entry.get("execution_id", ""),
        }
        for entry in revisions
    ]
    if item is not None and not any(row["revision"] == 1 for row in rows):
        rows.append(
            {
                "revision": 1,
                "applied_at": item.get("started_at", ""),
                "applied_by": item.get("requester", ""),
                "outcome": "PROVISIONED",
                "error": "",
                "changes": ["provisioned " + str(item.get("endpoint_id", ""))],
                "refusals": [],
                "execution_id": item.get("execution_id", ""),
            }
        )
    return sorted(rows, key=lambda row: row["revision"], reverse=True)


def _request_of(stack: _Stack, target: str) -> str:
    if not target.startswith("cvpn-endpoint-"):
        return target
    from cvpn_shared.provisioning.live_state import read_live_endpoint

    try:
        request_id = read_live_endpoint(stack.clientvpn(), target).managed_request_id
    except Exception as error:  # the endpoint may be gone: look it up in the requests table instead
        request_id = None
        reason = str(error)
    else:
        reason = "it is not tagged as managed by the product"
    if request_id:
        return request_id
    answer = stack.dynamodb.scan(
        TableName=stack.outputs["RequestsTableName"],
        FilterExpression="endpoint_id = :e",
        ExpressionAttributeValues={":e": {"S": target}},
        ProjectionExpression="request_id",
    )
    found = [entry["request_id"]["S"] for entry in answer.get("Items", [])]
    if not found:
        raise CliError(f"ENDPOINT_OR_REQUEST: no request manages {target} ({reason})")
    return found[0]


def cmd_history(args: argparse.Namespace) -> int:
    stack = _Stack(args)
    request_id = _request_of(stack, args.target)
    item = stack.records().get(request_id)
    rows = history_rows(item, stack.revisions().history(request_id))
    if not rows:
        raise CliError(f"ENDPOINT_OR_REQUEST: no request {request_id} is recorded")
    if args.json:
        print(json.dumps({"request_id": request_id, "revisions": rows}, indent=2))
        return 0
    current = int((item or {}).get("revision") or 1)
    print(
        f"{request_id}: desired state at revision {current}, endpoint {(item or {}).get('endpoint_id', '-')}"
    )
    print(f"{'REV':>4}  {'APPLIED AT':<20}  {'BY':<28}  {'OUTCOME':<11}  CHANGES")
    for row in rows:
        summary = "; ".join(row["changes"]) or (
            "refused: " + ", ".join(row["refusals"]) if row["refusals"] else "-"
        )
        if row["error"]:
            summary += f" [error: {row['error']}]"
        print(
            f"{row['revision']:>4}  {str(row['applied_at'])[:19]:<20}  {str(row['applied_by'])[-28:]:<28}  "
            f"{row['outcome']:<11}  {summary[:200]}"
        )
    return 0


# ---------------------------------------------------------------------------------------- parser
def register(subparsers: Any) -> None:
    """Add `cvpn apply` and `cvpn history` to the command line's subparsers."""
    apply = subparsers.add_parser(
        "apply", help="change a managed endpoint in place to a request document (plan first)"
    )
    apply.add_argument(
        "request", metavar="REQUEST.json", help="the desired document (its request_id names the endpoint)"
    )
    apply.add_argument(
        "--wait", action="store_true", help="wait for the outcome and print it with the changes"
    )
    apply.add_argument(
        "--replace",
        action="store_true",
        help="for changes that cannot be made in place: provision a new endpoint beside the old one, "
        "then decommission the old one once the new one is available (new DNS name and configuration)",
    )
    apply.add_argument("--poll", type=float, default=2.0, help="seconds between progress polls with --wait")
    add_aws_options(apply)
    apply.set_defaults(func=cmd_apply)

    history = subparsers.add_parser("history", help="the revisions of an endpoint's desired state")
    history.add_argument("target", metavar="ENDPOINT_OR_REQUEST", help="a request id or cvpn-endpoint-... id")
    history.add_argument("--json", action="store_true", help="machine-readable output")
    add_aws_options(history)
    history.set_defaults(func=cmd_history)
