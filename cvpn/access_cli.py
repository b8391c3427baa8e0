"""`cvpn access`: administrators' side of grants (time-bound access to a profile's shared endpoint).

cvpn access grant --profile P --user VPN_USER --issuer ISS --sub SUB [--groups G ...] [--hours N]
                  --reason TEXT                      break-glass grant, active at once, recorded as such
cvpn access extend GRANT_ID --hours N [--reason T]   move an active grant's end to N hours from now
cvpn access revoke GRANT_ID [--reason TEXT]          end one grant now; the user's sessions are cut
cvpn access revoke --user NAME --all [--reason T]    offboarding: every grant of that person, everywhere
cvpn access list [--endpoint E] [--user U] [--active] [--json | --csv]
                                                     who has access to what, until when, approved by whom
cvpn access list --legacy-endpoints                  endpoints the form or tickets built one per request
                                                     before grants, with the command to decommission each
cvpn access enforce --profile P [--off]              refuse users without an active grant at connect on
                                                     the profile's endpoint (begins by itself at its first
                                                     active grant); --off: admit them again

All work against a deployed stack (its CloudFormation outputs) on AWS, the local cloud (``--local``,
whose emulated clock then gives "now") or any AWS-compatible endpoint (``--endpoint-url``). The
administrator who runs a command is who it records (STS GetCallerIdentity).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from cvpn.common import CliError, add_aws_options, aws_client

if TYPE_CHECKING:
    from cvpn_shared.access.grants.logic import AccessGrants
    from cvpn_shared.access.grants.models import Actor, Grant

__all__ = ["LIST_FIELDS", "grant_rows", "register"]

# Stack output -> the AccessSettings field the grants read it into.
_OUTPUTS = {
    "AccessGrantsTableName": "access_grants_table_name",
    "GrantScheduleGroupName": "grant_schedule_group",
    "ExpireGrantFunctionArn": "expire_grant_function_arn",
    "GrantSchedulerRoleArn": "grant_scheduler_role_arn",
    "ProfilesParameterPath": "profiles_parameter_path",
    "RequestsTableName": "requests_table_name",
    "ClientConnectFunctionArn": "client_connect_function_arn",
}
LIST_FIELDS = (
    "grant_id",
    "state",
    "vpn_user",
    "issuer",
    "sub",
    "profile",
    "endpoint_id",
    "access_groups",
    "starts_at",
    "ends_at",
    "approved_by",
    "break_glass",
    "reason",
    "created_at",
)
# Execution names `cvpn provision` gives (cvpn.provision.execution_name): an administrator's endpoint.
_ADMINISTRATOR_EXECUTIONS = ("cli-",)


# ------------------------------------------------------------------------------------------ wiring
def _settings(args: argparse.Namespace) -> SimpleNamespace:
    from cvpn.provision import StackNotFound, stack_outputs

    try:
        outputs = stack_outputs(aws_client(args, "cloudformation"), args.stack_name)
    except StackNotFound as error:
        raise CliError(f"--stack-name {args.stack_name}: {error}") from error
    missing = sorted(set(_OUTPUTS) - set(outputs))
    if missing:
        raise CliError(
            f"--stack-name {args.stack_name}: no output {', '.join(missing)} "
            "(a stack deployed before grants? deploy this version first)"
        )
    # A grant from a ticket gets comments when the CLI revokes or extends it too; with the bucket of
    # personal profiles, ending a grant revokes its client certificates.
    return SimpleNamespace(
        **{field: outputs[key] for key, field in _OUTPUTS.items()},
        grant_comment_function_arn=outputs.get("GrantCommentFunctionArn", ""),
        config_bucket_name=outputs.get("ClientConfigBucketName", ""),
    )


def _clock(args: argparse.Namespace) -> Callable[[], datetime]:
    """Now: the local cloud's emulated clock with --local (what its scheduler fires on), else this
    machine's."""
    if not args.local or not args.endpoint_url:
        return lambda: datetime.now(UTC)
    url = f"{args.endpoint_url.rstrip('/')}/_localcloud/clock"

    def emulated() -> datetime:
        request = urllib.request.Request(
            url, data=b"{}", method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return datetime.fromisoformat(json.loads(response.read())["now"]).astimezone(UTC)
        except (urllib.error.URLError, ValueError, KeyError) as error:
            raise CliError(f"cannot read the local cloud's clock at {url}: {error}") from error

    return emulated


def _grants(args: argparse.Namespace) -> AccessGrants:
    from cvpn_shared.access.wiring import build_access_grants

    return build_access_grants(lambda service: aws_client(args, service), _settings(args), _clock(args))


def _caller(args: argparse.Namespace) -> Actor:
    """Who runs the command, as AWS knows them."""
    from cvpn_shared.access.grants.models import Actor

    arn = str(aws_client(args, "sts").get_caller_identity()["Arn"])
    return Actor(kind="aws", id=arn, name=arn.split(":", 5)[-1] or arn)


def _invalid(error: Exception) -> CliError:
    from cvpn_shared.access.grants.models import GrantInvalid

    if isinstance(error, GrantInvalid):
        return CliError("; ".join(f"--{_option(item['field'])}: {item['message']}" for item in error.errors))
    return CliError(str(error))


def _option(field: str) -> str:
    """The command-line option a grant field comes from."""
    head = field.split("[", 1)[0].split(".", 1)[0]
    return {
        "access_groups": "groups",
        "person": "user/--issuer/--sub",
        "hours": "hours",
        "reason": "reason",
        "profile": "profile",
    }.get(head, field)


# ------------------------------------------------------------------------------------------ grant
def cmd_grant(args: argparse.Namespace) -> int:
    from cvpn_shared.access.grants.logic import GrantConflict
    from cvpn_shared.access.grants.models import GrantAsk, GrantInvalid, Person

    if not str(args.issuer).startswith("https://"):
        raise CliError("--issuer: must be the https URL of the OpenID Connect issuer people sign in with")
    try:
        person = Person.model_validate({"issuer": args.issuer, "sub": args.sub, "vpn_user": args.user})
    except ValueError as error:
        from pydantic import ValidationError

        from cvpn_shared.core.field_errors import field_errors

        if isinstance(error, ValidationError):
            raise CliError(
                "; ".join(
                    f"--{'user' if item['field'] == 'vpn_user' else item['field']}: {item['message']}"
                    for item in field_errors(error)
                )
            ) from None
        raise
    grants = _grants(args)
    try:
        ask = GrantAsk(
            person=person,
            profile=args.profile,
            access_groups=args.groups or (),
            hours=args.hours,
            reason=args.reason,
        )
        grant = grants.grant_break_glass(ask, by=_caller(args))
    except (GrantInvalid, GrantConflict) as error:
        raise _invalid(error) from None
    if args.json:
        print(json.dumps(grant.model_dump(mode="json"), indent=2, sort_keys=True))
    else:
        print(
            f"{grant.grant_id}: break-glass grant for {grant.person.vpn_user} on {grant.endpoint_id} "
            f"(profile {grant.profile}, groups {', '.join(grant.access_groups)}) until {_when(grant.ends_at)}"
        )
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    from cvpn_shared.access.grants.logic import GrantConflict, GrantNotFound
    from cvpn_shared.access.grants.models import GrantInvalid

    try:
        grant = _grants(args).extend(args.grant_id, hours=args.hours, by=_caller(args), reason=args.reason)
    except (GrantInvalid, GrantConflict, GrantNotFound) as error:
        raise _invalid(error) from None
    print(f"{grant.grant_id}: {grant.person.vpn_user} on {grant.endpoint_id} until {_when(grant.ends_at)}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from cvpn_shared.access.grants.logic import GrantConflict, GrantNotFound

    if bool(args.grant_id) == bool(args.user):
        raise CliError("give a GRANT_ID, or --user NAME --all (offboarding), not both")
    if args.user and not args.all:
        raise CliError("--user revokes every grant of that person: add --all to confirm")
    if args.all and not args.user:
        raise CliError("--all needs --user NAME")
    grants = _grants(args)
    by = _caller(args)
    try:
        if args.grant_id:
            outcomes = [grants.revoke(args.grant_id, by=by, reason=args.reason)]
        else:
            outcomes = grants.offboard(args.user, by=by, reason=args.reason)
    except (GrantConflict, GrantNotFound) as error:
        raise _invalid(error) from None
    if args.user and not outcomes:
        print(f"{args.user}: no pending or active grant")
    for outcome in outcomes:
        grant = outcome.grant
        until = datetime.fromtimestamp(outcome.still_active_until, UTC)
        still = (
            f"; another active grant lets them in until {_when(until)}" if outcome.still_active_until else ""
        )
        print(
            f"{grant.grant_id}: revoked ({grant.person.vpn_user} on {grant.endpoint_id}); "
            f"{outcome.sessions_terminated} session(s) terminated{still}"
        )
    return 0


# ---------------------------------------------------------------------------------------- enforce
def cmd_enforce(args: argparse.Namespace) -> int:
    from cvpn_shared.access.grants.models import GrantInvalid

    grants = _grants(args)
    try:
        profile = grants.profile(args.profile)
        endpoint_id = grants.endpoint_of(profile)
    except GrantInvalid as error:
        raise _invalid(error) from None
    store = grants.store
    if args.off:
        relaxed = store.relax(endpoint_id)
        state = "no longer enforces" if relaxed else "was not enforcing"
        print(
            f"{endpoint_id} (profile {profile.name}) {state} grants at connect: it admits whoever "
            "authenticates and is not blocked; its next active grant enforces them again"
        )
        return 0
    if not profile.grants_access:
        raise CliError(f"--profile: {profile.name} is a legacy profile (access: legacy): it has no grants")
    handler = _ensure_client_connect_handler(args, endpoint_id)
    _, begun = grants.enforce(profile.name, by=_caller(args))
    policy = store.enforcement(endpoint_id) or {}
    since = f"since {policy.get('enforced_at', '?')} by {policy.get('enforced_by', '?')}"
    print(
        f"{endpoint_id} (profile {profile.name}) {'now enforces' if begun else 'already enforced'} "
        f"grants at connect ({since}); client-connect handler {handler}"
    )
    return 0


def _ensure_client_connect_handler(args: argparse.Namespace, endpoint_id: str) -> str:
    """Turn the stack's client-connect handler on for the endpoint if it is not: what it did."""
    arn = _settings(args).client_connect_function_arn
    ec2 = aws_client(args, "ec2")
    [endpoint] = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"]
    options = endpoint.get("ClientConnectOptions") or {}
    if options.get("Enabled") and options.get("LambdaFunctionArn") == arn:
        return "already on"
    ec2.modify_client_vpn_endpoint(
        ClientVpnEndpointId=endpoint_id, ClientConnectOptions={"Enabled": True, "LambdaFunctionArn": arn}
    )
    return "turned on"


# ------------------------------------------------------------------------------------------- list
def grant_rows(grants: list[Grant]) -> list[dict[str, Any]]:
    """One flat record per grant, the fields of ``LIST_FIELDS``: what an access review reads."""
    return [
        {
            "grant_id": grant.grant_id,
            "state": grant.state,
            "vpn_user": grant.person.vpn_user,
            "issuer": grant.person.issuer,
            "sub": grant.person.sub,
            "profile": grant.profile,
            "endpoint_id": grant.endpoint_id,
            "access_groups": list(grant.access_groups),
            "starts_at": _iso(grant.starts_at),
            "ends_at": _iso(grant.ends_at),
            "approved_by": grant.approved_by,
            "break_glass": grant.break_glass,
            "reason": grant.reason,
            "created_at": _iso(grant.created_at),
        }
        for grant in grants
    ]


def _iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with ``Z``, as the grant's own JSON has it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def _csv_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: lists joined with ';', no leading formula character."""
    text = ";".join(value) if isinstance(value, list) else "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text
    return text


def cmd_list(args: argparse.Namespace) -> int:
    if args.legacy_endpoints:
        if args.endpoint or args.user or args.active:
            raise CliError(
                "--legacy-endpoints lists endpoints, not grants: it takes no --endpoint/--user/--active"
            )
        return _list_legacy(args)
    grants = _grants(args).listing(endpoint_id=args.endpoint, vpn_user=args.user, active_only=args.active)
    rows = grant_rows(grants)
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    if args.csv:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=LIST_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _csv_cell(value) for key, value in row.items()})
        sys.stdout.write(out.getvalue())
        return 0
    if not rows:
        print("no grants")
        return 0
    print(f"{'grant':<34}  {'state':<7}  {'user':<24}  {'endpoint':<26}  {'until (UTC)':<16}  approved by")
    for grant in grants:
        print(
            f"{grant.grant_id:<34}  {grant.state:<7}  {grant.person.vpn_user[:24]:<24}  "
            f"{grant.endpoint_id:<26}  {_when(grant.ends_at).removesuffix(' UTC'):<16}  {grant.approved_by}"
        )
    return 0


def _list_legacy(args: argparse.Namespace) -> int:
    from cvpn_shared.access.dal.profile_parameters import ParameterStoreProfiles
    from cvpn_shared.access.grants.dal import RequestsTableEndpoints

    settings = _settings(args)
    shared = {
        profile.endpoint_request_id
        for profile in ParameterStoreProfiles(
            aws_client(args, "ssm"), settings.profiles_parameter_path
        ).list_profiles()
        if profile.endpoint_request_id
    }
    legacy = [
        record
        for record in RequestsTableEndpoints(
            aws_client(args, "dynamodb"), settings.requests_table_name
        ).live_endpoints()
        if record["request_id"] not in shared
        and not record["execution_id"].rsplit(":", 1)[-1].startswith(_ADMINISTRATOR_EXECUTIONS)
    ]
    for record in legacy:
        record["decommission"] = (
            f"cvpn decommission --request-id {record['request_id']} --stack-name {args.stack_name}"
        )
    if args.json:
        print(json.dumps(legacy, indent=2, sort_keys=True))
        return 0
    if not legacy:
        print("no endpoints built per request: every live endpoint is shared or an administrator's")
        return 0
    for record in legacy:
        print(
            f"{record['endpoint_id']}  request {record['request_id']} by {record['requester'] or '?'}\n"
            f"    {record['decommission']}"
        )
    return 0


# ------------------------------------------------------------------------------------------ parser
def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"hours must be above 0, got {text}")
    return value


def register(subparsers: Any) -> None:
    """Add `cvpn access grant|extend|revoke|list` to the command line."""
    access = subparsers.add_parser("access", help="grants of time-bound access to shared endpoints")
    commands = access.add_subparsers(dest="access_command", required=True)

    grant = commands.add_parser(
        "grant", help="break-glass: grant access now, without approval (recorded as such)"
    )
    grant.add_argument("--profile", required=True, help="the network profile (its shared endpoint)")
    grant.add_argument(
        "--user", required=True, help="the user name the VPN sees (AD/SAML, or certificate CN)"
    )
    grant.add_argument("--issuer", required=True, help="the person's OpenID Connect issuer URL")
    grant.add_argument("--sub", required=True, help="the person's subject (sub) at that issuer")
    grant.add_argument(
        "--groups", nargs="+", metavar="GROUP", help="access groups (default: all of the profile's)"
    )
    grant.add_argument("--hours", type=_hours, help="how long (default: the profile's default)")
    grant.add_argument("--reason", required=True, help="why (kept in the grant's history)")
    grant.add_argument("--json", action="store_true", help="print the grant as JSON")
    add_aws_options(grant)
    grant.set_defaults(func=cmd_grant)

    extend = commands.add_parser("extend", help="move an active grant's end to N hours from now")
    extend.add_argument("grant_id", metavar="GRANT_ID")
    extend.add_argument("--hours", type=_hours, required=True)
    extend.add_argument("--reason", default="extended by an administrator")
    add_aws_options(extend)
    extend.set_defaults(func=cmd_extend)

    revoke = commands.add_parser(
        "revoke", help="end a grant now, or every grant of a person (--user NAME --all)"
    )
    revoke.add_argument("grant_id", metavar="GRANT_ID", nargs="?")
    revoke.add_argument("--user", help="the person's VPN user name (offboarding, with --all)")
    revoke.add_argument("--all", action="store_true", help="every pending or active grant of --user")
    revoke.add_argument("--reason", default="revoked by an administrator")
    add_aws_options(revoke)
    revoke.set_defaults(func=cmd_revoke)

    enforce = commands.add_parser(
        "enforce", help="refuse users without an active grant at connect on a profile's shared endpoint"
    )
    enforce.add_argument("--profile", required=True, help="the grants profile (its shared endpoint)")
    enforce.add_argument(
        "--off", action="store_true", help="stop: admit whoever authenticates and is not blocked"
    )
    add_aws_options(enforce)
    enforce.set_defaults(func=cmd_enforce)

    listing = commands.add_parser("list", help="who has access to what, until when, approved by whom")
    listing.add_argument("--endpoint", help="grants on this endpoint id")
    listing.add_argument("--user", help="grants of this VPN user name")
    listing.add_argument("--active", action="store_true", help="only grants active now")
    listing.add_argument(
        "--legacy-endpoints",
        action="store_true",
        help="endpoints built one per request before grants, with the command to decommission each",
    )
    formats = listing.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true")
    formats.add_argument("--csv", action="store_true")
    add_aws_options(listing)
    listing.set_defaults(func=cmd_list)
