"""Data access to the blocklist: what the client-connect handler refuses, until expiry.

One item per block, partition key ``pk``: ``source#<device ip>`` (an address), ``user#<name>`` (a
user, from anywhere) or ``user_source#<device ip>#<name>`` (a user from one address only). Names are
lower-cased: directory and SAML user names are case-insensitive. ``expires_at`` (epoch seconds) is
the table's TTL attribute; since DynamoDB deletes expired items only eventually, readers also compare
it with the time now.

``active_blocks`` runs while a person waits to connect, so it works to a time budget
(``LookupBudget``): the client it is given makes one attempt per call with short socket timeouts
(``LookupBudget.client_config``), and it retries throttles, server errors and unprocessed keys itself
with a short backoff, starting a call only while a whole call still fits in the budget. When the
budget runs out it raises ``BlocklistUnavailable``; what to do then is the caller's choice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from cvpn_shared.core.aws_errors import conditional_check_failed, error_code

__all__ = [
    "MAX_KEY_BYTES",
    "BlockEntry",
    "BlocklistUnavailable",
    "DynamoDbBlocklist",
    "LookupBudget",
    "blocklist_key",
    "user_source_key",
]

SubjectKind = Literal["source", "user", "user_source"]
# DynamoDB's limit on a partition key value (UTF-8 bytes).
MAX_KEY_BYTES = 2048
# Answers worth another attempt within the budget: throttles and server-side failures.
_RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionConflictException",
    }
)


def blocklist_key(kind: SubjectKind, value: str, source: str = "") -> str:
    """The item key of a blocked address (``source``), user (``user``) or user from one address
    (``user_source``: ``value`` the user, ``source`` the address)."""
    if kind == "user_source":
        return user_source_key(value, source)
    return f"{kind}#{value.strip().lower() if kind == 'user' else value.strip()}"


def user_source_key(user: str, source: str) -> str:
    """The item key of ``user`` blocked from the address ``source`` only."""
    return f"user_source#{source.strip()}#{user.strip().lower()}"


@dataclass(frozen=True)
class BlockEntry:
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


class BlocklistUnavailable(Exception):
    """The blocklist could not be read within the lookup's time budget."""


@dataclass(frozen=True)
class LookupBudget:
    """How long a blocklist lookup may take in all, and the socket timeouts of each call.

    A call is started only while ``connect_timeout + read_timeout`` still fits before the deadline,
    so the lookup ends within ``total_seconds`` (plus the time to raise) whatever DynamoDB does.
    """

    total_seconds: float = 2.0
    connect_timeout: float = 0.5
    read_timeout: float = 0.7
    first_backoff: float = 0.02
    max_backoff: float = 0.2

    def __post_init__(self) -> None:
        if self.total_seconds < self.call_seconds:
            raise ValueError("total_seconds: must leave room for one call (connect + read timeouts)")

    @property
    def call_seconds(self) -> float:
        """The longest one call may take (connect, then read)."""
        return self.connect_timeout + self.read_timeout

    def client_config(self) -> Config:
        """The SDK configuration of the lookup's client: one attempt per call (the lookup retries
        within its budget), the budget's socket timeouts."""
        return Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            tcp_keepalive=True,
        )


class DynamoDbBlocklist:
    """The blocklist table."""

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        *,
        budget: LookupBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name
        self._budget = budget or LookupBudget()
        self._clock = clock
        self._sleep = sleep

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
        """The entries among ``keys`` that have not expired at ``now`` (epoch seconds), read within
        the lookup budget; ``BlocklistUnavailable`` when they could not be."""
        unique = sorted(set(keys))
        if not unique:
            return []
        budget = self._budget
        deadline = self._clock() + budget.total_seconds
        request: dict[str, Any] = {
            self._table: {"Keys": [{"pk": {"S": key}} for key in unique], "ConsistentRead": True}
        }
        items: list[dict[str, Any]] = []
        backoff = budget.first_backoff
        attempts = 0
        last_problem = ""
        while request:
            if attempts and self._clock() + backoff + budget.call_seconds > deadline:
                raise BlocklistUnavailable(
                    f"blocklist not read within {budget.total_seconds:g} s ({attempts} attempts; "
                    f"last: {last_problem})"
                )
            if attempts:
                self._sleep(backoff)
                backoff = min(backoff * 2, budget.max_backoff)
            attempts += 1
            try:
                answer = self._dynamodb.batch_get_item(RequestItems=request)
            except ClientError as error:
                code = error_code(error)
                if code not in _RETRYABLE_CODES:
                    raise BlocklistUnavailable(f"{code}: {error}") from error
                last_problem = code
                continue
            except ParamValidationError as error:  # a request that can never succeed
                raise BlocklistUnavailable(f"{type(error).__name__}: {error}") from error
            except BotoCoreError as error:  # timeouts, connection errors: worth another try
                last_problem = type(error).__name__
                continue
            items.extend(answer.get("Responses", {}).get(self._table, []))
            request = answer.get("UnprocessedKeys") or {}
            last_problem = "keys unprocessed"
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
        **({"source": {"S": entry.source}} if entry.source else {}),
    }


def _from_item(item: dict[str, Any]) -> BlockEntry:
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
