"""`cvpn plan`, `cvpn drift` and `cvpn adopt`: what would change, what changed, and taking an endpoint in.

All three read the live endpoint with Describe calls only; `adopt --yes` is the one that writes (two
tags on the endpoint and one item in the requests table).
"""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path
from typing import Any

from cvpn.common import CliError, add_aws_options, aws_client

__all__ = ["register"]

PLAN_EXIT_CODES = """exit status:
  0  the plan was shown (with --detailed-exitcode: no changes)
  1  an AWS call failed
  2  a bad argument or document, or an endpoint the product does not manage
  3  with --detailed-exitcode: changes that apply in place
  4  with --detailed-exitcode: changes refused in place (see "instead") or an error finding
"""

DRIFT_EXIT_CODES = """exit status:
  0  every endpoint checked matches its desired state
  1  an AWS call failed
  2  a bad argument, or no managed endpoint matches
  3  drift: at least one endpoint differs from its desired state (or is gone)
"""

# How a plan's phases are headed, in execution order.
PHASE_HEADINGS = {
    "modify-endpoint": "Endpoint options",
    "update-tags": "Endpoint tags",
    "replace-certificate": "Certificate",
    "apply-security-groups": "Security groups",
    "associate-subnet": "Associations added",
    "authorize-rule": "Rules authorized",
    "create-route": "Routes created",
    "revoke-rule": "Rules revoked",
    "delete-route": "Routes deleted",
    "disassociate-subnet": "Associations removed",
}


# ---------------------------------------------------------------------------------------- shared
class _Stack:
    """The deployed stack's outputs and the data access the commands use."""

    def __init__(self, args: argparse.Namespace) -> None:
        from cvpn.provision import StackNotFound, stack_outputs
        from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi
        from cvpn_shared.provisioning.dal.requests_table import RequestRecords
        from cvpn_shared.provisioning.dal.revisions import RevisionRecords

        try:
            self.outputs = stack_outputs(aws_client(args, "cloudformation"), args.stack_name)
        except StackNotFound as error:
            raise CliError(f"--stack-name {args.stack_name}: {error}") from error
        table = self.outputs.get("RequestsTableName")
        if not table:
            raise CliError(f"--stack-name {args.stack_name}: the stack has no RequestsTableName output")
        self.records = RequestRecords(aws_client(args, "dynamodb"), table)
        revisions_table = self.outputs.get("EndpointRevisionsTableName")
        self.revisions = (
            RevisionRecords(aws_client(args, "dynamodb"), revisions_table) if revisions_table else None
        )
        self.api = ClientVpnApi(aws_client(args, "ec2"))
        self.client_connect_arn = self.outputs.get("ClientConnectFunctionArn", "")


def _read_document(path: str) -> Any:
    from pydantic import ValidationError

    from cvpn_shared.provisioning.models.request import ProvisionRequest

    try:
        payload = json.loads(Path(path).read_text())
    except OSError as error:
        raise CliError(f"REQUEST.json: cannot read {path}: {error.strerror}") from error
    except ValueError as error:
        raise CliError(f"REQUEST.json: {path} is not JSON: {error}") from error
    try:
        return ProvisionRequest.model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'document'}: {item['msg']}"
            for item in error.errors()
        )
        raise CliError(f"REQUEST.json: {problems}") from error


def _read_live(stack: _Stack, endpoint_id: str) -> Any:
    from cvpn_shared.provisioning.errors import EndpointNotYetVisible
    from cvpn_shared.provisioning.live_state import read_live_endpoint

    try:
        return read_live_endpoint(stack.api, endpoint_id)
    except EndpointNotYetVisible as error:
        raise CliError(f"{endpoint_id}: no such Client VPN endpoint in this account and region") from error


def _managed_endpoint_of(
    stack: _Stack, request_id: str, endpoint_id: str | None = None
) -> tuple[str, int, int]:
    """The endpoint the product manages for ``request_id`` (or the document's ``endpoint_id``), the
    revision of its desired state, and the revision an apply would make (one more than any recorded)."""
    from cvpn_shared.provisioning.tags import MANAGED_BY_TAG, REQUEST_ID_TAG

    item = stack.records.get(request_id)
    revision = item.get("revision", 1) if item else 1
    revision = int(revision) if isinstance(revision, int | float) else 1
    latest = stack.revisions.latest(request_id) if stack.revisions else None
    # a failed apply's number is taken too: the next apply makes the one after the newest recorded
    following = (
        max(revision, int(latest["revision"]) if latest and isinstance(latest.get("revision"), int) else 0)
        + 1
    )
    if endpoint_id:
        return endpoint_id, revision, following
    if item and item.get("status") == "SUCCEEDED" and item.get("endpoint_id"):
        return str(item["endpoint_id"]), revision, following
    for endpoint in stack.api.list_endpoints():
        tags = {tag["Key"]: tag["Value"] for tag in endpoint.get("Tags", [])}
        if (
            tags.get(REQUEST_ID_TAG) == request_id
            and tags.get(MANAGED_BY_TAG) == "client-vpn-autopilot"
            and endpoint.get("Status", {}).get("Code") not in ("deleting", "deleted")
        ):
            return str(endpoint["ClientVpnEndpointId"]), 1, following
    raise CliError(
        f"request_id {request_id}: no endpoint the product manages belongs to this request; "
        "`cvpn provision` creates one, or `cvpn adopt ENDPOINT_ID --request-id "
        f"{request_id}` takes in an endpoint made elsewhere"
    )


# ---------------------------------------------------------------------------------------- plan
def cmd_plan(args: argparse.Namespace) -> int:
    from cvpn_shared.provisioning.live_state import live_connection_count
    from cvpn_shared.provisioning.planning import plan_update

    desired = _read_document(args.request)
    stack = _Stack(args)
    endpoint_id, revision, following = _managed_endpoint_of(stack, desired.request_id, desired.endpoint_id)
    live = _read_live(stack, endpoint_id)
    if live.managed_request_id != desired.request_id:
        owner = (
            f"request {live.managed_request_id}" if live.managed_request_id else "nothing: it is not managed"
        )
        raise CliError(
            f"request_id {desired.request_id}: {endpoint_id} is managed by {owner}; adopt it first with "
            f"`cvpn adopt {endpoint_id} --request-id {desired.request_id}`"
        )
    plan = plan_update(
        desired,
        live,
        revision=following,
        live_connections=live_connection_count(stack.api, endpoint_id),
        findings=_findings(args, desired),
        client_connect_function_arn=stack.client_connect_arn,
    )
    if args.json:
        print(plan.model_dump_json(indent=2))
    else:
        print_plan(plan, previous_revision=revision)
    if not args.detailed_exitcode or plan.no_changes:
        return 0
    return 3 if plan.can_apply_in_place else 4


def _findings(args: argparse.Namespace, desired: Any) -> list[Any]:
    """The checks across the document's rules and routes, with what Describe calls tell of its VPC."""
    from cvpn_shared.provisioning.consistency import check_rules_and_routes
    from cvpn_shared.provisioning.dal.inventory import AwsInventory

    inventory = AwsInventory(lambda service: aws_client(args, service))
    return check_rules_and_routes(desired, inventory.network_facts(desired.vpc_id, list(desired.subnet_ids)))


def print_plan(plan: Any, *, previous_revision: int) -> None:
    """The plan as a person reads it: phases in execution order, each change with its disruption."""
    changes = plan.in_execution_order()
    print(
        f"Plan for {plan.request_id} on {plan.endpoint_id} "
        f"(revision {previous_revision} -> {plan.revision}); live connections now: {plan.live_connections}"
    )
    if plan.no_changes:
        print("No changes: the endpoint matches the document.")
    heading = None
    for number, change in enumerate(changes, start=1):
        if PHASE_HEADINGS[change.action] != heading:
            heading = PHASE_HEADINGS[change.action]
            print(f"\n{heading}:")
        mark = "!" if change.disruptive else " "
        print(f" {mark}{number:>3}. {change.summary}  [{change.field}]")
        if change.disruptive:
            print(f"        disrupts: {change.disruption}")
        elif change.disruption:
            print(f"        {change.disruption}")
        if change.new_configuration_needed:
            print("        every user must download a new client configuration afterwards")
    if plan.refusals:
        print("\nRefused (cannot be changed in place):")
        for refusal in plan.refusals:
            print(f"  - {refusal.field}: {refusal.reason}")
            print(f"    instead: {refusal.instead}")
    if plan.findings:
        print("\nFindings:")
        for finding in plan.findings:
            print(f"  - {finding.severity}: {finding.field}: {finding.message}")
    if changes:
        disruptive = sum(1 for change in changes if change.disruptive)
        print(
            f"\n{len(changes)} change(s), {disruptive} disruptive (marked !)"
            + ("; apply with `cvpn apply`" if plan.can_apply_in_place else "")
        )


# ---------------------------------------------------------------------------------------- drift
def cmd_drift(args: argparse.Namespace) -> int:
    from cvpn_shared.provisioning.drift import check_endpoint, managed_endpoints

    stack = _Stack(args)
    managed = managed_endpoints(stack.records)
    if args.endpoint:
        managed = [m for m in managed if args.endpoint in (m.endpoint_id, m.request_id)]
        if not managed:
            raise CliError(
                f"ENDPOINT {args.endpoint}: no managed endpoint or request of that id in the requests table "
                f"of {args.stack_name} (adopt an endpoint made elsewhere with `cvpn adopt`)"
            )
    reports = [
        check_endpoint(stack.api, m, client_connect_function_arn=stack.client_connect_arn) for m in managed
    ]
    if args.json:
        print(json.dumps([report.model_dump(mode="json") for report in reports], indent=2))
    else:
        if not reports:
            print("No managed endpoints.")
        for report in reports:
            label = {
                "in-sync": "in sync",
                "drifted": f"DRIFTED ({len(report.differences)} difference(s))",
                "endpoint-missing": "MISSING",
                "unreadable": "UNREADABLE DOCUMENT",
            }[report.status]
            print(f"{report.endpoint_id} ({report.request_id}, revision {report.revision}): {label}")
            for difference in report.differences:
                print(f"  - {difference}")
            if report.status == "unreadable":
                print(f"  {report.error}")
            if report.status == "drifted":
                print("  `cvpn apply` on the recorded document puts it back")
    return 3 if any(report.drifted for report in reports) else 0


# ---------------------------------------------------------------------------------------- adopt
def cmd_adopt(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter, ValidationError

    from cvpn_shared.provisioning.adopt import AlreadyManaged, adopt_endpoint, ensure_adoptable
    from cvpn_shared.provisioning.live_state import CannotAdopt, adoption_notes, desired_state_from_live
    from cvpn_shared.provisioning.models.request import RequestId

    try:
        TypeAdapter(RequestId).validate_python(args.request_id)
    except ValidationError as error:
        raise CliError(
            f"--request-id {args.request_id!r}: letters, digits and . _ : - only, starting with a letter or "
            "digit, at most 128 characters"
        ) from error
    try:
        requester = args.requester or getpass.getuser()
    except (OSError, KeyError):
        requester = "unknown"
    stack = _Stack(args)
    live = _read_live(stack, args.endpoint_id)
    try:
        ensure_adoptable(live, stack.records, args.request_id)
        document = desired_state_from_live(live, args.request_id, requester)
    except (AlreadyManaged, CannotAdopt) as error:
        raise CliError(str(error)) from error
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'document'}: {item['msg']}"
            for item in error.errors()
        )
        raise CliError(f"{args.endpoint_id} cannot be described by a request document: {problems}") from error
    text = json.dumps(document.model_dump(mode="json", exclude_none=True), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote the desired-state document of {live.endpoint_id} to {args.output}")
    else:
        print(text, end="")
    for note in adoption_notes(live):
        print(f"note: {note}")
    if not args.yes:
        print(
            f"nothing changed: re-run with --yes to tag {live.endpoint_id} as managed by request "
            f"{args.request_id} and record it (then plan, apply, drift, monitoring and decommission "
            "work on it)"
        )
        return 0
    try:
        adopt_endpoint(
            stack.api, stack.records, document, live, adopted_by=requester, revisions=stack.revisions
        )
    except AlreadyManaged as error:
        raise CliError(str(error)) from error
    print(f"adopted {live.endpoint_id} as request {args.request_id} (revision 1)")
    return 0


# ---------------------------------------------------------------------------------------- parser
def register(subparsers: Any) -> None:
    """Add `plan`, `drift` and `adopt` to the `cvpn` command line."""
    plan = subparsers.add_parser(
        "plan",
        help="show what applying a request document would change on its live endpoint",
        epilog=PLAN_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument("request", metavar="REQUEST.json", help="the endpoint's desired state")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 for no changes, 3 for changes, 4 when a change is refused in place",
    )
    add_aws_options(plan)
    plan.set_defaults(func=cmd_plan)

    drift = subparsers.add_parser(
        "drift",
        help="compare managed endpoints with their recorded desired state",
        epilog=DRIFT_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    drift.add_argument(
        "endpoint", nargs="?", metavar="ENDPOINT", help="an endpoint id or request id (default: all)"
    )
    drift.add_argument("--json", action="store_true", help="print the reports as JSON")
    add_aws_options(drift)
    drift.set_defaults(func=cmd_drift)

    adopt = subparsers.add_parser(
        "adopt",
        help="write the request document of an endpoint made elsewhere; with --yes, manage it from now on",
    )
    adopt.add_argument("endpoint_id", metavar="ENDPOINT_ID")
    adopt.add_argument("--request-id", required=True, help="the request id (ticket key) it is managed under")
    adopt.add_argument("--requester", help="who asks for it (default: your user name)")
    adopt.add_argument("--output", metavar="FILE", help="write the document here instead of printing it")
    adopt.add_argument(
        "--yes",
        action="store_true",
        help="tag the endpoint as managed (managed-by, request-id) and record it in the requests table",
    )
    add_aws_options(adopt)
    adopt.set_defaults(func=cmd_adopt)
