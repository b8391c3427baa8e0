"""Data access to the blocklist: sources and users the client-connect handler refuses, until expiry.

One item per blocked subject, partition key ``pk``: ``source#<device ip>`` or ``user#<name>`` (names
lower-cased: directory and SAML user names are case-insensitive). ``expires_at`` (epoch seconds) is
the table's TTL attribute; since DynamoDB deletes expired items only eventually, readers also compare
it with the time now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import conditional_check_failed

__all__ = ["BlockEntry", "DynamoDbBlocklist", "blocklist_key"]

SubjectKind = Literal["source", "user"]


def blocklist_key(kind: SubjectKind, value: str) -> str:
    """The item key of a blocked source address or user."""
    return f"{kind}#{value.strip().lower() if kind == 'user' else value.strip()}"


@dataclass(frozen=True)
class BlockEntry:
    """One blocked source or user."""

    kind: SubjectKind
    value: str
    expires_at: int
    blocked_at: int
    reason: str
    finding_id: str = ""
    endpoint_id: str = ""
    severity: str = ""

    @property
    def key(self) -> str:
        return blocklist_key(self.kind, self.value)


class DynamoDbBlocklist:
    """The blocklist table."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def block(self, entry: BlockEntry) -> bool:
        """Add or extend a block; an entry that already lasts longer is kept. True when written."""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=_to_item(entry),
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :expires",
                ExpressionAttributeValues={":expires": {"N": str(entry.expires_at)}},
            )
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True

    def active_blocks(self, keys: list[str], now: int) -> list[BlockEntry]:
        """The entries among ``keys`` that have not expired at ``now`` (epoch seconds)."""
        unique = sorted(set(keys))
        if not unique:
            return []
        request = {self._table: {"Keys": [{"pk": {"S": key}} for key in unique], "ConsistentRead": True}}
        items: list[dict[str, Any]] = []
        while request:
            answer = self._dynamodb.batch_get_item(RequestItems=request)
            items.extend(answer.get("Responses", {}).get(self._table, []))
            request = answer.get("UnprocessedKeys") or {}
        entries = [_from_item(item) for item in items]
        return sorted((e for e in entries if e.expires_at > now), key=lambda e: e.key)

    def all_active(self, now: int) -> list[BlockEntry]:
        """Every entry that has not expired (for operators)."""
        entries: list[BlockEntry] = []
        params: dict[str, Any] = {"TableName": self._table}
        while True:
            page = self._dynamodb.scan(**params)
            entries.extend(_from_item(item) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            params["ExclusiveStartKey"] = last
        return sorted((e for e in entries if e.expires_at > now), key=lambda e: e.key)


def _to_item(entry: BlockEntry) -> dict[str, Any]:
    return {
        "pk": {"S": entry.key},
        "kind": {"S": entry.kind},
        "subject": {"S": entry.value},
        "expires_at": {"N": str(entry.expires_at)},
        "blocked_at": {"N": str(entry.blocked_at)},
        "reason": {"S": entry.reason or "-"},
        "finding_id": {"S": entry.finding_id or "-"},
        "endpoint_id": {"S": entry.endpoint_id or "-"},
        "severity": {"S": entry.severity or "-"},
    }


def _from_item(item: dict[str, Any]) -> BlockEntry:
    def text(name: str) -> str:
        value = str(item.get(name, {}).get("S", ""))
        return "" if value == "-" else value

    kind: SubjectKind = "user" if text("kind") == "user" else "source"
    return BlockEntry(
        kind=kind,
        value=text("subject"),
        expires_at=int(item.get("expires_at", {}).get("N", "0")),
        blocked_at=int(item.get("blocked_at", {}).get("N", "0")),
        reason=text("reason"),
        finding_id=text("finding_id"),
        endpoint_id=text("endpoint_id"),
        severity=text("severity"),
    )
