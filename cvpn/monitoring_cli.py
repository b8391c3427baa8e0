"""`cvpn findings`, `cvpn connections` and `cvpn monitoring reindex`: what monitoring found, who is
connected right now, and which endpoints the ingest watches.

cvpn findings [--since 1h] [--json]                        findings recorded by the alert delivery
cvpn connections ENDPOINT_ID [--terminate USER]           live and recent connections, failed attempts
                                                          of the last hour; cut a user's sessions
cvpn monitoring reindex [--json]                           index requests recorded before the index

All work against a deployed stack (found by ``--stack-name`` through its CloudFormation outputs) on
AWS, on the local cloud (``--local``) or on any AWS-compatible endpoint (``--endpoint-url``).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cvpn.common import CliError, add_aws_options, aws_client

__all__ = ["parse_duration", "register", "reindex_monitored_log_groups"]

FINDINGS_OUTPUT = "FindingsTableName"
REQUESTS_OUTPUT = "RequestsTableName"
FAILED_ATTEMPTS_WINDOW = 3600  # seconds of connection log `cvpn connections` reads failures from
FAILED_ATTEMPTS_SHOWN = 20
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """Seconds in ``90s``, ``15m``, ``1h``, ``2d``, ``1w`` (a bare number is seconds)."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 30m, 1h, 2d)")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def _stack_output(args: argparse.Namespace, key: str) -> str:
    from cvpn.provision import StackNotFound, stack_outputs

    try:
        outputs = stack_outputs(aws_client(args, "cloudformation"), args.stack_name)
    except StackNotFound as error:
        raise CliError(f"--stack-name {args.stack_name}: {error}") from error
    if key not in outputs:
        raise CliError(f"--stack-name {args.stack_name}: no output {key} (a stack without monitoring?)")
    return outputs[key]


# ------------------------------------------------------------------------------------------ findings
def recorded_findings(dynamodb: Any, table_name: str, since_epoch: int) -> list[dict[str, Any]]:
    """Finding details recorded at or after ``since_epoch``, newest first."""
    found: list[tuple[int, dict[str, Any]]] = []
    params: dict[str, Any] = {
        "TableName": table_name,
        "FilterExpression": "recorded_at >= :since",
        "ExpressionAttributeValues": {":since": {"N": str(since_epoch)}},
    }
    while True:
        page = dynamodb.scan(**params)
        for item in page.get("Items", []):
            detail = json.loads(item["detail"]["S"])
            recorded = int(item["recorded_at"]["N"])
            detail["recorded_at"] = datetime.fromtimestamp(recorded, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
            found.append((recorded, detail))
        if not page.get("LastEvaluatedKey"):
            break
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return [detail for _, detail in sorted(found, key=lambda pair: pair[0], reverse=True)]


def cmd_findings(args: argparse.Namespace) -> int:
    table = _stack_output(args, FINDINGS_OUTPUT)
    findings = recorded_findings(aws_client(args, "dynamodb"), table, int(time.time()) - args.since)
    if args.json:
        print(json.dumps(findings, indent=2, sort_keys=True))
        return 0
    if not findings:
        print(f"no findings in the last {_human(args.since)}")
        return 0
    print(f"{'recorded (UTC)':<19}  {'severity':<8}  rule  {'endpoint':<30}  {'who':<32}  failures  finding")
    for finding in findings:
        entity = finding.get("entity") or {}
        who = " ".join(
            part
            for part in (
                entity.get("device_ip") or "",
                entity.get("username") or entity.get("common_name") or "",
            )
            if part
        )
        counts = finding.get("counts") or {}
        print(
            f"{finding['recorded_at']:<19}  {finding.get('severity', '?'):<8}  "
            f"{finding.get('rule_id', '?'):<4}  "
            f"{finding.get('endpoint_id', '?'):<30}  {who[:32]:<32}  {counts.get('failures', '-')!s:>8}  "
            f"{str(finding.get('finding_id', ''))[:12]}  {finding.get('title', '')}"
            f"{'  (allow-listed)' if finding.get('allowlisted') else ''}"
        )
    return 0


# --------------------------------------------------------------------------------------- connections
def terminate_sessions(ec2: Any, endpoint_id: str, name: str) -> list[dict[str, Any]]:
    """Cut every live session of ``name``: an Active Directory or SAML user name, else a certificate's
    common name. The alert path's own code (``cvpn_shared.monitoring.dal.client_connections``): by
    ``Username`` first, the rest of a user with more than five sessions and a common name's
    connections one ConnectionId at a time."""
    from cvpn_shared.monitoring.dal.client_connections import ClientVpnConnections

    sessions = ClientVpnConnections(ec2)
    return sessions.terminate_user(endpoint_id, name) or sessions.terminate_common_name(endpoint_id, name)


_MAX_LOG_EVENTS = 10_000  # connection-log events read for the failed attempts of one listing


@dataclass(frozen=True)
class FailedAttempt:
    """A refused connection attempt as the connection log recorded it."""

    timestamp_ms: int
    user: str | None  # the username (Active Directory, SAML), else the certificate's common name
    device_ip: str | None
    failure_reason: str | None


def _meaning(record: dict[str, Any], field: str) -> str | None:
    value = record.get(field)
    return None if value in (None, "", "NA") else str(value)  # the log writes "NA" for not applicable


def recent_failed_attempts(ec2: Any, logs: Any, endpoint_id: str, since_epoch: int) -> list[FailedAttempt]:
    """The failed connection attempts the endpoint's connection log recorded since ``since_epoch``,
    newest first, each once (a record is logged again while its connection lives). Empty when the
    endpoint logs no connections. DescribeClientVpnConnections lists only connections that were
    established: a refused attempt exists only in the log. (The command line ships without the
    product's layer: the few fields read here are read here.)"""
    endpoints = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"]
    options = (endpoints[0].get("ConnectionLogOptions") or {}) if endpoints else {}
    group = options.get("CloudwatchLogGroup")
    if not options.get("Enabled") or not group:
        return []
    params: dict[str, Any] = {"logGroupName": group, "startTime": since_epoch * 1000}
    if options.get("CloudwatchLogStream"):
        params["logStreamNames"] = [options["CloudwatchLogStream"]]
    failed: dict[str, FailedAttempt] = {}
    read = 0
    while read < _MAX_LOG_EVENTS:
        page = logs.filter_log_events(**params)
        for event in page.get("events", []):
            read += 1
            try:
                record = json.loads(event.get("message") or "")
            except ValueError:
                continue
            if not isinstance(record, dict) or record.get("client-vpn-endpoint-id") != endpoint_id:
                continue
            if record.get("connection-log-type") != "connection-attempt":
                continue
            if record.get("connection-attempt-status") != "failed":
                continue
            connection_id = str(record.get("connection-id") or event.get("eventId"))
            failed.setdefault(
                connection_id,
                FailedAttempt(
                    timestamp_ms=int(event.get("timestamp") or 0),
                    user=_meaning(record, "username") or _meaning(record, "common-name"),
                    device_ip=_meaning(record, "device-ip"),
                    failure_reason=_meaning(record, "connection-attempt-failure-reason"),
                ),
            )
        if not page.get("nextToken"):
            break
        params["nextToken"] = page["nextToken"]
    return sorted(failed.values(), key=lambda attempt: attempt.timestamp_ms, reverse=True)


def cmd_connections(args: argparse.Namespace) -> int:
    from botocore.exceptions import ClientError

    from cvpn_shared.monitoring.dal.client_connections import ClientVpnConnections

    ec2 = aws_client(args, "ec2")
    try:
        if args.terminate:
            statuses = terminate_sessions(ec2, args.endpoint_id, args.terminate)
            if not statuses:
                raise CliError(
                    f"no live session of {args.terminate} on {args.endpoint_id} (neither a user name nor a "
                    "certificate common name of an active connection); `cvpn connections "
                    f"{args.endpoint_id}` lists them"
                )
            print(f"terminated {len(statuses)} connection(s) of {args.terminate}")
            for status in statuses:
                print(
                    f"  {status['ConnectionId']}  {status.get('PreviousStatus', {}).get('Code', '?')} -> "
                    f"{status.get('CurrentStatus', {}).get('Code', '?')}"
                )
        connections = ClientVpnConnections(ec2).describe(args.endpoint_id)
    except ClientError as error:
        detail = error.response.get("Error", {})
        raise CliError(f"{detail.get('Code')}: {detail.get('Message')}") from error
    if args.json:
        print(json.dumps(connections, indent=2, sort_keys=True, default=str))
        return 0
    try:
        failed = recent_failed_attempts(
            ec2, aws_client(args, "logs"), args.endpoint_id, int(time.time()) - FAILED_ATTEMPTS_WINDOW
        )
    except ClientError as error:
        detail = error.response.get("Error", {})
        failed = None
        unread = f"{detail.get('Code')}: {detail.get('Message')}"
    active = sum(1 for c in connections if c.get("Status", {}).get("Code") == "active")
    print(f"{args.endpoint_id}: {active} active, {len(connections) - active} ended in the last hour")
    print(
        f"{'connection':<34}  {'user':<16}  {'client ip':<15}  {'status':<11}  {'established':<19}  "
        f"{'in bytes':>10}  {'out bytes':>10}"
    )
    for connection in sorted(connections, key=lambda c: str(c.get("ConnectionEstablishedTime", ""))):
        user = connection.get("Username") or connection.get("CommonName") or "-"
        print(
            f"{connection.get('ConnectionId', '?'):<34}  {user[:16]:<16}  "
            f"{connection.get('ClientIp', '-'):<15}  "
            f"{connection.get('Status', {}).get('Code', '?'):<11}  "
            f"{str(connection.get('ConnectionEstablishedTime', '-'))[:19]:<19}  "
            f"{connection.get('IngressBytes', '0'):>10}  {connection.get('EgressBytes', '0'):>10}"
        )
    if failed is None:
        print(f"failed attempts: the connection log could not be read ({unread})")
        return 0
    print(f"{len(failed)} failed attempt(s) in the last hour (from the connection log)")
    for attempt in failed[:FAILED_ATTEMPTS_SHOWN]:
        moment = datetime.fromtimestamp(attempt.timestamp_ms / 1000, tz=UTC)
        print(
            f"  {moment:%Y-%m-%d %H:%M:%S}  {(attempt.user or '-')[:24]:<24}  "
            f"{attempt.device_ip or '-':<15}  {attempt.failure_reason or '-'}"
        )
    if len(failed) > FAILED_ATTEMPTS_SHOWN:
        print(
            f"  ... and {len(failed) - FAILED_ATTEMPTS_SHOWN} more; `cvpn findings` lists what they add up to"
        )
    return 0


# ------------------------------------------------------------------------------------ monitoring reindex
def reindex_monitored_log_groups(dynamodb: Any, table_name: str) -> dict[str, int]:
    """Give each SUCCEEDED request with connection logging but no ``monitored_log_group`` (recorded
    before the index existed) that attribute, so the ingest's index lists its log group.

    One Scan of the table; each write is conditional on the status still being SUCCEEDED, so a request
    decommissioned meanwhile stays out of the index. Running it again changes nothing. Answers counts:
    ``succeeded``, of which ``indexed`` now, ``already_indexed``, ``without_logging``, and ``changed``
    (no longer SUCCEEDED when written).
    """
    from botocore.exceptions import ClientError

    from cvpn_shared.core.aws_errors import conditional_check_failed
    from cvpn_shared.provisioning.monitored_log_groups import MONITORED_LOG_GROUP

    counts = dict.fromkeys(("succeeded", "indexed", "already_indexed", "without_logging", "changed"), 0)
    names = {"#status": "status", "#request": "request", "#group": MONITORED_LOG_GROUP}
    params: dict[str, Any] = {
        "TableName": table_name,
        "FilterExpression": "#status = :succeeded",
        "ProjectionExpression": "request_id, #request, #group",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":succeeded": {"S": "SUCCEEDED"}},
    }
    while True:
        page = dynamodb.scan(**params)
        for item in page.get("Items", []):
            counts["succeeded"] += 1
            if MONITORED_LOG_GROUP in item:
                counts["already_indexed"] += 1
                continue
            group = _log_group_of(item.get("request", {}).get("S", ""))
            if not group:
                counts["without_logging"] += 1
                continue
            try:
                dynamodb.update_item(
                    TableName=table_name,
                    Key={"request_id": item["request_id"]},
                    UpdateExpression="SET #group = :group",
                    ConditionExpression="#status = :succeeded",
                    ExpressionAttributeNames={"#status": "status", "#group": MONITORED_LOG_GROUP},
                    ExpressionAttributeValues={":group": {"S": group}, ":succeeded": {"S": "SUCCEEDED"}},
                )
            except ClientError as error:
                if not conditional_check_failed(error):
                    raise
                counts["changed"] += 1
                continue
            counts["indexed"] += 1
        if not page.get("LastEvaluatedKey"):
            return counts
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _log_group_of(request_json: str) -> str | None:
    """The connection log group of a recorded request (its ``request`` attribute), None when logging is
    off or the JSON is not a request."""
    try:
        request = json.loads(request_json)
    except ValueError:
        return None
    log = request.get("connection_log") if isinstance(request, dict) else None
    if not isinstance(log, dict) or not log.get("enabled", True):
        return None
    name = log.get("log_group_name")
    return str(name) if name else None


def cmd_reindex(args: argparse.Namespace) -> int:
    table = _stack_output(args, REQUESTS_OUTPUT)
    counts = reindex_monitored_log_groups(aws_client(args, "dynamodb"), table)
    if args.json:
        print(json.dumps(counts, indent=2, sort_keys=True))
        return 0
    print(
        f"{counts['succeeded']} succeeded request(s): {counts['indexed']} indexed now, "
        f"{counts['already_indexed']} already indexed, {counts['without_logging']} without connection "
        f"logging, {counts['changed']} no longer succeeded when written"
    )
    return 0


# ------------------------------------------------------------------------------------------- parser
def _aws_options(command: argparse.ArgumentParser) -> None:
    add_aws_options(command)
    command.add_argument("--json", action="store_true", help="print JSON instead of a table")


def register(subparsers: Any) -> None:
    """Add `findings`, `connections` and `monitoring reindex` to the `cvpn` command line."""
    findings = subparsers.add_parser("findings", help="list recent findings (suspicious connection attempts)")
    findings.add_argument(
        "--since", type=parse_duration, default=3600, help="how far back, e.g. 30m, 1h, 2d (default 1h)"
    )
    _aws_options(findings)
    findings.set_defaults(func=cmd_findings)

    connections = subparsers.add_parser(
        "connections",
        help="live and recent connections of an endpoint and its failed attempts of the last hour (from "
        "the connection log); --terminate cuts a user's sessions",
    )
    connections.add_argument("endpoint_id", metavar="ENDPOINT_ID")
    connections.add_argument(
        "--terminate",
        metavar="USER",
        help="terminate every session of this user first (a user name, or a certificate's common name)",
    )
    _aws_options(connections)
    connections.set_defaults(func=cmd_connections)

    monitoring = subparsers.add_parser("monitoring", help="what the connection-log ingest watches")
    monitoring_sub = monitoring.add_subparsers(dest="monitoring_command", required=True)
    reindex = monitoring_sub.add_parser(
        "reindex",
        help="index the connection log groups of requests that succeeded before the index existed "
        "(once, after upgrading; running it again changes nothing)",
    )
    _aws_options(reindex)
    reindex.set_defaults(func=cmd_reindex)


def _human(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
