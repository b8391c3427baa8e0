"""The notifications topic (SNS): provisioning outcomes and operations messages (handler health)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_SUBJECT_CHARS", "Notifier", "sns_subject"]

# SNS Publish: a subject is "less than 100 characters long", with no line breaks or control characters.
MAX_SUBJECT_CHARS = 99


def sns_subject(text: str) -> str:
    """``text`` as a subject SNS takes, whatever it holds (a user name typed by an attacker included).

    Printable ASCII on one line: whitespace runs become one space, any other character outside
    printable ASCII a ``?`` (the older Publish reference asks for ASCII; the message body keeps the
    text whole), cut to ``MAX_SUBJECT_CHARS`` with ``...`` at the end when longer.
    """
    shown = "".join(c if " " <= c <= "~" else (" " if c.isspace() else "?") for c in text)
    shown = " ".join(shown.split())
    if len(shown) > MAX_SUBJECT_CHARS:
        shown = shown[: MAX_SUBJECT_CHARS - 3].rstrip() + "..."
    return shown or "(no subject)"


class Notifier:
    """Publishes JSON notifications with message attributes to the SNS topic."""

    def __init__(self, sns_client: Any, topic_arn: str) -> None:
        self._sns = sns_client
        self._topic_arn = topic_arn

    def publish(self, subject: str, message: dict[str, Any], attributes: dict[str, str]) -> str:
        answer = self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=sns_subject(subject),
            Message=json.dumps(message, default=str, sort_keys=True),
            MessageAttributes={
                key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()
            },
        )
        return str(answer["MessageId"])
