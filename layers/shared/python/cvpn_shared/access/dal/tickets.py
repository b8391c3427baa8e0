"""Data access to the tickets the intake has started (DynamoDB, kept forever: no TTL).

One item per (source, ticket): which run of the ticket is the latest (1, then one more per re-open),
the re-open markers already used, the execution of the latest run and whether it is known to have
started. Every change is a conditional write on ``run``, so two deliveries racing for the same ticket
cannot both start it.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import conditional_check_failed
from cvpn_shared.core.item_codecs import decode_plain_item, encode_plain_item

__all__ = ["StartedTickets"]


def _encode(record: dict[str, Any]) -> dict[str, Any]:
    plain = {key: value for key, value in record.items() if key != "markers"}
    item = encode_plain_item(plain)
    item["markers"] = {"L": [{"S": str(marker)} for marker in record.get("markers") or []]}
    return item


def _decode(item: dict[str, Any]) -> dict[str, Any]:
    markers = [entry.get("S", "") for entry in item.get("markers", {}).get("L", [])]
    record = decode_plain_item({key: value for key, value in item.items() if key != "markers"})
    record["markers"] = markers
    return record


class StartedTickets:
    """Items ``{ticket_key, source, request_id, run, markers, execution_arn, state, claimed_at}``."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def get(self, ticket_key: str) -> dict[str, Any] | None:
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"ticket_key": {"S": ticket_key}}, ConsistentRead=True
        ).get("Item")
        return _decode(item) if item else None

    def claim(self, record: dict[str, Any], *, previous_run: int) -> bool:
        """Write ``record`` (run ``previous_run + 1``) if the ticket is still at ``previous_run``."""
        if previous_run == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(ticket_key)"}
        else:
            condition = {
                "ConditionExpression": "#run = :previous",
                "ExpressionAttributeNames": {"#run": "run"},
                "ExpressionAttributeValues": {":previous": {"N": str(previous_run)}},
            }
        try:
            self._dynamodb.put_item(TableName=self._table, Item=_encode(record), **condition)
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True

    def mark_started(self, ticket_key: str, run: int) -> None:
        """The execution of ``run`` is known to exist."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"ticket_key": {"S": ticket_key}},
                UpdateExpression="SET #state = :started",
                ConditionExpression="#run = :run",
                ExpressionAttributeNames={"#state": "state", "#run": "run"},
                ExpressionAttributeValues={":started": {"S": "started"}, ":run": {"N": str(run)}},
            )
        except ClientError as error:
            if not conditional_check_failed(error):
                raise

    def release(self, ticket_key: str, run: int, previous: dict[str, Any] | None) -> None:
        """Undo the claim of ``run`` (its execution could not start): back to ``previous``, or nothing."""
        key = {"ticket_key": {"S": ticket_key}}
        condition = {
            "ConditionExpression": "#run = :run",
            "ExpressionAttributeNames": {"#run": "run"},
            "ExpressionAttributeValues": {":run": {"N": str(run)}},
        }
        try:
            if previous is None:
                self._dynamodb.delete_item(TableName=self._table, Key=key, **condition)
            else:
                self._dynamodb.put_item(TableName=self._table, Item=_encode(previous), **condition)
        except ClientError as error:
            if not conditional_check_failed(error):
                raise
