"""Data access to where connection logs are and what they hold.

- ``ConnectionLogReader`` pages FilterLogEvents over one log group from a start time.
- ``ManagedLogGroups`` lists the connection log groups of the endpoints the product provisioned
  (the requests table's sparse index of SUCCEEDED requests with connection logging on).
- ``ConfiguredLogGroups`` reads the log groups of endpoints created elsewhere from an SSM parameter.
- ``LogGroupOwners`` tells which endpoints of the account and Region log to which group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import error_code
from cvpn_shared.provisioning.monitored_log_groups import MONITORED_LOG_GROUP, MONITORED_LOG_GROUPS_INDEX

__all__ = [
    "ConfiguredLogGroups",
    "ConnectionLogReader",
    "InvalidPageToken",
    "LogEventPage",
    "LogGroupMissing",
    "LogGroupOwners",
    "ManagedLogGroups",
]


class LogGroupMissing(Exception):
    """The log group does not exist (deleted, or never created)."""


class InvalidPageToken(Exception):
    """CloudWatch Logs refused a page token (expired after 24 hours, or from another query)."""


@dataclass(frozen=True)
class LogEventPage:
    """One FilterLogEvents answer: events as CloudWatch Logs returns them, and the next token."""

    events: list[dict[str, Any]]
    next_token: str | None


class ConnectionLogReader:
    """FilterLogEvents over a connection log group (retries: the client's adaptive mode)."""

    def __init__(self, logs_client: Any) -> None:
        self._logs = logs_client

    def read_page(
        self,
        log_group_name: str,
        *,
        start_time_ms: int,
        next_token: str | None = None,
        limit: int | None = None,
    ) -> LogEventPage:
        """One page of events whose own timestamp is at or after ``start_time_ms``.

        A page may be empty while more remain: the scan ends only when no next token comes back.
        ``interleaved`` is documented as always on; it is passed so that every implementation of the
        API orders events across streams by timestamp.
        """
        params: dict[str, Any] = {
            "logGroupName": log_group_name,
            "startTime": max(0, start_time_ms),
            "interleaved": True,
        }
        if next_token:
            params["nextToken"] = next_token
        if limit:
            params["limit"] = limit
        try:
            answer = self._logs.filter_log_events(**params)
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                raise LogGroupMissing(log_group_name) from error
            if next_token and error_code(error) == "InvalidParameterException":
                raise InvalidPageToken(str(error)) from error
            raise
        events = [
            {
                "eventId": str(event.get("eventId", "")),
                "timestamp": int(event.get("timestamp", 0)),
                "message": str(event.get("message", "")),
                "logStreamName": str(event.get("logStreamName", "")),
                "ingestionTime": int(event.get("ingestionTime", 0) or 0),
            }
            for event in answer.get("events", [])
        ]
        return LogEventPage(events=events, next_token=answer.get("nextToken") or None)


class ManagedLogGroups:
    """The connection log groups of the endpoints the product provisioned and still manages.

    Read from the requests table's sparse index ``monitored-log-groups``: only the items of requests
    that SUCCEEDED with connection logging on carry its key (``RequestRecords`` removes it when the
    request moves to any other status), so a Scan of the index reads the live endpoints alone, not
    the whole audit trail. A Scan rather than a Query: the index is keyed on the group name, which is
    what the ingest wants to learn; its KEYS_ONLY items are about a hundred bytes, so a 1 MB page
    holds thousands of endpoints at half a read unit per 4 KB. Reads of a global secondary index
    are eventually consistent: an endpoint that just succeeded may show up one run later.
    """

    def __init__(self, dynamodb_client: Any, requests_table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = requests_table_name

    def log_group_names(self) -> list[str]:
        """Log groups of requests whose status is SUCCEEDED and whose connection logging is on."""
        names: set[str] = set()
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": MONITORED_LOG_GROUPS_INDEX,
            "ProjectionExpression": "#group",
            "ExpressionAttributeNames": {"#group": MONITORED_LOG_GROUP},
        }
        while True:
            page = self._dynamodb.scan(**params)
            names.update(item[MONITORED_LOG_GROUP]["S"] for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                return sorted(names)
            params["ExclusiveStartKey"] = last


class ConfiguredLogGroups:
    """Log groups of endpoints created outside the product, listed in an SSM parameter.

    The parameter is a StringList (or a String with commas or newlines between the names).
    """

    def __init__(self, ssm_client: Any, parameter_name: str) -> None:
        self._ssm = ssm_client
        self._name = parameter_name

    def log_group_names(self) -> list[str]:
        if not self._name:
            return []
        try:
            value = str(self._ssm.get_parameter(Name=self._name)["Parameter"]["Value"])
        except ClientError as error:
            if error_code(error) == "ParameterNotFound":
                return []
            raise
        return sorted({part.strip() for part in value.replace("\n", ",").split(",") if part.strip()})


class LogGroupOwners:
    """The endpoints whose connection logging writes to each log group (DescribeClientVpnEndpoints).

    What Client VPN itself says, for the product's endpoints and those created elsewhere alike: the
    ingest judges a record by the endpoint that owns its group, never by the id written inside it.
    """

    def __init__(self, ec2_client: Any) -> None:
        self._ec2 = ec2_client

    def by_log_group(self) -> dict[str, frozenset[str]]:
        """Log group name -> ids of the endpoints (not deleted) with connection logging on to it."""
        owners: dict[str, set[str]] = {}
        params: dict[str, Any] = {"MaxResults": 1000}
        while True:
            page = self._ec2.describe_client_vpn_endpoints(**params)
            for endpoint in page.get("ClientVpnEndpoints", []):
                options = endpoint.get("ConnectionLogOptions") or {}
                group = options.get("CloudwatchLogGroup")
                state = (endpoint.get("Status") or {}).get("Code")
                if options.get("Enabled") and group and state not in ("deleting", "deleted"):
                    owners.setdefault(str(group), set()).add(str(endpoint["ClientVpnEndpointId"]))
            token = page.get("NextToken")
            if not token:
                return {group: frozenset(ids) for group, ids in owners.items()}
            params["NextToken"] = token
