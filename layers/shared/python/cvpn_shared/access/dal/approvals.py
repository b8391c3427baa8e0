"""Data access to approval requests (DynamoDB, TTL) and the approvers' topic (SNS)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import conditional_check_failed
from cvpn_shared.core.item_codecs import decode_plain_item, encode_plain_item

if TYPE_CHECKING:
    from cvpn_shared.access.identity import Person

__all__ = ["ApprovalAlreadyDecided", "ApprovalNotFound", "ApprovalRecords", "ApproversTopic"]


class ApprovalNotFound(Exception):
    """No approval request has that id (never issued, or expired and removed)."""


class ApprovalAlreadyDecided(Exception):
    """The approval request was decided before: links are single use."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        super().__init__(f"already {record.get('status', 'decided').lower()}")


class ApprovalRecords:
    """One item per approval request, keyed by ``approval_id``; ``status`` PENDING until decided."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def create(self, record: dict[str, Any]) -> None:
        """Write a new PENDING request (never replaces one: approval ids are random)."""
        self._dynamodb.put_item(
            TableName=self._table,
            Item=encode_plain_item(record),
            ConditionExpression="attribute_not_exists(approval_id)",
        )

    def get(self, approval_id: str) -> dict[str, Any] | None:
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"approval_id": {"S": approval_id}}, ConsistentRead=True
        ).get("Item")
        return decode_plain_item(item) if item else None

    def decide(
        self, approval_id: str, *, status: str, decided_at: int, decided_via: str, approver: Person
    ) -> dict[str, Any]:
        """PENDING -> ``status``, once (conditional write), recording who decided; the updated record.

        Raises ApprovalNotFound, or ApprovalAlreadyDecided with the record as it stands.
        """
        try:
            answer = self._dynamodb.update_item(
                TableName=self._table,
                Key={"approval_id": {"S": approval_id}},
                UpdateExpression=(
                    "SET #status = :status, decided_at = :decided_at, decided_via = :via, "
                    "approver_issuer = :issuer, approver_sub = :sub, approver_name = :name, "
                    "approver_email = :email"
                ),
                ConditionExpression="attribute_exists(approval_id) AND #status = :pending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":status": {"S": status},
                    ":decided_at": {"N": str(decided_at)},
                    ":via": {"S": decided_via[:512]},
                    ":pending": {"S": "PENDING"},
                    ":issuer": {"S": approver.issuer},
                    ":sub": {"S": approver.subject},
                    ":name": {"S": approver.name[:512]},
                    ":email": {"S": approver.email[:512]},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not conditional_check_failed(error):
                raise
            record = self.get(approval_id)
            if record is None:
                raise ApprovalNotFound(approval_id) from None
            raise ApprovalAlreadyDecided(record) from None
        return decode_plain_item(answer["Attributes"])


class ApproversTopic:
    """Plain-text messages to the approvers (e-mail or chat subscriptions of the topic)."""

    def __init__(self, sns_client: Any, topic_arn: str) -> None:
        self._sns = sns_client
        self._topic_arn = topic_arn

    def publish(self, subject: str, text: str, attributes: dict[str, str]) -> str:
        answer = self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=subject[:100],
            Message=text,
            MessageAttributes={
                key: {"DataType": "String", "StringValue": value}
                for key, value in attributes.items()
                if value
            },
        )
        return str(answer["MessageId"])
