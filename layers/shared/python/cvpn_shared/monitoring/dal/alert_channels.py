"""Data access to where alerts go: the alerts SNS topic, a chat webhook, Security Hub.

The webhook URL is a secret: it is read from a Secrets Manager secret (the secret string, or its
``url`` key when the string is JSON) or from an SSM SecureString parameter, once per process, and
read again after a delivery fails (a rotated or revoked webhook is picked up by Lambda's retry, not
only when the worker recycles). A webhook that answers a redirect is not followed: the finding
would go to a URL nobody configured.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from cvpn_shared.core.http import no_redirects_opener
from cvpn_shared.core.notifications import sns_subject

__all__ = ["AlertTopic", "ChatWebhook", "SecurityHubFindings", "WebhookDeliveryFailed", "WebhookUrl"]

MAX_FINDINGS_PER_IMPORT = 100
# ``urlopen`` without redirects (a module attribute: the tests put a fake in its place).
open_url = no_redirects_opener().open


class WebhookDeliveryFailed(Exception):
    """The webhook answered an error status or could not be reached."""


class AlertTopic:
    """The alerts topic (SNS): e-mail and any other subscription operators add."""

    def __init__(self, sns_client: Any, topic_arn: str) -> None:
        self._sns = sns_client
        self._topic_arn = topic_arn

    def publish(self, subject: str, message: str, attributes: dict[str, str]) -> str:
        answer = self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=sns_subject(subject),
            Message=message,
            MessageAttributes={
                key: {"DataType": "String", "StringValue": value}
                for key, value in attributes.items()
                if value
            },
        )
        return str(answer["MessageId"])


class WebhookUrl:
    """Reads the webhook URL from Secrets Manager or SSM Parameter Store, once."""

    def __init__(
        self, secrets_client: Any | None, ssm_client: Any | None, *, secret_arn: str, parameter: str
    ):
        self._secrets = secrets_client
        self._ssm = ssm_client
        self._secret_arn = secret_arn
        self._parameter = parameter
        self._url: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self._secret_arn or self._parameter)

    def get(self) -> str:
        if self._url is None:
            if self._secret_arn and self._secrets is not None:
                text = str(self._secrets.get_secret_value(SecretId=self._secret_arn)["SecretString"])
                try:
                    value = json.loads(text)
                except ValueError:
                    value = text
                self._url = str(value.get("url", "")) if isinstance(value, dict) else str(value)
            elif self._parameter and self._ssm is not None:
                answer = self._ssm.get_parameter(Name=self._parameter, WithDecryption=True)
                self._url = str(answer["Parameter"]["Value"])
            else:
                self._url = ""
        return self._url.strip()

    def forget(self) -> None:
        """Read the URL again on the next ``get`` (after a failed delivery: it may have been rotated)."""
        self._url = None


class ChatWebhook:
    """Posts a JSON document to a Slack or Microsoft Teams incoming webhook."""

    def __init__(self, url: WebhookUrl, *, timeout_seconds: float = 5.0) -> None:
        self._url = url
        self._timeout = timeout_seconds

    @property
    def configured(self) -> bool:
        return self._url.configured

    def post(self, document: dict[str, Any]) -> int:
        url = self._url.get()
        if not url.startswith("https://"):
            raise WebhookDeliveryFailed("the webhook URL must be an https:// URL")
        request = urllib.request.Request(
            url,
            data=json.dumps(document).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with open_url(request, timeout=self._timeout) as response:
                return int(response.status)
        except OSError as error:  # HTTPError (an error status) included
            self._url.forget()
            if isinstance(error, urllib.error.HTTPError) and 300 <= error.code < 400:
                raise WebhookDeliveryFailed(
                    f"the webhook answered {error.code} (a redirect): not followed, nothing delivered"
                ) from error
            raise WebhookDeliveryFailed(str(error)) from error


class SecurityHubFindings:
    """BatchImportFindings, at most 100 findings per call; refused findings raise."""

    def __init__(self, securityhub_client: Any) -> None:
        self._securityhub = securityhub_client

    def import_findings(self, findings: Sequence[dict[str, Any]]) -> int:
        imported = 0
        for start in range(0, len(findings), MAX_FINDINGS_PER_IMPORT):
            batch = list(findings[start : start + MAX_FINDINGS_PER_IMPORT])
            answer = self._securityhub.batch_import_findings(Findings=batch)
            if answer.get("FailedCount"):
                reasons = sorted({str(f.get("ErrorCode")) for f in answer.get("FailedFindings", [])})
                raise RuntimeError(f"Security Hub refused {answer['FailedCount']} finding(s): {reasons}")
            imported += int(answer.get("SuccessCount", len(batch)))
        return imported
