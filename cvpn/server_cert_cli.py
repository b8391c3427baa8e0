"""`cvpn server-cert check`: the server certificates of managed endpoints, and how long each has left.

The same look as the daily check (``cvpn_shared.provisioning.server_certificates``), on demand and
read-only: it names the renewed certificate the check would apply, and starts nothing.

Exit codes: 0 every certificate is valid beyond the threshold, 3 at least one expires within it, has
expired or is gone from ACM, 1 an error.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from cvpn.common import CliError, add_aws_options, aws_client

__all__ = ["register"]

EXIT_CODES = """exit codes:
  0  every server certificate is valid beyond the threshold
  1  an error
  3  at least one expires within the threshold, has expired or is missing from ACM
"""
_THRESHOLD_PARAMETER = "ServerCertificateExpiryDays"
_DEFAULT_DAYS = 30


def _stack_threshold_and_time(cloudformation: Any, stack_name: str) -> tuple[int, datetime]:
    """The deployed stack's ServerCertificateExpiryDays (its default when the stack predates it), and
    the cloud's time (the answer's Date header: the local cloud's emulated clock, AWS's own clock)."""
    answer = cloudformation.describe_stacks(StackName=stack_name)
    date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        now = parsedate_to_datetime(date).astimezone(UTC) if date else datetime.now(UTC)
    except (TypeError, ValueError):
        now = datetime.now(UTC)
    for parameter in answer["Stacks"][0].get("Parameters", []):
        if parameter.get("ParameterKey") == _THRESHOLD_PARAMETER:
            return int(parameter.get("ResolvedValue") or parameter["ParameterValue"]), now
    return _DEFAULT_DAYS, now


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number of days, got {text!r}") from None
    if not 1 <= value <= 365:
        raise argparse.ArgumentTypeError(f"from 1 to 365 days, got {value}")
    return value


def cmd_check(args: argparse.Namespace) -> int:
    from cvpn.provision import StackNotFound, stack_outputs
    from cvpn_shared.provisioning.dal.acm_certificates import AcmCertificates
    from cvpn_shared.provisioning.dal.requests_table import RequestRecords
    from cvpn_shared.provisioning.drift import managed_endpoints
    from cvpn_shared.provisioning.server_certificates import check_certificate

    cloudformation = aws_client(args, "cloudformation")
    try:
        outputs = stack_outputs(cloudformation, args.stack_name)
    except StackNotFound as error:
        raise CliError(f"--stack-name {args.stack_name}: {error}") from error
    if not outputs.get("RequestsTableName"):
        raise CliError(f"--stack-name {args.stack_name}: the stack has no RequestsTableName output")
    stack_threshold, now = _stack_threshold_and_time(cloudformation, args.stack_name)
    threshold = args.days or stack_threshold
    managed = managed_endpoints(RequestRecords(aws_client(args, "dynamodb"), outputs["RequestsTableName"]))
    if args.endpoint:
        managed = [m for m in managed if args.endpoint in (m.endpoint_id, m.request_id)]
        if not managed:
            raise CliError(
                f"ENDPOINT {args.endpoint}: no managed endpoint or request of that id in the requests table "
                f"of {args.stack_name}"
            )
    acm = AcmCertificates(aws_client(args, "acm"))
    reports = [check_certificate(acm, None, m, threshold_days=threshold, now=now) for m in managed]
    if args.json:
        print(json.dumps([report.model_dump(mode="json") for report in reports], indent=2))
        return 3 if any(report.needs_attention for report in reports) else 0
    if not reports:
        print("No managed endpoints.")
    for report in reports:
        when = f"expires {report.not_after:%Y-%m-%d}, " if report.not_after else ""
        label = {
            "valid": f"valid ({when}{report.days_left} days left)",
            "expiring": f"EXPIRING ({when}{report.days_left} days left, threshold {threshold})",
            "expired": f"EXPIRED ({when.rstrip(', ')})",
            "missing": "MISSING FROM ACM",
            "unreadable": "UNREADABLE DOCUMENT",
        }[report.status]
        print(f"{report.endpoint_id} ({report.request_id}): {label}")
        if report.certificate_arn:
            print(f"  certificate {report.certificate_arn}")
        if report.error:
            print(f"  {report.error}")
        if report.needs_attention:
            if report.replacement_arn:
                keeps = (
                    "keep their configuration" if not report.new_configuration_needed else "need a new one"
                )
                print(f"  renewed certificate {report.replacement_arn} (users {keeps})")
            print(f"  next: {report.remedy()}")
    return 3 if any(report.needs_attention for report in reports) else 0


def register(subparsers: Any) -> None:
    """Add `server-cert check` to the `cvpn` command line."""
    certs = subparsers.add_parser("server-cert", help="server certificates of the managed endpoints")
    actions = certs.add_subparsers(dest="server_cert_command", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="how long each managed endpoint's server certificate has left, and its renewal",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "endpoint", nargs="?", metavar="ENDPOINT", help="an endpoint id or request id (default: all)"
    )
    check.add_argument(
        "--days",
        type=_days,
        default=None,
        help="the threshold in days (default: the stack's ServerCertificateExpiryDays)",
    )
    check.add_argument("--json", action="store_true", help="print the reports as JSON")
    add_aws_options(check)
    check.set_defaults(func=cmd_check)
