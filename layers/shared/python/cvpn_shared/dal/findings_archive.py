"""Data access to the findings table: every finding delivered, for `cvpn findings` and audits.

Partition key ``finding_id``; a re-fire of the same finding (same deterministic id) replaces the
item. ``expires_at`` (epoch seconds) is the table's TTL attribute.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["FindingsArchive"]


class FindingsArchive:
    """The findings table."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def put(self, detail: dict[str, Any], *, recorded_at: int, expires_at: int) -> None:
        """Store a finding's event detail (the spec's shape) with when it was recorded."""
        self._dynamodb.put_item(
            TableName=self._table,
            Item={
                "finding_id": {"S": str(detail["finding_id"])},
                "recorded_at": {"N": str(recorded_at)},
                "expires_at": {"N": str(expires_at)},
                "severity": {"S": str(detail.get("severity") or "UNKNOWN")},
                "rule_id": {"S": str(detail.get("rule_id") or "-")},
                "endpoint_id": {"S": str(detail.get("endpoint_id") or "-")},
                "detail": {"S": json.dumps(detail, default=str, sort_keys=True)},
            },
        )

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
