"""Data access of grants: the DynamoDB grants table, the expiry schedules (EventBridge Scheduler), the
endpoint's live sessions, and the requests table (which endpoint a request provisioned).

The grants table (``AccessGrantsTable``) has one string key, ``pk``, and two kinds of item:

- a grant: ``pk = "grant#<grant id>"``, the grant as JSON in ``grant``, and the attributes its
  indexes read: ``person_key`` (``<issuer>#<sub>``), ``user_key`` (the VPN user name, lower case),
  ``endpoint_id``, ``created_at`` (ISO 8601), plus ``state``, ``ends_at`` and ``version`` (each write
  is conditional on the version it replaces). Indexes: ``by-person`` (person_key, created_at),
  ``by-user`` (user_key, created_at), ``by-endpoint`` (endpoint_id, created_at). Grants are audit
  records: they are never deleted and have no TTL.
- the connect-time item of one endpoint and user name, read by the client-connect handler in the
  same BatchGetItem as the blocklist:

      pk = "connect#<endpoint id>#<VPN user name in lower case>"
      active_until   N   POSIX seconds: the latest end among the user's active grants there
      grants         M   grant id -> its end (N), one entry per active grant
      version        N   each write is conditional on the version it read

  A user holds access at ``now`` when the item exists and ``active_until > now``. The item goes when
  the last active grant there ends. It carries none of the indexed attributes, so no index holds it.
- the endpoint's access policy, also read by the client-connect handler in that BatchGetItem:

      pk = "endpoint#<endpoint id>"
      access         S   "grants": only users with an active grant there connect
      profile        S   the grants profile that named the endpoint
      enforced_at    S   ISO 8601, when enforcement began; enforced_by S: who began it

  Written when enforcement begins (``cvpn access enforce``, or the endpoint's first active grant)
  and deleted only by ``cvpn access enforce --off``.

A grant and its connect-time item change in one transaction (TransactWriteItems).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.access.grants.logic import ConnectEntry, GrantConflict, connect_entry_after
from cvpn_shared.access.grants.models import Grant, parse_grant
from cvpn_shared.core.aws_errors import error_code
from cvpn_shared.core.connect_keys import ENFORCED_ACCESS, connect_key, endpoint_policy_key
from cvpn_shared.monitoring.dal.client_connections import ClientVpnConnections

__all__ = [
    "BY_ENDPOINT",
    "BY_PERSON",
    "BY_USER",
    "ClientVpnSessions",
    "DynamoDbGrants",
    "RequestsTableEndpoints",
    "SchedulerExpiry",
    "ServiceClock",
    "connect_key",
    "grant_key",
]

logger = logging.getLogger(__name__)

BY_PERSON = "by-person"
BY_USER = "by-user"
BY_ENDPOINT = "by-endpoint"
_CONNECT_RETRIES = 8  # another grant of the same user on the same endpoint written at the same time


def grant_key(grant_id: str) -> str:
    return f"grant#{grant_id}"


class DynamoDbGrants:
    """Grants and connect-time items in the grants table (implements ``GrantStore``)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    # -- reads --------------------------------------------------------------------------------
    def get(self, grant_id: str) -> Grant | None:
        answer = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": grant_key(grant_id)}}, ConsistentRead=True
        )
        item = answer.get("Item")
        return _grant(item) if item else None

    def connect_entry(self, endpoint_id: str, vpn_user: str) -> ConnectEntry:
        """The connect-time item of (endpoint, user); an empty one (version 0) when there is none."""
        answer = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": connect_key(endpoint_id, vpn_user)}}, ConsistentRead=True
        )
        item = answer.get("Item")
        if not item:
            return ConnectEntry(endpoint_id, vpn_user.lower(), {}, 0)
        grants = {name: int(value["N"]) for name, value in item.get("grants", {}).get("M", {}).items()}
        return ConnectEntry(endpoint_id, vpn_user.lower(), grants, int(item["version"]["N"]))

    def _query(self, index: str, attribute: str, value: str) -> list[Grant]:
        found: list[Grant] = []
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": "#key = :value",
            "ExpressionAttributeNames": {"#key": attribute},
            "ExpressionAttributeValues": {":value": {"S": value}},
        }
        while True:
            page = self._dynamodb.query(**params)
            found += [_grant(item) for item in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return found
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def of_person(self, person_key: str) -> list[Grant]:
        return self._query(BY_PERSON, "person_key", person_key)

    def of_vpn_user(self, vpn_user_key: str) -> list[Grant]:
        return self._query(BY_USER, "user_key", vpn_user_key.lower())

    def on_endpoint(self, endpoint_id: str) -> list[Grant]:
        return self._query(BY_ENDPOINT, "endpoint_id", endpoint_id)

    def every(self) -> list[Grant]:
        found: list[Grant] = []
        params: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(pk, :grant)",
            "ExpressionAttributeValues": {":grant": {"S": "grant#"}},
        }
        while True:
            page = self._dynamodb.scan(**params)
            found += [_grant(item) for item in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return found
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def enforcement(self, endpoint_id: str) -> dict[str, str] | None:
        """The endpoint's access-policy item (access, profile, enforced_at, enforced_by), or None."""
        answer = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": endpoint_policy_key(endpoint_id)}}, ConsistentRead=True
        )
        item = answer.get("Item")
        if not item:
            return None
        return {name: str(value.get("S", "")) for name, value in item.items() if name != "pk"}

    # -- writes -------------------------------------------------------------------------------
    def enforce(self, endpoint_id: str, *, profile: str, by: str, at: datetime) -> bool:
        """Begin enforcing grants at connect on ``endpoint_id``; False when it already was (the first
        record, who began it and when, is kept)."""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": endpoint_policy_key(endpoint_id)},
                    "access": {"S": ENFORCED_ACCESS},
                    "profile": {"S": profile},
                    "enforced_at": {"S": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
                    "enforced_by": {"S": by},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def relax(self, endpoint_id: str) -> bool:
        """Stop enforcing grants at connect on ``endpoint_id``; False when it was not enforced."""
        answer = self._dynamodb.delete_item(
            TableName=self._table, Key={"pk": {"S": endpoint_policy_key(endpoint_id)}}, ReturnValues="ALL_OLD"
        )
        return bool(answer.get("Attributes"))

    def write(self, previous: Grant | None, grant: Grant) -> ConnectEntry:
        """Create or replace ``grant`` and its connect-time item in one transaction (``GrantStore``)."""
        for _ in range(_CONNECT_RETRIES):
            entry = self.connect_entry(grant.endpoint_id, grant.person.vpn_user)
            after = connect_entry_after(entry, grant)
            actions = [{"Put": self._grant_put(previous, grant)}]
            connect_action = self._connect_action(entry, after)
            if connect_action is not None:
                actions.append(connect_action)
            try:
                self._dynamodb.transact_write_items(TransactItems=actions)
            except ClientError as error:
                reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
                if error_code(error) != "TransactionCanceledException":
                    raise
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    raise GrantConflict(
                        f"grant {grant.grant_id} changed meanwhile (or exists already): read it again"
                    ) from None
                if len(reasons) > 1 and reasons[1] in ("ConditionalCheckFailed", "TransactionConflict"):
                    continue  # the connect-time item moved on: read it again and recompute
                raise
            version = entry.version + 1 if after.grants else 0
            return ConnectEntry(after.endpoint_id, after.vpn_user_key, after.grants, version)
        raise GrantConflict(
            f"the connect-time item of {grant.person.vpn_user} on {grant.endpoint_id} kept changing"
        )

    def _grant_put(self, previous: Grant | None, grant: Grant) -> dict[str, Any]:
        document = grant.model_dump(mode="json")
        item = {
            "pk": {"S": grant_key(grant.grant_id)},
            "grant": {"S": json.dumps(document, sort_keys=True)},
            "person_key": {"S": grant.person.key},
            "user_key": {"S": grant.person.vpn_user_key},
            "endpoint_id": {"S": grant.endpoint_id},
            "created_at": {"S": document["created_at"]},
            "state": {"S": grant.state},
            "version": {"N": str(grant.version)},
        }
        if grant.ends_at is not None:
            item["ends_at"] = {"S": document["ends_at"]}
        put: dict[str, Any] = {"TableName": self._table, "Item": item}
        if previous is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :previous"
            put["ExpressionAttributeValues"] = {":previous": {"N": str(previous.version)}}
        return put

    def _connect_action(self, entry: ConnectEntry, after: ConnectEntry) -> dict[str, Any] | None:
        if after.grants == entry.grants:
            return None
        key = {"pk": {"S": connect_key(entry.endpoint_id, entry.vpn_user_key)}}
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if entry.version == 0
            else {
                "ConditionExpression": "version = :read",
                "ExpressionAttributeValues": {":read": {"N": str(entry.version)}},
            }
        )
        if not after.grants:
            return {"Delete": {"TableName": self._table, "Key": key, **condition}}
        item = {
            **key,
            "active_until": {"N": str(after.active_until)},
            "grants": {"M": {grant_id: {"N": str(end)} for grant_id, end in after.grants.items()}},
            "version": {"N": str(entry.version + 1)},
            "endpoint": {"S": entry.endpoint_id},
            "vpn_user": {"S": entry.vpn_user_key},
        }
        return {"Put": {"TableName": self._table, "Item": item, **condition}}


def _grant(item: dict[str, Any]) -> Grant:
    return parse_grant(json.loads(item["grant"]["S"]))


class SchedulerExpiry:
    """One EventBridge Scheduler schedule per active grant, named after it, in the stack's schedule
    group, firing once at the grant's end (implements ``ExpirySchedules``).

    The target gets ``{"grant_id", "scheduled_time"}``; Scheduler fills ``scheduled_time`` in from its
    context attribute. A fired schedule deletes itself (ActionAfterCompletion DELETE).
    """

    def __init__(self, scheduler_client: Any, *, group_name: str, target_arn: str, role_arn: str) -> None:
        self._scheduler = scheduler_client
        self._group = group_name
        self._target_arn = target_arn
        self._role_arn = role_arn

    def set(self, grant_id: str, at: datetime) -> None:
        moment = at.astimezone(UTC)
        params: dict[str, Any] = {
            "Name": grant_id,
            "GroupName": self._group,
            "ScheduleExpression": f"at({moment:%Y-%m-%dT%H:%M:%S})",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "Target": {
                "Arn": self._target_arn,
                "RoleArn": self._role_arn,
                "Input": json.dumps(
                    {"grant_id": grant_id, "scheduled_time": "<aws.scheduler.scheduled-time>"}
                ),
                "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
            },
        }
        try:
            self._scheduler.create_schedule(**params)
        except ClientError as error:
            if error_code(error) != "ConflictException":
                raise
            self._scheduler.update_schedule(**params)

    def remove(self, grant_id: str) -> None:
        try:
            self._scheduler.delete_schedule(Name=grant_id, GroupName=self._group)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise


class ClientVpnSessions:
    """Cuts a user's live sessions on an endpoint, the way a blocked user's are cut (implements
    ``Sessions``): by user name, else by certificate common name."""

    def __init__(self, ec2_client: Any) -> None:
        self._connections = ClientVpnConnections(ec2_client)

    def terminate(self, endpoint_id: str, vpn_user: str) -> int:
        statuses = self._connections.terminate_user(endpoint_id, vpn_user)
        if not statuses:
            statuses = self._connections.terminate_common_name(endpoint_id, vpn_user)
        return sum(
            1
            for status in statuses
            if (status.get("CurrentStatus") or {}).get("Code") in ("terminated", "terminating")
        )


class RequestsTableEndpoints:
    """Which live endpoint a request provisioned, from the requests table (implements
    ``EndpointDirectory``); and the endpoints the form or tickets built before grants."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def endpoint_of(self, request_id: str) -> str | None:
        answer = self._dynamodb.get_item(
            TableName=self._table, Key={"request_id": {"S": request_id}}, ConsistentRead=True
        )
        item = answer.get("Item") or {}
        if item.get("status", {}).get("S") != "SUCCEEDED":
            return None
        endpoint_id = item.get("endpoint_id", {}).get("S")
        return str(endpoint_id) if endpoint_id else None

    def live_endpoints(self) -> list[dict[str, str]]:
        """Every request whose endpoint is live: request id, endpoint id, requester, execution, when."""
        found: list[dict[str, str]] = []
        params: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "#status = :succeeded AND attribute_exists(endpoint_id)",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":succeeded": {"S": "SUCCEEDED"}},
        }
        while True:
            page = self._dynamodb.scan(**params)
            for item in page.get("Items", []):
                found.append(
                    {
                        key: str(item.get(key, {}).get("S", ""))
                        for key in ("request_id", "endpoint_id", "requester", "execution_id", "updated_at")
                    }
                )
            if not page.get("LastEvaluatedKey"):
                return sorted(found, key=lambda record: record["request_id"])
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class ServiceClock:
    """Now, for grants a function changes: the later of this machine's clock and the ``Date`` of the
    latest answer of the services it watches (the grants table's DynamoDB, Parameter Store).

    A grant runs on the time of the services that hold it and fire its expiry: on AWS that is the
    function's own clock to the second; on the local cloud the services run on its emulated clock while
    function processes keep the machine's.
    """

    def __init__(self, clock: Any = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._latest: datetime | None = None

    def watch(self, aws_client: Any) -> None:
        aws_client.meta.events.register("after-call", self._answered)

    def _answered(self, parsed: Any = None, **_: Any) -> None:
        headers = (
            (parsed or {}).get("ResponseMetadata", {}).get("HTTPHeaders", {})
            if isinstance(parsed, dict)
            else {}
        )
        date = headers.get("date")
        if not date:
            return
        try:
            moment = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        if moment.tzinfo is None:
            return
        if self._latest is None or moment > self._latest:
            self._latest = moment

    def __call__(self) -> datetime:
        now: datetime = self._clock()
        return max(now, self._latest) if self._latest is not None else now
