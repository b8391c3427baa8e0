"""Data access to the findings table: every finding delivered, for `cvpn findings` and audits.

Partition key ``finding_id``; a re-fire of the same finding (same deterministic id, a new
``revision``: new counts, a later last attempt) replaces the item. ``expires_at`` (epoch seconds) is
the table's TTL attribute. ``delivered`` maps each channel the revision reached to when (epoch
seconds), so that a retried delivery of the same event skips the channels it already reached.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import conditional_check_failed

__all__ = ["FindingsArchive"]


class FindingsArchive:
    """The findings table."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def record(
        self, detail: dict[str, Any], *, revision: str, recorded_at: int, expires_at: int
    ) -> frozenset[str]:
        """Store a finding's event detail (the spec's shape) as ``revision``; the channels this
        revision was already delivered to (none when the item held another revision, or none).

        The same revision again (a retried delivery) keeps the item, its delivery marks and when it
        was first recorded; another revision replaces the item, without marks."""
        key = {"finding_id": {"S": str(detail["finding_id"])}}
        try:
            kept = self._dynamodb.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET expires_at = :expires_at",
                ConditionExpression="revision = :revision",
                ExpressionAttributeValues={
                    ":expires_at": {"N": str(expires_at)},
                    ":revision": {"S": revision},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not conditional_check_failed(error):
                raise
        else:
            return frozenset(kept["Attributes"].get("delivered", {}).get("M", {}))
        self._dynamodb.put_item(
            TableName=self._table,
            Item={
                **key,
                "revision": {"S": revision},
                "delivered": {"M": {}},
                "recorded_at": {"N": str(recorded_at)},
                "expires_at": {"N": str(expires_at)},
                "severity": {"S": str(detail.get("severity") or "UNKNOWN")},
                "rule_id": {"S": str(detail.get("rule_id") or "-")},
                "endpoint_id": {"S": str(detail.get("endpoint_id") or "-")},
                "detail": {"S": json.dumps(detail, default=str, sort_keys=True)},
            },
        )
        return frozenset()

    def mark_delivered(self, finding_id: str, revision: str, channel: str, *, delivered_at: int) -> bool:
        """Note that ``channel`` received ``revision`` of the finding; False (nothing written) when
        the item holds another revision by now (a re-fire replaced it) or is gone."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"finding_id": {"S": finding_id}},
                UpdateExpression="SET delivered.#channel = :delivered_at",
                ConditionExpression="revision = :revision",
                ExpressionAttributeNames={"#channel": channel},
                ExpressionAttributeValues={
                    ":delivered_at": {"N": str(delivered_at)},
                    ":revision": {"S": revision},
                },
            )
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True

    def recorded_since(self, since: int) -> list[dict[str, Any]]:
        """Details of findings recorded at or after ``since`` (epoch seconds), newest first."""
        found: list[tuple[int, dict[str, Any]]] = []
        params: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "recorded_at >= :since",
            "ExpressionAttributeValues": {":since": {"N": str(since)}},
        }
        while True:
            page = self._dynamodb.scan(**params)
            for item in page.get("Items", []):
                detail = json.loads(item["detail"]["S"])
                recorded = int(item["recorded_at"]["N"])
                detail.setdefault("recorded_at", recorded)
                found.append((recorded, detail))
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            params["ExclusiveStartKey"] = last
        return [detail for _, detail in sorted(found, key=lambda pair: pair[0], reverse=True)]
