"""Data access to the ingest checkpoints: one DynamoDB item per connection log group.

An item holds how far the log group has been read (``position_ms``, the latest event timestamp
processed), the floor below which events are never read again, the digests of recently processed
event ids (to drop what an overlapping re-read returns), a page token when a scan stopped half way,
and a lease: the invocation that claimed the log group and until when. Every write is conditional on
the version read and on holding the lease, so two invocations never both advance one log group.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import conditional_check_failed

__all__ = ["Checkpoint", "CheckpointConflict", "DynamoDbCheckpoints", "LeaseHeld"]


class LeaseHeld(Exception):
    """Another invocation holds the log group's lease."""


class CheckpointConflict(Exception):
    """The checkpoint changed since it was read (the lease was lost): nothing was written."""


@dataclass(frozen=True)
class Checkpoint:
    """Where reading one log group stands."""

    log_group_name: str
    version: int = 0
    position_ms: int | None = None
    floor_ms: int = 0
    seen_event_digests: bytes = b""
    scan_start_ms: int | None = None
    page_token: str | None = None
    lease_owner: str | None = None
    lease_until_ms: int = 0
    events_processed: int = 0
    updated_at_ms: int = 0

    def advanced(self, **changes: Any) -> Checkpoint:
        """This checkpoint with ``changes`` and the next version."""
        return replace(self, version=self.version + 1, **changes)


class DynamoDbCheckpoints:
    """Checkpoints in a table whose partition key is ``log_group`` (S)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def load(self, log_group_name: str) -> Checkpoint:
        """The stored checkpoint, or an empty one (version 0) when the log group was never read."""
        answer = self._dynamodb.get_item(
            TableName=self._table, Key={"log_group": {"S": log_group_name}}, ConsistentRead=True
        )
        item = answer.get("Item")
        return _from_item(item) if item else Checkpoint(log_group_name=log_group_name)

    def claim(self, log_group_name: str, *, owner: str, now_ms: int, lease_until_ms: int) -> Checkpoint:
        """Take the log group's lease (free, expired or already ours); raises LeaseHeld otherwise."""
        try:
            answer = self._dynamodb.update_item(
                TableName=self._table,
                Key={"log_group": {"S": log_group_name}},
                UpdateExpression="SET lease_owner = :owner, lease_until_ms = :until, "
                "version = if_not_exists(version, :zero) + :one",
                ConditionExpression="attribute_not_exists(log_group) OR attribute_not_exists(lease_owner) "
                "OR lease_until_ms < :now OR lease_owner = :owner",
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":until": {"N": str(lease_until_ms)},
                    ":now": {"N": str(now_ms)},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if conditional_check_failed(error):
                raise LeaseHeld(log_group_name) from error
            raise
        return _from_item(answer["Attributes"])

    def save(self, checkpoint: Checkpoint, *, expected_version: int) -> Checkpoint:
        """Write ``checkpoint`` if the stored one still has ``expected_version`` and our lease."""
        item = _to_item(checkpoint)
        names = {"#version": "version"}
        values: dict[str, Any] = {":expected": {"N": str(expected_version)}}
        condition = "#version = :expected"
        if checkpoint.lease_owner is not None:
            condition += " AND lease_owner = :owner"
            values[":owner"] = {"S": checkpoint.lease_owner}
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if conditional_check_failed(error):
                raise CheckpointConflict(checkpoint.log_group_name) from error
            raise
        return checkpoint

    def release(self, checkpoint: Checkpoint) -> Checkpoint:
        """Give the lease back (conditional like ``save``); returns the checkpoint as stored."""
        released = checkpoint.advanced(lease_until_ms=0)
        self.save(released, expected_version=checkpoint.version)
        return released

    def list(self) -> list[Checkpoint]:
        """Every checkpoint (for operators and tests)."""
        checkpoints: list[Checkpoint] = []
        params: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            page = self._dynamodb.scan(**params)
            checkpoints.extend(_from_item(item) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                return checkpoints
            params["ExclusiveStartKey"] = last


def _to_item(checkpoint: Checkpoint) -> dict[str, Any]:
    item: dict[str, Any] = {
        "log_group": {"S": checkpoint.log_group_name},
        "version": {"N": str(checkpoint.version)},
        "floor_ms": {"N": str(checkpoint.floor_ms)},
        "lease_until_ms": {"N": str(checkpoint.lease_until_ms)},
        "events_processed": {"N": str(checkpoint.events_processed)},
        "updated_at_ms": {"N": str(checkpoint.updated_at_ms)},
    }
    if checkpoint.position_ms is not None:
        item["position_ms"] = {"N": str(checkpoint.position_ms)}
    if checkpoint.seen_event_digests:
        item["seen_event_digests"] = {"B": checkpoint.seen_event_digests}
    if checkpoint.scan_start_ms is not None:
        item["scan_start_ms"] = {"N": str(checkpoint.scan_start_ms)}
    if checkpoint.page_token:
        item["page_token"] = {"S": checkpoint.page_token}
    if checkpoint.lease_owner:
        item["lease_owner"] = {"S": checkpoint.lease_owner}
    return item


def _from_item(item: dict[str, Any]) -> Checkpoint:
    def number(name: str) -> int | None:
        value = item.get(name, {}).get("N")
        return int(value) if value is not None else None

    digests = item.get("seen_event_digests", {}).get("B", b"")
    return Checkpoint(
        log_group_name=str(item["log_group"]["S"]),
        version=number("version") or 0,
        position_ms=number("position_ms"),
        floor_ms=number("floor_ms") or 0,
        seen_event_digests=bytes(digests),
        scan_start_ms=number("scan_start_ms"),
        page_token=item.get("page_token", {}).get("S"),
        lease_owner=item.get("lease_owner", {}).get("S"),
        lease_until_ms=number("lease_until_ms") or 0,
        events_processed=number("events_processed") or 0,
        updated_at_ms=number("updated_at_ms") or 0,
    )
