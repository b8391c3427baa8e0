"""Data access to the blocklist: what the client-connect handler refuses, until expiry.

One item per block, partition key ``pk``: ``source#<device ip>`` (an address), ``user#<name>`` (a
user, from anywhere) or ``user_source#<device ip>#<name>`` (a user from one address only). Names are
lower-cased: directory and SAML user names are case-insensitive. ``expires_at`` (epoch seconds) is
the table's TTL attribute; since DynamoDB deletes expired items only eventually, readers also compare
it with the time now.

``BlocklistLookup.active_blocks`` runs while a person waits to connect, so it reads through
``dynamodb_json.BatchGetWithinBudget`` (no botocore: its import alone would cost the handler's cold
start more than everything else it loads) and raises ``BlocklistUnavailable`` when the budget runs
out; what to do then is the caller's choice. Its ``keys_by_table`` and ``blocks_in`` let a caller read
the blocklist together with keys of other tables in one ``BatchGetItem``. ``DynamoDbBlocklist``
writes and lists blocks with a boto3 client (the alert function, the CLI).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

from cvpn_shared.monitoring.dal.dynamodb_json import BatchGetWithinBudget, LookupBudget, LookupUnavailable

__all__ = [
    "MAX_KEY_BYTES",
    "BlockEntry",
    "BlocklistLookup",
    "BlocklistUnavailable",
    "DynamoDbBlocklist",
    "LookupBudget",
    "blocklist_key",
    "user_source_key",
]

SubjectKind = Literal["source", "user", "user_source"]
# DynamoDB's limit on a partition key value (UTF-8 bytes).
MAX_KEY_BYTES = 2048


def blocklist_key(kind: SubjectKind, value: str, source: str = "") -> str:
    """The item key of a blocked address (``source``), user (``user``) or user from one address
    (``user_source``: ``value`` the user, ``source`` the address)."""
    if kind == "user_source":
        return user_source_key(value, source)
    return f"{kind}#{value.strip().lower() if kind == 'user' else value.strip()}"


def user_source_key(user: str, source: str) -> str:
    """The item key of ``user`` blocked from the address ``source`` only."""
    return f"user_source#{source.strip()}#{user.strip().lower()}"


# A named tuple, not a dataclass: ``dataclasses`` loads ``inspect``, a cost on every login's cold start.
class BlockEntry(NamedTuple):
    """One block: an address, a user, or a user from one address (``source``)."""

    kind: SubjectKind
    value: str
    expires_at: int
    blocked_at: int
    reason: str
    finding_id: str = ""
    endpoint_id: str = ""
    severity: str = ""
    source: str = ""  # the address of a ``user_source`` block

    @property
    def key(self) -> str:
        return blocklist_key(self.kind, self.value, self.source)


class BlocklistUnavailable(LookupUnavailable):
    """The blocklist could not be read within the lookup's time budget."""


class BlocklistLookup:
    """The blocklist as the client-connect handler reads it: the entries under a login's keys."""

    def __init__(self, reader: BatchGetWithinBudget, table_name: str) -> None:
        self.reader = reader
        self.table_name = table_name

    def keys_by_table(self, keys: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The ``BatchGetItem`` keys of ``keys`` (item keys such as ``source#198.51.100.7``)."""
        return {self.table_name: [{"pk": {"S": key}} for key in sorted(set(keys))]}

    def blocks_in(
        self, items_by_table: Mapping[str, Sequence[Mapping[str, Any]]], now: int
    ) -> list[BlockEntry]:
        """The entries among a ``BatchGetItem``'s items that have not expired at ``now``."""
        entries = [_from_item(item) for item in items_by_table.get(self.table_name, ())]
        return sorted((e for e in entries if e.expires_at > now), key=lambda e: e.key)

    def active_blocks(self, keys: list[str], now: int) -> list[BlockEntry]:
        """The entries among ``keys`` that have not expired at ``now`` (epoch seconds), read within
        the lookup budget; ``BlocklistUnavailable`` when they could not be."""
        if not keys:
            return []
        try:
            items = self.reader.get(self.keys_by_table(keys))
        except LookupUnavailable as error:
            raise BlocklistUnavailable(f"blocklist {error}") from error
        return self.blocks_in(items, now)


class DynamoDbBlocklist:
    """The blocklist table as the alert function writes it and operators list it (boto3 client)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def block(self, entry: BlockEntry) -> bool:
        """Add or extend a block; an entry that already lasts longer is kept. True when written."""
        # Imported here: this module is also the client-connect handler's, which loads no botocore.
        from botocore.exceptions import ClientError

        from cvpn_shared.core.aws_errors import conditional_check_failed

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
        **({"source": {"S": entry.source}} if entry.source else {}),
    }


def _from_item(item: Mapping[str, Any]) -> BlockEntry:
    def text(name: str) -> str:
        value = str(item.get(name, {}).get("S", ""))
        return "" if value == "-" else value

    stored_kind = text("kind")
    kind: SubjectKind = "source"
    if stored_kind == "user":
        kind = "user"
    elif stored_kind == "user_source":
        kind = "user_source"
    return BlockEntry(
        kind=kind,
        value=text("subject"),
        expires_at=int(item.get("expires_at", {}).get("N", "0")),
        blocked_at=int(item.get("blocked_at", {}).get("N", "0")),
        reason=text("reason"),
        finding_id=text("finding_id"),
        endpoint_id=text("endpoint_id"),
        severity=text("severity"),
        source=text("source"),
    )
