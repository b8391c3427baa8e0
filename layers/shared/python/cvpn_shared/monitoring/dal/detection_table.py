"""Data access to the detection state table (DynamoDB): one item per watched entity.

Table: partition key ``pk`` (S) only, TTL attribute ``expires_at`` (N, epoch seconds), on-demand.
Item: ``pk`` (``<endpoint>#<device_ip|user>#<value>``), ``version`` (N), ``expires_at`` (N),
``armed_at`` (N, epoch ms, when an attack rule last fired for the entity; absent if never) and the
record as JSON in ``data`` (S), or zlib-compressed in ``data_z`` (B) when the JSON is larger than
``COMPRESS_ABOVE_BYTES`` (write units are billed per KB). The JSON is decoded only when used.

Reads: BatchGetItem, 100 keys per call, strongly consistent, ``UnprocessedKeys`` retried with
exponential backoff. Items past ``expires_at`` are ignored (TTL deletes lazily, up to days later).
Writer generation: the item ``#generation`` holds a random token each run replaces (one UpdateItem
answering the old one) before it writes records; a warm process believes its cached records only
while the token is still the one it wrote
(``cvpn_shared.monitoring.detection.record_cache``).
Writes: one conditional PutItem per changed entity - ``version = :expected``, or for a new record
``attribute_not_exists(pk) OR expires_at <= :now`` - sent in parallel. A failed condition means
another run wrote first: the key is answered as a conflict and the detector retries it.
"""

from __future__ import annotations

import secrets
import time
import zlib
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import conditional_check_failed
from cvpn_shared.monitoring.detection.entity_store import StateWrite, StoredState, encode_record

__all__ = ["COMPRESS_ABOVE_BYTES", "GENERATION_KEY", "DynamoDbDetectionState", "UnprocessedKeysError"]

BATCH_GET_LIMIT = 100
# The writer generation's item (no entity key starts with "#"; it has no expiry).
GENERATION_KEY = "#generation"
COMPRESS_ABOVE_BYTES = 2048


class UnprocessedKeysError(RuntimeError):
    """DynamoDB kept answering keys as unprocessed (throttling) after every retry."""


class DynamoDbDetectionState:
    """The detector's ``DetectionStateStore`` on one DynamoDB table."""

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        *,
        max_workers: int = 8,
        max_read_retries: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name
        self._max_workers = max_workers
        self._max_read_retries = max_read_retries
        self._sleep = sleep

    def load(self, keys: Collection[str], *, now_epoch: int) -> dict[str, StoredState]:
        """The live records of ``keys`` (absent and expired ones left out)."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, StoredState] = {}
        for offset in range(0, len(unique), BATCH_GET_LIMIT):
            for item in self._batch_get(unique[offset : offset + BATCH_GET_LIMIT]):
                stored = _stored(item)
                if stored.expires_at > now_epoch:
                    found[item["pk"]["S"]] = stored
        return found

    def save(self, writes: Sequence[StateWrite], *, now_epoch: int) -> list[str]:
        """Write each record against its expected version; answer the keys another writer changed."""
        if not writes:
            return []
        if len(writes) == 1 or self._max_workers <= 1:
            outcomes = [self._put(write, now_epoch) for write in writes]
        else:
            with ThreadPoolExecutor(max_workers=min(self._max_workers, len(writes))) as pool:
                outcomes = list(pool.map(lambda write: self._put(write, now_epoch), writes))
        return [write.key for write, written in zip(writes, outcomes, strict=True) if not written]

    def advance_generation(self) -> tuple[str | None, str]:
        """Replace the table's writer generation with a new random token in one atomic UpdateItem
        (SET, answering the old value): (the token before, or None; the token written).
        See ``cvpn_shared.monitoring.detection.record_cache``."""
        token = secrets.token_hex(16)
        answer = self._dynamodb.update_item(
            TableName=self._table,
            Key={"pk": {"S": GENERATION_KEY}},
            UpdateExpression="SET generation = :token",
            ExpressionAttributeValues={":token": {"S": token}},
            ReturnValues="UPDATED_OLD",
        )
        previous = answer.get("Attributes", {}).get("generation", {}).get("S")
        return previous, token

    def _batch_get(self, keys: list[str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            self._table: {"Keys": [{"pk": {"S": key}} for key in keys], "ConsistentRead": True}
        }
        for attempt in range(self._max_read_retries + 1):
            answer = self._dynamodb.batch_get_item(RequestItems=request)
            items.extend(answer.get("Responses", {}).get(self._table, []))
            unprocessed = answer.get("UnprocessedKeys") or {}
            if not unprocessed.get(self._table, {}).get("Keys"):
                return items
            request = unprocessed
            self._sleep(min(0.05 * 2**attempt, 2.0))
        raise UnprocessedKeysError(f"{len(request[self._table]['Keys'])} keys still unprocessed")

    def _put(self, write: StateWrite, now_epoch: int) -> bool:
        item: dict[str, Any] = {
            "pk": {"S": write.key},
            "version": {"N": str(write.expected_version + 1)},
            "expires_at": {"N": str(write.expires_at)},
        }
        if write.armed_at is not None:
            item["armed_at"] = {"N": str(write.armed_at)}
        text = encode_record(write.data)
        if len(text) > COMPRESS_ABOVE_BYTES:
            item["data_z"] = {"B": zlib.compress(text.encode())}
        else:
            item["data"] = {"S": text}
        if write.expected_version == 0:
            condition = "attribute_not_exists(pk) OR expires_at <= :now"
            values = {":now": {"N": str(now_epoch)}}
        else:
            condition = "version = :expected"
            values = {":expected": {"N": str(write.expected_version)}}
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True


def _stored(item: dict[str, Any]) -> StoredState:
    if "data_z" in item:
        text = zlib.decompress(item["data_z"]["B"]).decode()
    else:
        text = item.get("data", {}).get("S", "{}")
    armed_at = item.get("armed_at")
    return StoredState(
        text=text,
        version=int(item["version"]["N"]),
        expires_at=int(item["expires_at"]["N"]),
        armed_at=int(armed_at["N"]) if armed_at else None,
    )
