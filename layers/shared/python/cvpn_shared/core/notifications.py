"""The notifications topic (SNS): provisioning outcomes and operations messages (handler health)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Notifier"]


class Notifier:
    """Publishes JSON notifications with message attributes to the SNS topic."""

    def __init__(self, sns_client: Any, topic_arn: str) -> None:
        self._sns = sns_client
        self._topic_arn = topic_arn

    def publish(self, subject: str, message: dict[str, Any], attributes: dict[str, str]) -> str:
        answer = self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=subject[:100],
            Message=json.dumps(message, default=str, sort_keys=True),
            MessageAttributes={
                key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()
            },
        )
        return str(answer["MessageId"])
