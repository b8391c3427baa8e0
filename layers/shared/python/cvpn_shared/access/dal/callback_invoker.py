"""Notices for a ticket, handed to the ticket callback function by an asynchronous invocation.

The webhook function holds no callback credentials; the function that does posts the comment, and
Lambda retries it when the ticket system did not answer. Implements ``webhooks.TicketNotifier``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["CallbackFunctionNotices"]


@dataclass(frozen=True)
class CallbackFunctionNotices:
    lambda_client: Any
    function_arn: str

    def notify(self, notice: dict[str, Any]) -> None:
        self.lambda_client.invoke(
            FunctionName=self.function_arn,
            InvocationType="Event",
            Payload=json.dumps(notice).encode(),
        )
