"""Data access to the webhook deliveries already received (DynamoDB, with a TTL of days).

The first delivery of an id claims it with a conditional write; a retry of the same delivery finds the
claim and gets the original answer back. Expired claims count as absent (TTL deletion is lazy).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import conditional_check_failed
from cvpn_shared.core.item_codecs import decode_plain_item, encode_plain_item

__all__ = ["WebhookDeliveries"]


class WebhookDeliveries:
    """Items ``{delivery_key, source, request_id, execution_arn, received_at, expires_at}``."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def claim(self, record: dict[str, Any], *, now: int) -> dict[str, Any] | None:
        """Write ``record`` unless its delivery_key is already claimed; the existing claim, else None."""
        item = encode_plain_item(record)
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(delivery_key) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
            return None
        except ClientError as error:
            if not conditional_check_failed(error):
                raise
        existing = self._dynamodb.get_item(
            TableName=self._table, Key={"delivery_key": item["delivery_key"]}, ConsistentRead=True
        ).get("Item")
        return decode_plain_item(existing) if existing else dict(record)

    def release(self, delivery_key: str) -> None:
        """Forget a claim whose execution could not be started, so the sender's retry can start it."""
        self._dynamodb.delete_item(TableName=self._table, Key={"delivery_key": {"S": delivery_key}})
