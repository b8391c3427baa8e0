"""Data access to the audit trail: the DynamoDB requests table, one item per request."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import conditional_check_failed
from cvpn_shared.provisioning.monitored_log_groups import MONITORED_LOG_GROUP

__all__ = ["RequestRecords"]

_SUCCEEDED = "SUCCEEDED"


class RequestRecords:
    """One item per request: who asked, what was created, when, and the result.

    ``monitored_log_group`` stays only on a SUCCEEDED item: a write of any other status leaves it off
    (``put_outcome``) or removes it (``update_outcome``), so the endpoint leaves the index with it.
    """

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def put_outcome(self, item: dict[str, Any]) -> None:
        """Write the outcome; an older write never replaces a newer one (conditional on updated_at)."""
        encoded = {key: _attribute(value) for key, value in item.items() if value is not None}
        if encoded.get("status") != {"S": _SUCCEEDED}:
            encoded.pop(MONITORED_LOG_GROUP, None)
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=encoded,
                ConditionExpression="attribute_not_exists(request_id) OR updated_at <= :now",
                ExpressionAttributeValues={":now": encoded["updated_at"]},
            )
        except ClientError as error:
            if not conditional_check_failed(error):
                raise

    def update_outcome(self, request_id: str, fields: dict[str, Any]) -> None:
        """Set ``fields`` (``updated_at`` among them) on the request's record, keeping its other
        attributes; creates the record when there is none. An older write never replaces a newer one.
        A status other than SUCCEEDED removes ``monitored_log_group``, and so does giving it as
        ``None`` (an endpoint whose connection logging was turned off leaves the index); any other
        ``None`` leaves its attribute as it is."""
        encoded = {key: _attribute(value) for key, value in fields.items() if value is not None}
        leaves_index = ("status" in encoded and encoded["status"] != {"S": _SUCCEEDED}) or (
            MONITORED_LOG_GROUP in fields and fields[MONITORED_LOG_GROUP] is None
        )
        if leaves_index:
            encoded.pop(MONITORED_LOG_GROUP, None)
        names = {f"#f{index}": key for index, key in enumerate(encoded)}
        values = {f":v{index}": value for index, value in enumerate(encoded.values())}
        update = "SET " + ", ".join(f"{name} = :v{name[2:]}" for name in names)
        if leaves_index:
            names["#monitored"] = MONITORED_LOG_GROUP
            update += " REMOVE #monitored"
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"request_id": {"S": request_id}},
                UpdateExpression=update,
                ConditionExpression="attribute_not_exists(request_id) OR updated_at <= :now",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":now": encoded["updated_at"]},
            )
        except ClientError as error:
            if not conditional_check_failed(error):
                raise

    def managed_endpoints(self) -> list[dict[str, Any]]:
        """Every SUCCEEDED request with an endpoint and its desired state (``request``), decoded."""
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            page = self._dynamodb.scan(
                TableName=self._table,
                FilterExpression="#status = :succeeded AND attribute_exists(endpoint_id) "
                "AND attribute_exists(#request)",
                ExpressionAttributeNames={"#status": "status", "#request": "request"},
                ExpressionAttributeValues={":succeeded": {"S": _SUCCEEDED}},
                **({"ExclusiveStartKey": start} if start else {}),
            )
            items.extend(
                {key: _value(value) for key, value in item.items()} for item in page.get("Items", [])
            )
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def find_by_endpoint(self, endpoint_id: str) -> list[dict[str, Any]]:
        """The SUCCEEDED requests that name ``endpoint_id`` (one, unless the table was edited by hand)."""
        return [item for item in self.managed_endpoints() if item.get("endpoint_id") == endpoint_id]

    def put_adopted(self, item: dict[str, Any]) -> bool:
        """Write the record of an adopted endpoint unless the request id is taken; False when taken."""
        encoded = {key: _attribute(value) for key, value in item.items() if value is not None}
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=encoded,
                ConditionExpression="attribute_not_exists(request_id)",
            )
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True

    def get(self, request_id: str) -> dict[str, Any] | None:
        answer = self._dynamodb.get_item(
            TableName=self._table, Key={"request_id": {"S": request_id}}, ConsistentRead=True
        )
        item = answer.get("Item")
        return {key: _value(value) for key, value in item.items()} if item else None


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    return {"S": json.dumps(value, default=str, sort_keys=True)}


def _value(attribute: dict[str, Any]) -> Any:
    if "S" in attribute:
        text = attribute["S"]
        if text[:1] in "[{":
            try:
                return json.loads(text)
            except ValueError:
                return text
        return text
    if "N" in attribute:
        number = attribute["N"]
        return float(number) if "." in number else int(number)
    if "BOOL" in attribute:
        return attribute["BOOL"]
    return None
