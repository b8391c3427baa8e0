"""Data access to the revision history: the EndpointRevisionsTable, one item per apply of a document.

Key: ``request_id`` (S) and ``revision`` (N). Each item keeps the document applied, the desired state
it replaced, who applied it and when, the plan, the execution, and the outcome (``status`` and
``error``). A revision is written once as IN_PROGRESS (refused if the number is taken, so two applies
never share one) and then closed with its outcome.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import conditional_check_failed

__all__ = ["RevisionRecords", "RevisionTaken"]

IN_PROGRESS = "IN_PROGRESS"
_JSON_ATTRIBUTES = ("document", "previous_document", "plan", "outcome", "applied")


class RevisionTaken(Exception):
    """Another apply already wrote this revision number of the request."""


class RevisionRecords:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def start(self, item: dict[str, Any]) -> None:
        """Write a new revision (``request_id``, ``revision`` and the rest); RevisionTaken when the
        number is used, unless it is this same execution's (a retried task)."""
        encoded = _encode(item)
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=encoded,
                ConditionExpression="attribute_not_exists(request_id) OR execution_id = :execution",
                ExpressionAttributeValues={":execution": encoded["execution_id"]},
            )
        except ClientError as error:
            if conditional_check_failed(error):
                raise RevisionTaken(
                    f"revision {item['revision']} of {item['request_id']} was written by another apply"
                ) from error
            raise

    def finish(self, request_id: str, revision: int, fields: dict[str, Any]) -> None:
        """Set the outcome (and any other ``fields``) on an existing revision."""
        encoded = _encode(fields)
        names = {f"#f{index}": key for index, key in enumerate(encoded)}
        values = {f":v{index}": value for index, value in enumerate(encoded.values())}
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"request_id": {"S": request_id}, "revision": {"N": str(revision)}},
            UpdateExpression="SET " + ", ".join(f"{name} = :v{name[2:]}" for name in names),
            ConditionExpression="attribute_exists(request_id)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def history(self, request_id: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The request's revisions, newest first (``limit`` of them, or all)."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "request_id = :id",
            "ExpressionAttributeValues": {":id": {"S": request_id}},
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        while True:
            if limit is not None:
                params["Limit"] = limit - len(found)
            page = self._dynamodb.query(**params)
            found.extend(_decode(item) for item in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start or (limit is not None and len(found) >= limit):
                return found
            params["ExclusiveStartKey"] = start

    def latest(self, request_id: str) -> dict[str, Any] | None:
        newest = self.history(request_id, limit=1)
        return newest[0] if newest else None


def _encode(item: dict[str, Any]) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for key, value in item.items():
        if value is None:
            continue
        if key in _JSON_ATTRIBUTES:
            encoded[key] = {"S": json.dumps(value, sort_keys=True, default=str)}
        elif isinstance(value, bool):
            encoded[key] = {"BOOL": value}
        elif isinstance(value, int | float):
            encoded[key] = {"N": str(value)}
        else:
            encoded[key] = {"S": str(value)}
    return encoded


def _decode(item: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key, attribute in item.items():
        if "S" in attribute:
            decoded[key] = json.loads(attribute["S"]) if key in _JSON_ATTRIBUTES else attribute["S"]
        elif "N" in attribute:
            number = attribute["N"]
            decoded[key] = float(number) if "." in number else int(number)
        elif "BOOL" in attribute:
            decoded[key] = attribute["BOOL"]
    return decoded
